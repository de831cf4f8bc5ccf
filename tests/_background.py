"""Long command-line runs started in the background when the suite starts.

Why: the realtime end-to-end runs (``bookkeeper chaos``/``demo`` against the simulator) spend
almost all of their wall time waiting on the simulator's clock (a 22 s chaos run uses under
2 s of CPU), so running them one after another in the test process wasted minutes of the
suite's budget. A test marked ``@pytest.mark.background(argv)`` has its command started in a
child process as soon as collection finishes (a few at a time, in collection order, so the
first tests to need a result are served first); the test itself then takes the result with the
``background`` fixture and asserts on it exactly as before. Those tests run after all the
others (tests/conftest.py), so the rest of the suite overlaps the runs and nothing waits. Only collected tests start a run
(``-k``/node-id selection starts only theirs), and each run gets its own fresh directory.

Runs of one ``group`` (``@pytest.mark.background(argv, group="account")``) run one at a time:
those that start worker processes of their own (``--kill-restart``) or whose checks need a
share of the CPU are not run side by side with each other.

``argv`` is the command line after ``python`` (``["-m", "bookkeeper.cli", "chaos", ...]``; see
:func:`cli` and :func:`chaos_child`) or a callable ``argv(workdir, **params)`` (``params`` are
the test's parametrize values) returning one. Output goes to files, never to
pipes (a chatty child must not block on a full pipe while nobody reads it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = ["BackgroundResult", "BackgroundRuns", "chaos_child", "cli"]

#: runs at a time: each waits on the simulator's clock (under 10 % of a core), but they all
#: import ccxt at start and the test process keeps one core busy meanwhile
MAX_PARALLEL = int(os.environ.get("BOOKKEEPER_TEST_BACKGROUND", "5"))
RUN_TIMEOUT_S = 300.0


def cli(*args: object) -> list[str]:
    """``python -m bookkeeper.cli ARGS``."""
    return ["-m", "bookkeeper.cli", *map(str, args)]


def chaos_child(**config: Any) -> list[str]:
    """``run_chaos(ChaosConfig(**config))`` in a child process (tests/_chaos_child.py), for the
    in-process settings the command line has no flag for; it prints the report as one JSON
    line. Relative paths in ``config`` are inside the run's directory."""
    import json

    return [str(Path(__file__).with_name("_chaos_child.py")), json.dumps(config)]


@dataclass(frozen=True)
class BackgroundResult:
    """One finished run: exit code, output and the directory it was given."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    workdir: Path

    def json_line(self) -> dict[str, Any]:
        """The single JSON object a ``--json`` run prints (fails the test otherwise)."""
        import json

        lines = [ln for ln in self.stdout.splitlines() if ln.strip()]
        assert len(lines) == 1, (f"--json must print exactly one JSON object; got {self.stdout[:500]!r}\n"
                                 f"{self.stderr[-2000:]}")
        return json.loads(lines[0])


class BackgroundRuns:
    """The session's runs, keyed by test node id."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._runs: dict[str, Future[BackgroundResult]] = {}
        self._root = Path(tempfile.mkdtemp(prefix="bookkeeper-bg-"))
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._closing = False
        self._groups: dict[str, threading.Lock] = {}

    def start(self, items: Sequence[pytest.Item]) -> None:
        for i, item in enumerate(items):
            marker = item.get_closest_marker("background")
            if marker is None:
                continue
            workdir = self._root / f"run{i:03d}"
            workdir.mkdir()
            spec: Sequence[str] | Callable[..., Sequence[str]] = marker.args[0]
            params = getattr(getattr(item, "callspec", None), "params", {})
            argv = spec(workdir, **params) if callable(spec) else spec
            env = marker.kwargs.get("env")
            group = marker.kwargs.get("group")
            lock = self._groups.setdefault(group, threading.Lock()) if group is not None else None
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=MAX_PARALLEL, thread_name_prefix="bg-run")
            self._runs[item.nodeid] = self._pool.submit(self._run, [str(a) for a in argv], workdir,
                                                        None if env is None else {**os.environ, **env}, lock)

    def _run(self, argv: Sequence[str], workdir: Path, env: dict[str, str] | None,
             lock: threading.Lock | None) -> BackgroundResult:
        if lock is None:
            return self._run_now(argv, workdir, env)
        with lock:
            return self._run_now(argv, workdir, env)

    def _run_now(self, argv: Sequence[str], workdir: Path, env: dict[str, str] | None) -> BackgroundResult:
        out_path, err_path = workdir / "stdout.txt", workdir / "stderr.txt"
        note = ""
        with out_path.open("wb") as out, err_path.open("wb") as err:
            if self._closing:
                return BackgroundResult(tuple(argv), -15, "", "[suite ended before the run started]", workdir)
            proc = subprocess.Popen([sys.executable, *argv], stdout=out, stderr=err, cwd=workdir, env=env)
            self._procs.add(proc)
            try:
                code = proc.wait(timeout=RUN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
                note = f"\n[background run killed after {RUN_TIMEOUT_S:.0f} s]"
            finally:
                self._procs.discard(proc)
        return BackgroundResult(tuple(argv), code, out_path.read_text(), err_path.read_text() + note, workdir)

    def result(self, nodeid: str) -> BackgroundResult:
        future = self._runs.get(nodeid)
        if future is None:
            raise pytest.UsageError(f"{nodeid} uses the background fixture without @pytest.mark.background")
        return future.result(timeout=RUN_TIMEOUT_S * 2)

    def wait_idle(self) -> None:
        """Wait until every run has finished (for tests whose checks need the CPU to themselves:
        the ``quiet_background`` fixture)."""
        for future in list(self._runs.values()):
            future.exception(timeout=RUN_TIMEOUT_S * 2)

    def close(self) -> None:
        self._closing = True
        for proc in list(self._procs):  # a run no test waited for (an interrupted session)
            proc.kill()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self._root, ignore_errors=True)
