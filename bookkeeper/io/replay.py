"""Offline verification of a recorded session: the same adapters and BookSessions as live.

Every recorded frame goes through the venue's decoder and the per-symbol
:class:`~bookkeeper.session.BookSession`, REST snapshot records are fed where they were
received, and the sessions' counters become the report. ``FetchSnapshot``/``Resubscribe``
actions cannot be executed on a recording; they are counted (a session left waiting for a
snapshot shows up as not synced in the per-instrument table, and fails the report).

A replay never dies on a frame: whatever the decoder or a session raises for one record is
a parse error of that record (counted, a few kept as samples naming the file and line), and
the replay goes on. It fails (``ok`` is false) on any sign that a book was wrong or could not
be verified: checksum mismatch, gap, crossed book, parse error, connection gap, divergence
from a snapshot at the same id, ticker mismatch, input a session refused, an instrument not
synced at the end, or input
that does not look like the venue's at all (no instrument, or mostly unrecognized frames).

*Unrecognized* frames: a decoder returns ``[]`` both for frames of a channel it does not need
(tickers, klines: the venue's own frames) and for frames that are not the venue's at all.
Venues send those other channels in the same envelope as the book (the same first key of the
top-level JSON object: OKX ``{"arg":``, Deribit ``{"jsonrpc":``, Binance ``{"stream":``), so
a frame that yields nothing counts as unrecognized only when no frame the decoder did
translate shares its envelope. On every capture in ``fixtures/real`` replayed with its venue
this leaves a handful (welcome and ack frames) at most; with the wrong venue, nearly all.
"""

from __future__ import annotations

import os
import sys
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..actions import Alert, FetchSnapshot, Resubscribe, SyncState
from ..connection import BookConnection, FaultKind, Output
from ..errors import AdapterError, UsageError
from ..events import (
    BookDelta,
    BookSnapshot,
    BookTicker,
    CloseReason,
    StreamClosed,
    StreamOpened,
)
from ..ports import Adapter
from ..session import BookSession
from .recording import ReadProgress, RecordKind, read_rows

__all__ = ["InstrumentReport", "ReplayReport", "format_table", "guess_venues", "replay", "stderr_progress"]

