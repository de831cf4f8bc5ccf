"""Offline verification of a recorded session: the same adapters and BookSessions as live.

Every recorded frame goes through the venue's decoder and the per-symbol
:class:`~bookkeeper.session.BookSession`, REST snapshot records are fed where they were
received, and the sessions' counters become the report. ``FetchSnapshot``/``Resubscribe``
actions cannot be executed on a recording; they are counted (a session left waiting for a
snapshot shows up as not synced in the per-instrument table).
"""

from __future__ import annotations

import os
import sys
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..actions import Alert, FetchSnapshot, Resubscribe
from ..errors import AdapterError, UsageError
from ..events import BookDelta, BookSnapshot, BookTicker, CloseReason, StreamClosed, VenueNotice
from ..ports import Adapter
from ..session import BookSession
from .recording import ReadProgress, RecordKind, read_records

__all__ = ["ReplayReport", "InstrumentReport", "replay"]

_TOTAL_KEYS = (
    "snapshots", "deltas_applied", "stale_dropped", "checksums_verified", "checksum_mismatches",
    "gaps", "crossed",
)  # fmt: skip


@dataclass(slots=True)
class InstrumentReport:
    symbol: str
    state: str
    last_seq: int | None
    stats: dict[str, int]


@dataclass(slots=True)
class ReplayReport:
    """The outcome of a replay. ``as_json()`` is the public ``--json`` contract."""

    venue: str
    files: list[str]
    messages: int = 0
    rest_records: int = 0
    parse_errors: int = 0
    snapshot_requests: int = 0
    resubscribe_requests: int = 0
    reconnects: int = 0
    connection_gaps: int = 0
    fast_path_frames: int = 0
    instruments: list[InstrumentReport] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    alert_count: int = 0
    parse_error_samples: list[str] = field(default_factory=list)

    def total(self, key: str) -> int:
        return sum(i.stats[key] for i in self.instruments)

    @property
    def ok(self) -> bool:
        """No checksum mismatch, gap, crossed book or parse error."""
        return not (self.total("checksum_mismatches") or self.total("gaps") or self.total("crossed")
                    or self.parse_errors or self.connection_gaps)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "venue": self.venue,
            "files": self.files,
            "messages": self.messages,
            "instruments": len(self.instruments),
        }
        for key in _TOTAL_KEYS:
            out[key] = self.total(key)
        out["parse_errors"] = self.parse_errors
        out.update({
            "ok": self.ok,
            "rest_records": self.rest_records,
            "duplicates": self.total("duplicates"),
            "buffered": self.total("buffered"),
            "bridged": self.total("bridged"),
            "stale_snapshots": self.total("stale_snapshots"),
            "invalid_inputs": self.total("invalid_inputs"),
            "missed_ids": self.total("missed_ids"),
            "ticker_checks": self.total("ticker_checks"),
            "ticker_mismatches": self.total("ticker_mismatches"),
            "synced_instruments": sum(1 for i in self.instruments if i.state == "synced"),
            "snapshot_requests": self.snapshot_requests,
            "resubscribe_requests": self.resubscribe_requests,
            "reconnects": self.reconnects,
            "connection_gaps": self.connection_gaps,
            "fast_path_frames": self.fast_path_frames,
            "alerts": self.alerts,
            "per_instrument": {
                i.symbol: {"state": i.state, "last_seq": i.last_seq, **i.stats} for i in self.instruments
            },
        })
        return out


ProgressFn = Callable[[int, int, int], None]
#: VenueNotice kinds meaning "this connection's own sequence broke" (every book on it is suspect)
_CONNECTION_GAPS = frozenset({"connection_gap", "connection_out_of_order"})


