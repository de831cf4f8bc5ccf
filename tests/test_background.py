"""The suite's background runs (tests/_background.py): the command a test names runs in a child
process in its own directory, with the test's parameters, and its exit code and output reach
the test unchanged."""

from __future__ import annotations

import pytest
from _background import BackgroundResult


@pytest.mark.background(["-c", "import os, sys; print(os.getcwd()); print('oops', file=sys.stderr); sys.exit(3)"])
def test_a_run_reports_its_exit_code_output_and_directory(background: BackgroundResult) -> None:
    assert background.returncode == 3
    assert background.stdout.strip() == str(background.workdir)
    assert background.stderr.strip() == "oops"


@pytest.mark.background(lambda workdir, n: ["-c", f"import json; print(json.dumps({{'n': {n}, 'dir': {str(workdir)!r}}}))"])
@pytest.mark.parametrize("n", [1, 2])
def test_a_parametrized_run_gets_its_own_parameters_and_directory(n: int, background: BackgroundResult) -> None:
    assert background.json_line() == {"n": n, "dir": str(background.workdir)}
