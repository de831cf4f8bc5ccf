"""A real ``kill -9``: a child process applies N fills to a SqliteFillStore file; the test
SIGKILLs it at seeded moments K times, restarts it from the store each time, lets the last run
finish, then checks that no fill is missing or duplicated and that positions, balances and
cursors equal the ones the N fills give.

The kill moments: the child prints a line after each committed batch; the test kills it right
after reading a seeded number of them, while the child keeps running (so the signal lands
anywhere in its loop, inside transactions included). No sleeps: every wait is on the child's
output, with a bounded timeout. Set ``BOOKKEEPER_KILL_SEED`` to replay a seed.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

from store_kill_child import ACCOUNT, expected_ledger, make_batches, make_fills

from bookkeeper.io.store import SqliteFillStore

CHILD = Path(__file__).with_name("store_kill_child.py")
N_FILLS = 600
KILLS = 25
LINE_TIMEOUT_S = 20.0  # a hung child fails the test instead of hanging it; never a wait for work


class Child:
    """The child process and a thread turning its stdout into a queue of lines."""

    def __init__(self, db: Path, seed: int, log: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), str(db), str(seed), str(N_FILLS)], stdout=subprocess.PIPE,
            stderr=log.open("ab"), text=True, cwd=CHILD.parent)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)  # EOF

    def next_line(self, context: str) -> str | None:
        try:
            return self.lines.get(timeout=LINE_TIMEOUT_S)
        except queue.Empty:
            self.proc.kill()
            raise AssertionError(f"child silent for {LINE_TIMEOUT_S}s ({context})") from None


def test_kill_9_at_random_moments_loses_and_duplicates_no_fill(tmp_path: Path) -> None:
    seed = int(os.environ.get("BOOKKEEPER_KILL_SEED", "20260"))
    ctx = f"seed={seed} (rerun with BOOKKEEPER_KILL_SEED={seed})"
    rng = random.Random(seed)
    db, log = tmp_path / "ledger.sqlite3", tmp_path / "child.stderr"
    batches = len(make_batches(seed, make_fills(seed, N_FILLS)))
    kills_mid_run, resumed_from = 0, []
    for _ in range(KILLS):
        child = Child(db, seed, log)
        first = child.next_line(ctx)
        assert first is not None and first.startswith("resume "), f"{ctx}: {first!r}; stderr: {log.read_text()}"
        resumed_from.append(int(first.split()[1]))
        # kill after a seeded number of committed batches (0: right after loading)
        target = rng.randint(0, max(1, batches // (2 * KILLS)))
        finished = False
        for _ in range(target):
            line = child.next_line(ctx)
            if line in (None, "done"):
                finished = True
                break
        child.proc.send_signal(signal.SIGKILL)
        child.proc.wait(timeout=LINE_TIMEOUT_S)
        kills_mid_run += not finished and child.proc.returncode == -signal.SIGKILL
    final = Child(db, seed, log)
    while (line := final.next_line(ctx)) not in (None, "done"):
        pass
    assert line == "done" and final.proc.wait(timeout=LINE_TIMEOUT_S) == 0, f"{ctx}: {log.read_text()}"

    assert kills_mid_run == KILLS, f"{ctx}: only {kills_mid_run} of {KILLS} kills landed mid-run"
    assert resumed_from == sorted(resumed_from) and resumed_from[-1] > 0, f"{ctx}: resumed from {resumed_from}"
    want = expected_ledger(seed, N_FILLS)
    expected_ids = sorted((f.symbol, f.fill_id) for f in make_fills(seed, N_FILLS))
    with SqliteFillStore(db) as store:
        stored = store.fill_ids(ACCOUNT)
        missing = sorted(set(expected_ids) - set(stored))
        duplicated = len(stored) - len(set(stored))
        assert (missing, duplicated, store.fill_count()) == ([], 0, N_FILLS), f"{ctx}: missing {missing[:5]}"
        got = store.load()
    assert got.positions(ACCOUNT) == want.positions(ACCOUNT), ctx
    assert got.balances(ACCOUNT) == want.balances(ACCOUNT), ctx
    assert got.cursors(ACCOUNT) == want.cursors(ACCOUNT), ctx
    assert got.state() == want.state(), ctx