#: parse error samples kept (all are counted)
MAX_SAMPLES = 20
#: frames kept from the start of the recording to ask other venues' decoders about
_HEAD_FRAMES = 200
#: distinct envelopes of unrecognized frames tracked; the rest count as unrecognized
_MAX_ENVELOPES = 256
#: an envelope (see the module docstring) is read from the first bytes of a frame
_ENVELOPE_BYTES = 48
_BOOK_EVENTS = (BookDelta, BookSnapshot, BookTicker)

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
    #: frames no book consumed that are not the venue's (see the module docstring)
    unrecognized: int = 0
    #: other venues whose decoders translate the first frames into book events, best first
    #: (filled only when the input does not look like this venue's)
    likely_venues: list[str] = field(default_factory=list)

    def total(self, key: str) -> int:
        return sum(i.stats.get(key, 0) for i in self.instruments)

    @property
    def unsynced_instruments(self) -> int:
        """Instruments whose book is not SYNCED at the end (unverified or failed)."""
        return sum(1 for i in self.instruments if i.state != SyncState.SYNCED)

    @property
    def input_problem(self) -> str | None:
        """Why the input does not look like this venue's recording, or ``None``.

        No instrument found, or most messages unrecognized or unparsable: most likely a
        capture of another venue (named when another registered decoder translates it).
        """
        n = self.messages
        foreign = self.unrecognized + self.parse_errors
        if self.instruments and foreign * 2 <= n:
            return None
        what = (f"no instrument found in {n:,} message{'' if n == 1 else 's'}" if not self.instruments
                else f"{foreign:,} of {n:,} messages not recognized as {self.venue}")
        if self.likely_venues:
            names = " or ".join(self.likely_venues)
            return f"{what}: is this a {names} capture? (--venue {self.likely_venues[0]})"
        return f"{what}: is --venue {self.venue} right?"

    def problems(self) -> list[str]:
        """Every failed check, one short phrase each (empty when ``ok``)."""
        out = [f"{v:,} {name}" for name, v in (
            ("checksum mismatches", self.total("checksum_mismatches")),
            # a gap proven by the first delta after a reconnect inside the recording is the
            # normal way to a resync (ids were missed while disconnected); whether the book then
            # recovered is judged by "instruments not synced at the end"
            ("gaps", self.total("gaps") - self.total("resume_misses")),
            ("crossed", self.total("crossed")),
            ("parse errors", self.parse_errors),
            ("connection gaps", self.connection_gaps),
            ("invalid inputs", self.total("invalid_inputs")),
            ("diverged", self.total("diverged")),
            ("ticker mismatches", self.total("ticker_mismatches")),
            ("instruments not synced at the end", self.unsynced_instruments),
        ) if v]
        problem = self.input_problem
        if problem is not None:
            out.append(problem)
        return out

    @property
    def ok(self) -> bool:
        """No checksum mismatch, gap, crossed book, parse error, connection gap, input a
        session refused, divergence, ticker mismatch or instrument left unsynced, and the
        input looks like the venue's."""
        return not self.problems()

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
            "diverged": self.total("diverged"),
            "resume_misses": self.total("resume_misses"),
            "synced_instruments": sum(1 for i in self.instruments if i.state == SyncState.SYNCED),
            "unsynced_instruments": self.unsynced_instruments,
            "unrecognized": self.unrecognized,
            "input_problem": self.input_problem,
            "likely_venues": self.likely_venues,
            "problems": self.problems(),
            "snapshot_requests": self.snapshot_requests,
            "resubscribe_requests": self.resubscribe_requests,
            "reconnects": self.reconnects,
            "connection_gaps": self.connection_gaps,
            "fast_path_frames": self.fast_path_frames,
            "alerts": self.alerts,
            "parse_error_samples": self.parse_error_samples,
            "per_instrument": {
                i.symbol: {"state": i.state, "last_seq": i.last_seq, **i.stats} for i in self.instruments
            },
        })
        return out


ProgressFn = Callable[[int, int, int], None]


def _envelope(frame: bytes) -> bytes:
    """The first key of a JSON object frame (``b'{"arg"'``), ``b"["`` for an array, else the
    first byte: what frames of one venue's channels share (module docstring)."""
    if frame[:2] != b'{"':  # rare: an array, leading blanks, not JSON
        frame = frame[:_ENVELOPE_BYTES].lstrip()
        if frame[:1] != b"{":
            return frame[:1]
    end = frame.find(b'"', 2, _ENVELOPE_BYTES)
    return frame[: end + 1] if end > 0 else frame[:_ENVELOPE_BYTES]


def _book_frames(adapter: Adapter, frames: Sequence[bytes]) -> int:
    """How many of ``frames`` the adapter's decoder translates into book events."""
    decoder = adapter.new_decoder()
    n = 0
    for frame in frames:
        try:
            events = decoder.decode(frame, 0)
        except Exception:  # noqa: BLE001, S112 - a foreign decoder may fail any way: it did not match
            continue
        if any(isinstance(ev, _BOOK_EVENTS) for ev in events):
            n += 1
    return n


def guess_venues(frames: Sequence[bytes], candidates: Sequence[Adapter]) -> list[str]:
    """The venues whose decoders translate the most of ``frames`` into book events (ties
    all named, at most three), or ``[]`` when none translates any.

    Args:
        frames: raw frames from the start of a recording.
        candidates: the adapters to try.

    Returns:
        Venue names, best first.
    """
    scores = [(_book_frames(a, frames), a.name) for a in candidates]
    best = max((sc for sc, _ in scores), default=0)
    if best == 0:
        return []
    return [name for sc, name in scores if sc == best][:3]