def replay(
    adapter: Adapter,
    paths: Sequence[str | os.PathLike[str]],
    *,
    progress: ProgressFn | None = None,
    max_alerts: int = 50,
) -> ReplayReport:
    """Replay recorded files of one venue and verify every book.

    Args:
        adapter: the venue adapter (``bookkeeper.adapters.get_adapter(name)``).
        paths: the files of one session (continuations and REST captures included).
        progress: called as ``progress(records_done, bytes_done, bytes_total)`` every 10,000
            records (bytes of the input files, compressed where they are gzip).
        max_alerts: how many alert details to keep (all are counted).

    Raises:
        UsageError: a file is missing, unreadable or of an unknown format.
    """
    report = ReplayReport(venue=adapter.name, files=[str(p) for p in paths])
    caps = adapter.capabilities
    decoder = adapter.new_decoder()
    sessions: dict[str, BookSession] = {}
    opened = 0
    fused = getattr(adapter, "fused", None)
    fast: BookSession | None = None

    def session_for(symbol: str) -> BookSession:
        s = sessions.get(symbol)
        if s is None:
            s = sessions[symbol] = BookSession(symbol, caps)
        return s

    def note(actions: list[Any]) -> None:
        for a in actions:
            t = type(a)
            if t is Alert:
                report.alert_count += 1
                if len(report.alerts) < max_alerts:
                    report.alerts.append({"kind": str(a.kind), "symbol": a.symbol, "seq": a.seq, "reason": a.reason})
            elif t is FetchSnapshot:
                report.snapshot_requests += 1
            elif t is Resubscribe:
                report.resubscribe_requests += 1

    n = 0
    try:
        meter = ReadProgress(paths) if progress is not None else None
        for rec in read_records(paths, meter):
            n += 1
            if meter is not None and n % 10_000 == 0:
                progress(n, meter.done, meter.total)  # type: ignore[misc]
            kind = rec.kind
            if kind is RecordKind.RECV:
                report.messages += 1
                # Synced steady state: one fused decode + sequence check + apply (C accelerator)
                # for the session the previous delta went to; anything else takes the normal path.
                if fast is not None and fast.apply_frame_fast(rec.data, fused):  # type: ignore[arg-type]
                    report.fast_path_frames += 1
                    continue
                try:
                    events = decoder.decode(rec.data, rec.ts_recv_ns)
                except AdapterError as exc:
                    report.parse_errors += 1
                    if len(report.parse_error_samples) < 20:
                        report.parse_error_samples.append(str(exc))
                    sym = getattr(exc, "symbol", None)
                    if sym is not None and sym in sessions:
                        note(sessions[sym].on_invalid_input(str(exc)))
                    continue
                for ev in events:
                    t = type(ev)
                    if t is BookDelta or t is BookSnapshot or t is BookTicker:
                        session = session_for(ev.symbol)  # type: ignore[union-attr]
                        actions = session.handle(ev)
                        if actions:
                            note(actions)
                        if t is BookDelta and fused is not None:
                            fast = session
                    elif t is VenueNotice and ev.kind in _CONNECTION_GAPS:  # type: ignore[union-attr]
                        report.connection_gaps += 1
                        for s in sessions.values():
                            note(s.on_connection_gap(f"{ev.kind}: {ev.message}"))  # type: ignore[union-attr]
            elif kind is RecordKind.REST:
                report.rest_records += 1
                try:
                    snap = adapter.parse_rest_snapshot(rec.data, url=rec.url, ts_recv_ns=rec.ts_recv_ns)
                except AdapterError as exc:
                    report.parse_errors += 1
                    if len(report.parse_error_samples) < 20:
                        report.parse_error_samples.append(str(exc))
                    continue
                symbol = snap.symbol
                if not symbol:
                    if len(sessions) != 1:
                        report.parse_errors += 1
                        report.parse_error_samples.append("REST snapshot names no symbol and the session has "
                                                          f"{len(sessions)} instruments")
                        continue
                    symbol = next(iter(sessions))
                    snap = msgspec.structs.replace(snap, symbol=symbol)
                note(session_for(symbol).on_snapshot(snap))
            elif kind is RecordKind.OPEN:
                opened += 1
                if opened > 1:  # a reconnect inside the recording
                    report.reconnects += 1
                    decoder = adapter.new_decoder()
                    for s in sessions.values():
                        note(s.on_stream_closed(StreamClosed(reason=CloseReason.ABNORMAL_CLOSURE,
                                                             ts_ns=rec.ts_recv_ns)))
    except (ValueError, OSError, EOFError, zlib.error) as exc:
        raise UsageError(f"cannot read recording: {exc}") from None
    for sym in sorted(sessions):
        s = sessions[sym]
        report.instruments.append(InstrumentReport(symbol=sym, state=str(s.state), last_seq=s.last_seq,
                                                   stats=s.stats.as_dict()))
    return report


def format_table(report: ReplayReport) -> str:
    """Human-readable summary: one row per instrument, then totals."""
    cols = ("symbol", "state", "last_seq", "snaps", "applied", "stale", "cksum ok", "cksum bad", "gaps", "crossed")
    rows = [cols]
    for i in report.instruments:
        st = i.stats
        rows.append((i.symbol, i.state, "-" if i.last_seq is None else str(i.last_seq), str(st["snapshots"]),
                     str(st["deltas_applied"]), str(st["stale_dropped"]), str(st["checksums_verified"]),
                     str(st["checksum_mismatches"]), str(st["gaps"]), str(st["crossed"])))
    widths = [max(len(r[c]) for r in rows) for c in range(len(cols))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in rows]
    j = report.as_json()
    lines.append("")
    lines.append(
        f"{report.venue}: {j['messages']} messages, {j['instruments']} instruments, {j['snapshots']} snapshots, "
        f"{j['deltas_applied']} deltas applied, {j['stale_dropped']} stale dropped, "
        f"{j['checksums_verified']} checksums verified, {j['checksum_mismatches']} mismatches, {j['gaps']} gaps, "
        f"{j['crossed']} crossed, {j['parse_errors']} parse errors"
    )
    for sample in report.parse_error_samples[:5]:
        lines.append(f"parse error: {sample}")
    for a in report.alerts[:10]:
        lines.append(f"alert: {a['kind']} {a['symbol']} seq={a['seq']}: {a['reason']}")
    lines.append("OK" if report.ok else "FAILED: see gaps / checksum mismatches / crossed / parse errors above")
    return "\n".join(lines)


def stderr_progress() -> ProgressFn | None:
    """A ``\\r`` progress line on stderr when it is a terminal, else ``None``."""
    if not sys.stderr.isatty():
        return None

    def show(records: int, done: int, total: int) -> None:
        frac = min(done / total, 1.0) if total else 0.0
        bar = "#" * int(frac * 30)
        sys.stderr.write(f"\r[{bar:<30}] {frac:4.0%}  {records:,} records")
        sys.stderr.flush()

    return show

