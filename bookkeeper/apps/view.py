"""The live terminal view of ``bookkeeper demo`` / ``bookkeeper chaos`` (ANSI, no curses)."""

from __future__ import annotations

import logging
import math
import sys
from collections import deque
from decimal import Decimal
from typing import Any, TextIO

__all__ = ["TerminalView", "RecentLog", "format_summary", "format_number"]


class RecentLog(logging.Handler):
    """Keeps the last log lines for the view instead of scribbling over it."""

    def __init__(self, maxlen: int = 8) -> None:
        super().__init__(level=logging.INFO)
        self.lines: deque[str] = deque(maxlen=maxlen)
        self.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record)[:160])


def format_number(value: float | str) -> str:
    """A price or size as the venue wrote it (a string is kept as is), or else the shortest
    decimal that reads back as the same float, never in exponent form.

    ``:g`` keeps 6 significant digits, so a 61837.63 / 61837.64 book looked locked.

    Args:
        value: the venue's string, or the book's float.

    Returns:
        The text.

    >>> format_number(61837.63), format_number(30000.0), format_number(1e-05), format_number("0.10")
    ('61837.63', '30000', '0.00001', '0.10')
    """
    if isinstance(value, str):
        return value
    if not math.isfinite(value):
        return repr(value)
    # repr: the shortest digits that read back as the same float; Decimal: without an exponent
    return format(Decimal(repr(value)), "f").removesuffix(".0")


def _px(level: Any) -> str:
    if not level:
        return "-"
    return f"{format_number(level[0])} x {format_number(level[1])}"


class TerminalView:
    """Redraws a status table in place.

    Each book of ``status["books"]`` gives ``best_bid``/``best_ask`` as ``(price, size)``
    floats (or ``None``), and may give ``best_bid_raw``/``best_ask_raw``: the venue's own
    ``(price, size)`` strings, shown in their place when present.
    """

    def __init__(self, out: TextIO = sys.stdout, log: RecentLog | None = None) -> None:
        self._out = out
        self._log = log
        self._first = True

    def __call__(self, status: dict[str, Any]) -> None:
        lines = [
            f"bookkeeper demo — simulator on 127.0.0.1 — {status['elapsed_s']:.1f}s — "
            f"checks {status['checks']} (mismatches {status['mismatches']}) — Ctrl-C to stop",
            "",
            f"{'venue':8} {'symbol':10} {'state':18} {'last_seq':>10} {'best bid':>22} {'best ask':>22} "
            f"{'resume':>6} {'ws_snap':>7} {'rest':>5} {'gaps':>5} {'breaker':>9}",
        ]
        for b in status["books"]:
            seq = "-" if b["last_seq"] is None else str(b["last_seq"])
            lines.append(
                f"{b['venue']:8} {b['symbol']:10} {b['state']:18} {seq:>10} "
                f"{_px(b.get('best_bid_raw') or b['best_bid']):>22} "
                f"{_px(b.get('best_ask_raw') or b['best_ask']):>22} {b['resumes']:>6} {b['ws_snapshots']:>7} {b['rest_snapshots']:>5} "
                f"{b['gaps']:>5} {b['breaker']:>9}")
        faults = ", ".join(f"{k} {v}" for k, v in sorted(status["faults_injected"].items())) or "none yet"
        lines += ["", f"faults injected: {faults}", f"disconnect records: {status['disconnects']}"]
        for r in status["last_records"]:
            lines.append(f"  {r['ts']} {r['exchange']}: {r['close_cause']} (code {r['close_code']}) "
                         f"-> plan {r['plan']} in {r['reconnect_latency_ms']} ms")
        if self._log is not None and self._log.lines:
            lines += ["", "recent events:"] + [f"  {ln}" for ln in self._log.lines]
        text = "\n".join(ln + "\x1b[K" for ln in lines)
        prefix = "\x1b[2J\x1b[H" if self._first else "\x1b[H"
        self._first = False
        self._out.write(prefix + text + "\x1b[J\n")
        self._out.flush()


def format_summary(report: dict[str, Any]) -> str:
    """A human summary of a chaos/demo report."""
    venues = report.get("venues") or [report.get("venue")]
    rec = report["recoveries"]
    ttc = report["time_to_consistent_ms"]
    after = report.get("consistent_after_connect_ms", {})
    faults = ", ".join(f"{k} {v}" for k, v in sorted(report["faults_injected"].items()))
    ok = report["mismatches"] == 0 and report["final_consistent"]
    lines = [
        f"venues: {', '.join(venues)}   seed: {report['seed']}   duration: {report['duration_s']:.1f}s",
        f"faults injected: {faults}",
        f"disconnects: {report['disconnects']}   reconnects: {report['reconnects']}   "
        f"disconnect records: {report['disconnect_records']}   breaker opened: {report['breaker_opened']}",
        f"recoveries: resume {rec['resume']}, ws_snapshot {rec['ws_snapshot']}, rest_snapshot {rec['rest_snapshot']}, "
        f"halt {rec['halt']}",
        f"checks against the simulator's truth: {report['checks']}   mismatches: {report['mismatches']}   "
        f"final consistent: {report['final_consistent']}",
        f"time to consistent (ms): p50 {ttc['p50']}  p99 {ttc['p99']}  max {ttc['max']}"
        + (f"   (after the connection was up: p99 {after['p99']})" if after else ""),
        f"reconnect attempts, max per minute: {report['reconnect_attempts_max_per_min']}",
    ]
    for m in report.get("mismatch_samples", [])[:5]:
        lines.append(f"MISMATCH: {m}")
    lines.append("OK: every book matched the simulator" if ok else "FAILED: a book diverged or did not converge")
    return "\n".join(lines)