def replay(
    adapter: Adapter,
    paths: Sequence[str | os.PathLike[str]],
    *,
    progress: ProgressFn | None = None,
    max_alerts: int = 50,
    alternatives: Sequence[Adapter] = (),
) -> ReplayReport:
    """Replay recorded files of one venue and verify every book.

    Args:
        adapter: the venue adapter (``bookkeeper.adapters.get_adapter(name)``).
        paths: the files of one session (continuations and REST captures included; ``-`` is
            standard input).
        progress: called as ``progress(records_done, bytes_done, bytes_total)`` every 10,000
            records (bytes of the input files, compressed where they are gzip).
        max_alerts: how many alert details to keep (all are counted).
        alternatives: other venues' adapters; when the input does not look like ``adapter``'s,
            the report names those whose decoders translate its first frames
            (``likely_venues``).

    Returns:
        The report; ``report.ok`` is the verdict.

    Raises:
        UsageError: a file is missing, a directory, unreadable, damaged or of an unknown
            format (the message names the file, and the line where it is known).
    """
    report = ReplayReport(venue=adapter.name, files=[str(p) for p in paths])
    names = ["<stdin>" if f == "-" else f for f in report.files]
    caps = adapter.capabilities
    # BookSession is looked up when a symbol is first seen (a test substitutes it)
    conn = BookConnection(adapter, factory=lambda symbol: BookSession(symbol, caps))
    sessions = conn.sessions
    receive = conn.receive_frame
    opened = 0
    head: list[bytes] = []  # the first frames, to ask other venues about (bounded)
    pending: dict[bytes, int] = {}  # envelope -> frames that yielded nothing, not yet matched
    matched: set[bytes] = set()  # envelopes of frames the decoder translated
    unmatched_overflow = 0
    last_env: bytes | None = None  # the previous frame's envelope, and the last one matched
    last_matched: bytes | None = None

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

    def parse_error(source: int, line: int, text: str) -> None:
        report.parse_errors += 1
        if len(report.parse_error_samples) < MAX_SAMPLES:
            where = names[source] if source < len(names) else "?"
            report.parse_error_samples.append(f"{where}: line {line}: {text}")

    def settle(kind: RecordKind, source: int, line: int, out: Output) -> None:
        """Count what the connection produced for one record (a frame, a fan-out)."""
        for e in out.emitted:
            note(e.actions)
        report.connection_gaps += out.connection_gaps
        for rej in out.rejected:
            # A bad frame is a parse error, never the replay's end: decoders should raise only
            # AdapterError and sessions nothing at all; a replay that verifies them must
            # survive the day one of them does not. The session was told (it may have lost a
            # delta); a connection no longer trusted needs nothing here: a recording goes on.
            parse_error(source, line, f"{rej.symbol}: {rej.reason}" if kind is RecordKind.OPEN else rej.reason)
            note(rej.actions)
            for exc in rej.errors:
                report.parse_errors += 1
                if len(report.parse_error_samples) < MAX_SAMPLES:
                    report.parse_error_samples.append(f"{rej.symbol}: {type(exc).__name__}: {exc}")

    n = 0
    recv = RecordKind.RECV
    # the per-frame counters stay locals in the loop (stored in the report after it)
    messages = fast_frames = 0
    try:
        meter = ReadProgress(paths) if progress is not None else None
        # rows, not Record objects (read_rows: a frozen Record costs ~50x a tuple to build)
        for ts, kind, data, url, source, line in read_rows(paths, meter):
            n += 1
            if meter is not None and n % 10_000 == 0:
                progress(n, meter.done, meter.total)  # type: ignore[misc]
            if kind is recv:
                messages += 1
                if len(head) < _HEAD_FRAMES:
                    head.append(data)
                out = receive(data, ts)
                if out is None:  # the fused fast path applied it
                    fast_frames += 1
                    continue
                events = out.events
                if events is not None:
                    # Nearly every frame of a capture shares the previous frame's envelope: a
                    # frame that starts with it has it (it ends at the first quote after the
                    # opening '{"'), so one startswith replaces the parse and the set lookups.
                    if last_env is not None and data.startswith(last_env):
                        env = last_env
                    else:
                        env = last_env = _envelope(data)
                    if events:
                        if env is not last_matched:
                            last_matched = env
                            if env not in matched and len(matched) < _MAX_ENVELOPES:
                                matched.add(env)
                                pending.pop(env, None)
                    elif env not in matched:
                        if env in pending or len(pending) < _MAX_ENVELOPES:
                            pending[env] = pending.get(env, 0) + 1
                        else:
                            unmatched_overflow += 1
                if out.emitted or out.rejected or out.connection_gaps:
                    settle(kind, source, line, out)
            elif kind is RecordKind.REST:
                report.rest_records += 1
                try:
                    snap = adapter.parse_rest_snapshot(data, url=url, ts_recv_ns=ts)
                except AdapterError as exc:
                    parse_error(source, line, str(exc))
                    continue
                except Exception as exc:  # noqa: BLE001 - see settle()
                    parse_error(source, line, f"{type(exc).__name__}: {exc}")
                    continue
                symbol = snap.symbol
                if not symbol:
                    if len(sessions) != 1:
                        parse_error(source, line, f"REST snapshot names no symbol and the session has "
                                                  f"{len(sessions)} instruments")
                        continue
                    symbol = next(iter(sessions))
                    snap = msgspec.structs.replace(snap, symbol=symbol)
                session = conn.session(symbol)
                assert session is not None  # the factory makes one
                try:
                    note(session.on_snapshot(snap))
                except Exception as exc:  # noqa: BLE001 - see settle()
                    settle(kind, source, line, Output(rejected=[conn.reject(FaultKind.FAULT, symbol, exc)]))
            elif kind is RecordKind.OPEN:
                opened += 1
                if opened > 1:  # a reconnect inside the recording
                    report.reconnects += 1
                    settle(kind, source, line,
                           conn.close(StreamClosed(reason=CloseReason.ABNORMAL_CLOSURE, ts_ns=ts)))
                    settle(kind, source, line, conn.open(StreamOpened(ts_ns=ts, attempt=opened - 1)))
    except (ValueError, OSError, EOFError, zlib.error) as exc:
        # read_rows names the file and line itself; this is the last line of defence
        raise UsageError(f"cannot read recording: {exc}") from None
    finally:
        report.messages = messages
        report.fast_path_frames = fast_frames
    report.unrecognized = sum(c for env, c in pending.items() if env not in matched) + unmatched_overflow
    for sym in sorted(sessions):
        s = sessions[sym]
        report.instruments.append(InstrumentReport(symbol=sym, state=str(s.state), last_seq=s.last_seq,
                                                   stats=s.stats.as_dict()))
    if report.input_problem is not None and alternatives:
        report.likely_venues = guess_venues(head, [a for a in alternatives if a.name != adapter.name])
    return report


def format_table(report: ReplayReport) -> str:
    """Human-readable summary: one row per instrument, then totals.

    Args:
        report: a replay's report.

    Returns:
        The table, a totals line, samples of parse errors and alerts, and the verdict
        (``OK`` or ``FAILED: <every failed check>``) as the last line.
    """
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
        f"{j['crossed']} crossed, {j['parse_errors']} parse errors, {j['diverged']} diverged, "
        f"{j['ticker_mismatches']} ticker mismatches, {j['unrecognized']} unrecognized"
    )
    for sample in report.parse_error_samples[:5]:
        lines.append(f"parse error: {sample}")
    for a in report.alerts[:10]:
        lines.append(f"alert: {a['kind']} {a['symbol']} seq={a['seq']}: {a['reason']}")
    problems = j["problems"]
    lines.append("FAILED: " + "; ".join(problems) if problems else "OK")
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

