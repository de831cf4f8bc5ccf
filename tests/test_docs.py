"""Docs are runnable: README python blocks and module docstring examples execute."""

from __future__ import annotations

import doctest
import importlib
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

DOCTEST_MODULES = [
    "bookkeeper.book",
    "bookkeeper.checksum",
    "bookkeeper.sequencer",
    "bookkeeper.recovery",
    "bookkeeper.session",
    "bookkeeper.view",
    "bookkeeper.ledger",
    "bookkeeper.account",
    "bookkeeper.splicing",
    "bookkeeper.coordination",
    "bookkeeper.io.coord",
    "bookkeeper.integrity",
    "bookkeeper.sim.venues",
    "bookkeeper.io.recording",
    "bookkeeper.io.record",
    "bookkeeper.io.metrics",
    "bookkeeper.apps.triage",
    "bookkeeper.adapters",
]


@pytest.mark.parametrize("name", DOCTEST_MODULES)
def test_module_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} doctest failures in {name}"
    assert result.attempted > 0, f"{name} has no examples"


def test_readme_python_examples_run() -> None:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "README has no python examples"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})  # noqa: S102 - our own docs


def test_readme_quick_start_has_exactly_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```\n(.*?)```", section, re.S)
    assert block is not None
    lines = [ln for ln in block.group(1).splitlines() if ln.strip()]
    assert len(lines) == 2
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    # .ci/run runs the README's second command verbatim, nothing weaker
    assert lines[1].strip() in [ln.strip() for ln in ci_lines]
