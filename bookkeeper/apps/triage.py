"""``bookkeeper triage``: name the likely causes of a disconnect history (see the pattern, not
the event).

Theory of operation
-------------------
Input is disconnect-record JSON lines (:mod:`bookkeeper.io.records`) from one or many bot
instances. :func:`parse_line` turns each line into a :class:`TriageRecord`, tolerating what
older versions and other tools write: ``ts`` as ISO 8601 text, Unix epoch seconds or
milliseconds (a number above 10^11 is milliseconds: as seconds it would be after the year
5000); any field may be missing or of the wrong type (it is then unknown, ``None``); a
missing ``close_cause`` is derived from ``close_code``; a missing ``bot_instance_id`` is the
file's name. A line that is not a JSON object is *malformed*: counted, sampled in the report,
never fatal.

Each detector (:data:`DETECTORS`) is a pure function of the parsed records that returns a
:class:`Finding` (the pattern, a confidence in [0, 1], the evidence in words, the first safe
move, the affected instances and channels) or ``None``. A confidence is built from the same
three parts in every detector: how many records show the pattern (``1 - 0.5**n``: one event
is never more than a coin toss, a pattern needs repetition), which share of the affected
streams' disconnects they are (so coexisting faults on *other* instances or channels do not
dilute it), and how well they fit the pattern's shape (a consistent idle period, irregular
times, a rate that a healthy line does not reach ...). :func:`triage` ranks the findings,
most likely first; on a healthy log none is above 0.5.

The five patterns and their first safe moves are the triage table of issue [ops]
(:data:`FIRST_SAFE_MOVE`). ``private_auth_expiry`` can only be seen on private channels,
which the ingest does not have yet: it is exercised with generated logs only.
"""

from __future__ import annotations

import enum
import gzip
import itertools
import math
import statistics
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from bookkeeper.errors import UsageError
from bookkeeper.events import CloseReason

__all__ = [
    "DETECTORS",
    "FIRST_SAFE_MOVE",
    "Finding",
    "Pattern",
    "TriageRecord",
    "TriageReport",
    "detect_connection_limit",
    "detect_idle_timeout",
    "detect_network_instability",
    "detect_private_auth_expiry",
    "detect_reconnect_rate_limited",
    "format_report",
    "max_per_minute",
    "parse_line",
    "parse_ts",
    "percentile",
    "read_records",
    "triage",
    "triage_files",
]


class Pattern(enum.StrEnum):
    """The triage table's pattern keys (a public contract of ``--json``)."""

    IDLE_TIMEOUT = "idle_timeout"
    CONNECTION_LIMIT = "connection_limit"
    NETWORK_INSTABILITY = "network_instability"
    RECONNECT_RATE_LIMITED = "reconnect_rate_limited"
    PRIVATE_AUTH_EXPIRY = "private_auth_expiry"


#: the triage table's first safe move of each pattern (the finding adds the numbers)
FIRST_SAFE_MOVE: dict[Pattern, str] = {
    Pattern.IDLE_TIMEOUT: "app-level ping shorter than that period",
    Pattern.CONNECTION_LIMIT: "stagger connections, jitter start-up, check per-IP limits",
    Pattern.NETWORK_INSTABILITY: "singleflight + jittered reconnect, breaker for persistence",
    Pattern.RECONNECT_RATE_LIMITED: "back off harder, cap attempts per minute",
    Pattern.PRIVATE_AUTH_EXPIRY: "re-authenticate before expiry",
}

#: close code -> cause, for records that carry a code but no ``close_cause``
_CAUSE_OF_CODE: dict[int, CloseReason] = {
    1006: CloseReason.ABNORMAL_CLOSURE,
    429: CloseReason.RATE_LIMITED,
    418: CloseReason.RATE_LIMITED,
    401: CloseReason.AUTH_FAILED,
    403: CloseReason.AUTH_FAILED,
}
_RATE_LIMIT_CODES = frozenset({429, 418})
_AUTH_CODES = frozenset({401, 403})
#: closes that end a connection without the server saying why (what a flaky network does)
_NETWORK_CAUSES = frozenset({CloseReason.ABNORMAL_CLOSURE, CloseReason.TCP_ERROR, CloseReason.PING_TIMEOUT})
#: closes an idle cut can show as: no close frame, our own staleness/ping timers, or a proxy's close frame
_IDLE_CAUSES = frozenset({CloseReason.ABNORMAL_CLOSURE, CloseReason.IDLE_TIMEOUT, CloseReason.PING_TIMEOUT,
                          CloseReason.TCP_ERROR, CloseReason.SERVER_CLOSE, None})

#: a number ``ts`` above this is milliseconds (as seconds it would be after the year 5000)
_MS_THRESHOLD = 1e11
#: below this, data was still flowing when the connection ended (venues push every 0.1-1 s)
FLOWING_MS = 1000.0
#: a connection younger than this when it ended is "short-lived" (a reconnect loop)
SHORT_LIVED_S = 10.0
#: a connection this young (or a failed open) right after a start counts for connection_limit
YOUNG_S = 30.0
#: instances failing within this window fail "together"
BURST_WINDOW_S = 30.0
#: relative tolerance of a "consistent" period (idle time, connection age): a proxy's idle
#: timer is exact, so chance coincidences of quiet channels stay out
IDLE_TOLERANCE = 0.05
AGE_TOLERANCE = 0.05
#: most samples of malformed lines kept in the report
_MAX_SAMPLES = 10


# ---------------------------------------------------------------------------- records
@dataclass(frozen=True, slots=True, kw_only=True)
class TriageRecord:
    """One disconnect record as triage sees it (unknown fields are ``None``).

    Attributes:
        ts_s: Unix time in seconds.
        instance, exchange, channel: where it happened (``channel`` is ``public`` when absent).
        close_code: WebSocket close code or HTTP status.
        cause: the :class:`CloseReason` (from ``close_cause``, else derived from the code).
        raw_cause: ``close_cause`` as written (an unknown spelling stays visible here).
        last_message_ago_ms, uptime_s, reconnect_attempt, reconnect_success,
        reconnect_latency_ms, missed_messages: the record's fields.
        source: ``file:line``.
    """

    ts_s: float | None
    instance: str
    exchange: str | None
    channel: str
    close_code: int | None
    cause: CloseReason | None
    raw_cause: str | None
    last_message_ago_ms: float | None
    uptime_s: float | None
    reconnect_attempt: int | None
    reconnect_success: bool | None
    reconnect_latency_ms: float | None
    missed_messages: int | None
    source: str

    @property
    def stream(self) -> tuple[str, str]:
        """``(instance, channel)``: one connection's history."""
        return (self.instance, self.channel)

    @property
    def is_local(self) -> bool:
        """We closed it on purpose (shutdown, restart): not a disconnect to explain."""
        return self.cause is CloseReason.LOCAL_SHUTDOWN

    @property
    def failed_open(self) -> bool:
        """A connection attempt that never opened (its own record, uptime 0)."""
        return self.uptime_s == 0 and self.reconnect_success is not True


def parse_ts(value: object) -> float | None:
    """A record's ``ts`` to Unix seconds.

    Args:
        value: ISO 8601 text (``Z`` or an offset; no offset means UTC), epoch seconds or
            milliseconds (a number, or digits in a string).

    Returns:
        Unix seconds, or ``None`` when it is missing or not a time.

    >>> parse_ts("2026-01-02T03:04:05.678Z"), parse_ts(1767323045.678), parse_ts(1767323045678)
    (1767323045.678, 1767323045.678, 1767323045.678)
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            try:
                dt = datetime.fromisoformat(text)
            except ValueError:
                return None
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            return dt.timestamp()
    if isinstance(value, int | float) and math.isfinite(value) and value > 0:
        return value / 1000.0 if value > _MS_THRESHOLD else float(value)
    return None


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _int(value: object) -> int | None:
    n = _num(value)
    return int(n) if n is not None and n == int(n) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _cause(raw: str | None, code: int | None) -> CloseReason | None:
    if raw is not None:
        try:
            return CloseReason(raw)
        except ValueError:
            pass
    if code is None:
        return None
    if code in _CAUSE_OF_CODE:
        return _CAUSE_OF_CODE[code]
    return CloseReason.SERVER_CLOSE if 1000 <= code < 5000 else None


def parse_line(line: str | bytes, *, source: str, default_instance: str) -> TriageRecord:
    """One JSON line to a :class:`TriageRecord`.

    Args:
        line: the text of the line.
        source: ``file:line`` (kept on the record).
        default_instance: the instance when the record names none (the file's name).

    Returns:
        The record; fields that are missing or of the wrong type are ``None``.

    Raises:
        ValueError: the line is not a JSON object (a malformed line).
    """
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"not a JSON object but {type(data).__name__}")  # noqa: TRY004 - one "malformed" error
    code = _int(data.get("close_code"))
    raw = _text(data.get("close_cause"))
    success = data.get("reconnect_success")
    return TriageRecord(
        ts_s=parse_ts(data.get("ts")),
        instance=_text(data.get("bot_instance_id")) or default_instance,
        exchange=_text(data.get("exchange")),
        channel=_text(data.get("channel")) or "public",
        close_code=code,
        cause=_cause(raw, code),
        raw_cause=raw,
        last_message_ago_ms=_num(data.get("last_message_ago_ms")),
        uptime_s=_num(data.get("uptime_seconds")),
        reconnect_attempt=_int(data.get("reconnect_attempt")),
        reconnect_success=success if isinstance(success, bool) else None,
        reconnect_latency_ms=_num(data.get("reconnect_latency_ms")),
        missed_messages=_int(data.get("missed_messages_count")),
        source=source,
    )


@dataclass(slots=True)
class _Parsed:
    records: list[TriageRecord] = field(default_factory=list)
    malformed: int = 0
    samples: list[str] = field(default_factory=list)


def _open(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{path}: is a directory, not a records file", path=path)
    try:
        fh = p.open("rb")
        if fh.read(2) == b"\x1f\x8b":
            fh.close()
            return gzip.open(p, "rb")  # type: ignore[return-value]
        fh.seek(0)
        return fh
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}", path=path) from None


def read_records(paths: Sequence[str]) -> tuple[list[TriageRecord], int, list[str]]:
    """Read and parse records files (JSON lines; gzip ok; ``-`` is standard input).

    Args:
        paths: the files.

    Returns:
        ``(records, malformed line count, samples of malformed lines as "file:line: why")``.

    Raises:
        UsageError: a file cannot be opened or read.
    """
    out = _Parsed()
    for path in paths:
        name = "stdin" if path == "-" else Path(path).name
        instance = name.split(".")[0] or name
        fh = _open(path)
        try:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    out.records.append(parse_line(line, source=f"{name}:{n}", default_instance=instance))
                except ValueError as exc:
                    out.malformed += 1
                    if len(out.samples) < _MAX_SAMPLES:
                        out.samples.append(f"{name}:{n}: {exc}")
        except (OSError, EOFError) as exc:  # a truncated gzip, a read error
            raise UsageError(f"{path}: cannot read: {exc}", path=path) from None
        finally:
            if fh is not sys.stdin.buffer:
                fh.close()
    return out.records, out.malformed, out.samples


# ---------------------------------------------------------------------------- findings
@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """A likely cause with its evidence.

    Attributes:
        pattern: the triage table's key.
        confidence: 0-1 (above 0.5: more likely than not).
        evidence: what in the records shows it, in words with numbers.
        suggestion: the first safe move with this log's numbers.
        records: how many records show it.
        instances, channels, exchanges: what it affects.
    """

    pattern: Pattern
    confidence: float
    evidence: tuple[str, ...]
    suggestion: str
    records: int
    instances: tuple[str, ...]
    channels: tuple[str, ...]
    exchanges: tuple[str, ...]

    @property
    def first_safe_move(self) -> str:
        """The triage table's first safe move."""
        return FIRST_SAFE_MOVE[self.pattern]

    def as_json(self) -> dict[str, Any]:
        return {"pattern": self.pattern.value, "confidence": round(self.confidence, 3),
                "evidence": list(self.evidence), "first_safe_move": self.first_safe_move,
                "suggestion": self.suggestion, "records": self.records,
                "affected": {"instances": list(self.instances), "channels": list(self.channels),
                             "exchanges": list(self.exchanges)}}


def _certainty(n: int) -> float:
    """How much ``n`` matching events say: one is a coin toss, a pattern needs repetition."""
    return 1.0 - 0.5 ** n if n > 0 else 0.0


def _finding(pattern: Pattern, confidence: float, evidence: Iterable[str], suggestion: str,
             shown_by: Sequence[TriageRecord]) -> Finding:
    return Finding(pattern=pattern, confidence=min(max(confidence, 0.0), 1.0), evidence=tuple(evidence),
                   suggestion=suggestion, records=len(shown_by),
                   instances=tuple(sorted({r.instance for r in shown_by})),
                   channels=tuple(sorted({r.channel for r in shown_by})),
                   exchanges=tuple(sorted({r.exchange for r in shown_by if r.exchange})))


def _incidents(records: Iterable[TriageRecord]) -> list[TriageRecord]:
    return [r for r in records if not r.is_local]


def _on_streams(records: Iterable[TriageRecord], streams: set[tuple[str, str]]) -> list[TriageRecord]:
    return [r for r in records if r.stream in streams]


def _cv(values: Sequence[float]) -> float | None:
    """Coefficient of variation (``None`` for fewer than 3 values or a zero mean)."""
    if len(values) < 3:
        return None
    mean = statistics.fmean(values)
    return statistics.pstdev(values) / mean if mean > 0 else None


def _cluster(values: Sequence[float], tolerance: float) -> list[int]:
    """Indices of the largest group of ``values`` within ``±tolerance`` of one of them."""
    best: list[int] = []
    for v in values:
        group = [i for i, w in enumerate(values) if abs(w - v) <= tolerance * v]
        if len(group) > len(best):
            best = group
    return best


def _counts(items: Iterable[object]) -> str:
    return ", ".join(f"{k} ×{n}" for k, n in Counter(str(i) for i in items).most_common())


def _fmt_s(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


def _intervals(records: Sequence[TriageRecord]) -> list[float]:
    """Times between consecutive records of each stream (timestamped ones)."""
    by: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in records:
        if r.ts_s is not None:
            by[r.stream].append(r.ts_s)
    out: list[float] = []
    for times in by.values():
        times.sort()
        out.extend(b - a for a, b in itertools.pairwise(times) if b > a)
    return out


def _silence_ms(r: TriageRecord) -> float | None:
    """How long the connection itself was silent when it ended: the time since the last
    message, but no longer than the connection's age (a connection that never got data was
    silent since it opened, whatever the one before it got)."""
    ago = r.last_message_ago_ms
    if ago is None or r.uptime_s is None or r.uptime_s <= 0:
        return ago
    return min(ago, r.uptime_s * 1000)


def detect_idle_timeout(records: Sequence[TriageRecord]) -> Finding | None:
    """Abnormal closes after a consistent period without messages (a proxy/LB idle cut).

    The connection's last message came a *consistent* time (±10 %, at least 1 s) before
    each close, whatever the connection's age: something cuts connections that stay silent
    that long.

    Args:
        records: all parsed records.

    Returns:
        The finding, or ``None`` when no two closes share an idle period.
    """
    inc = _incidents(records)
    cands = [r for r in inc if r.cause in _IDLE_CAUSES and not r.failed_open
             and (silent := _silence_ms(r)) is not None and silent >= FLOWING_MS]
    silences = [_silence_ms(r) or 0.0 for r in cands]
    idx = _cluster(silences, IDLE_TOLERANCE)
    if len(idx) < 2:
        return None
    shown = [cands[i] for i in idx]
    streams = {r.stream for r in shown}
    pool = [r for r in _on_streams(inc, streams) if not r.failed_open]
    share = len(shown) / len(pool)
    agos = sorted(silences[i] / 1000 for i in idx)
    period = statistics.median(agos)
    ups = [r.uptime_s for r in shown if r.uptime_s is not None]
    evidence = [
        (f"{len(shown)} of {len(pool)} disconnects on these connections came {_fmt_s(period)} after the last "
        f"message (between {_fmt_s(agos[0])} and {_fmt_s(agos[-1])})"),
        f"close causes: {_counts(r.raw_cause or r.close_code or 'unknown' for r in shown)}",
    ]
    conf = _certainty(len(shown)) * share
    up_cv = _cv(ups)
    if up_cv is not None and up_cv < AGE_TOLERANCE:
        # the connections also died at one age: age (a session lifetime) may end them, not silence
        conf *= 0.5
        evidence.append(f"but the connections were all about {_fmt_s(statistics.median(ups))} old: age, not "
                        "silence, may end them")
    elif ups:
        evidence.append(f"connection ages vary ({_fmt_s(min(ups))} to {_fmt_s(max(ups))}): the cut follows "
                        "silence, not age")
    suggestion = f"app-level ping every {_fmt_s(max(period / 2, 0.5))} or less (the cut comes after " \
                 f"{_fmt_s(period)} without messages)"
    return _finding(Pattern.IDLE_TIMEOUT, conf, evidence, suggestion, shown)


def detect_connection_limit(records: Sequence[TriageRecord]) -> Finding | None:
    """Many instances disconnect or fail together right after a start/deploy/scale.

    Young connections (under 30 s) and failed opens of two or more instances within 30 s
    of each other form a burst; an instance "just started" when the burst holds its first
    record or it shut down locally (a restart) shortly before.

    Args:
        records: all parsed records.

    Returns:
        The finding, or ``None`` with fewer than two instances or no burst.
    """
    instances = {r.instance for r in records}
    if len(instances) < 2:
        return None
    young = sorted((r for r in _incidents(records)
                    if r.ts_s is not None and r.uptime_s is not None and r.uptime_s <= YOUNG_S),
                   key=lambda r: r.ts_s or 0.0)
    bursts: list[list[TriageRecord]] = []
    for i, r in enumerate(young):
        assert r.ts_s is not None
        window = [w for w in young[i:] if (w.ts_s or 0.0) <= r.ts_s + BURST_WINDOW_S]
        if len({w.instance for w in window}) < 2:
            continue
        if bursts and (bursts[-1][-1].ts_s or 0.0) >= r.ts_s:  # overlapping: one burst
            bursts[-1].extend(w for w in window if w not in bursts[-1])
        else:
            bursts.append(window)
    if not bursts:
        return None
    first_seen: dict[str, float] = {}
    restarts: dict[str, list[float]] = defaultdict(list)
    for r in records:
        if r.ts_s is None:
            continue
        first_seen[r.instance] = min(first_seen.get(r.instance, r.ts_s), r.ts_s)
        if r.is_local:
            restarts[r.instance].append(r.ts_s)

    def started(r: TriageRecord, t0: float) -> bool:
        # its first record is in the burst (a start or a scale-up), or it restarted just before
        ts = r.ts_s or 0.0
        return first_seen.get(r.instance, ts) >= t0 or any(t0 - 120.0 <= t <= ts for t in restarts[r.instance])

    pairs = 0
    started_n = 0
    shown: list[TriageRecord] = []
    best = 0
    for b in bursts:
        t0 = b[0].ts_s or 0.0
        who = {r.instance for r in b}
        best = max(best, len(who))
        pairs += len(who)
        fresh = {r.instance for r in b if started(r, t0)}
        started_n += len(fresh)
        shown.extend(b)
    frac = best / len(instances)
    started_share = started_n / pairs
    # a fleet-wide outage hits old connections too; a limit hits the ones just opened. Other
    # instances of the fleet that were not restarted weigh less than the ones that failed.
    conf = (0.5 + 0.5 * frac) * _certainty(pairs - 1) * (0.4 + 0.6 * started_share)
    failed = sum(r.failed_open for r in shown)
    evidence = [
        (f"{len(bursts)} burst(s): up to {best} of {len(instances)} instances failed within "
        f"{BURST_WINDOW_S:.0f} s of each other"),
        f"{started_n} of {pairs} instance(s) in the bursts had just started or restarted",
        (f"{failed} failed connection attempts, {len(shown) - failed} connections younger than {YOUNG_S:.0f} s; "
        f"causes: {_counts(r.raw_cause or r.close_code or 'unknown' for r in shown)}"),
    ]
    suggestion = f"spread the {len(instances)} instances' connects over {max(len(instances) * 2, 10)} s or " \
                 "more with random jitter, and count connections per IP against the venue's limit"
    return _finding(Pattern.CONNECTION_LIMIT, conf, evidence, suggestion, shown)


def detect_network_instability(records: Sequence[TriageRecord]) -> Finding | None:
    """Closes at irregular times while data was flowing.

    Abnormal closes (1006, TCP errors, ping timeouts) under a second after a message, at a
    rate a healthy line does not reach, at irregular intervals and connection ages.

    Args:
        records: all parsed records.

    Returns:
        The finding, or ``None`` when no close happened while data was flowing.
    """
    inc = _incidents(records)
    shown = [r for r in inc if r.cause in _NETWORK_CAUSES and not r.failed_open
             and r.last_message_ago_ms is not None and r.last_message_ago_ms < FLOWING_MS]
    if not shown:
        return None
    streams = {r.stream for r in shown}
    # failed opens while the line is still down are the same outage, not other disconnects
    pool = [r for r in _on_streams(inc, streams) if not (r.failed_open and r.cause in _NETWORK_CAUSES)]
    share = len(shown) / len(pool)
    # connected time observed on these streams (local shutdowns end connections too)
    hours = sum(r.uptime_s or 0.0 for r in _on_streams(records, streams)) / 3600
    rate = len(shown) / hours if hours > 0 else math.inf
    rate_factor = rate / (rate + 0.5)  # 0.5 per connected hour: a coin toss
    cv_t, cv_up = _cv(_intervals(shown)), _cv([r.uptime_s or 0.0 for r in shown])
    cvs = [c for c in (cv_t, cv_up) if c is not None]
    # periodic closes (a venue's scheduled rotation) are not a flaky line
    irregular = min(1.0, 0.5 + 2 * max(cvs)) if cvs else 1.0
    conf = _certainty(len(shown)) * share * rate_factor * irregular
    agos = [r.last_message_ago_ms or 0.0 for r in shown]
    evidence = [
        (f"{len(shown)} of {len(pool)} disconnects on these connections were abnormal closes while data was "
        f"flowing (median {statistics.median(agos):.0f} ms after the last message)"),
        f"{rate:.1f} per connected hour" if math.isfinite(rate) else "connected time unknown",
        f"close causes: {_counts(r.raw_cause or r.close_code or 'unknown' for r in shown)}",
    ]
    if cvs:
        evidence.append(f"irregular: intervals vary by {cv_t or 0:.0%}, connection ages by {cv_up or 0:.0%}")
    failed = [r for r in shown if r.reconnect_success is False]
    if failed:
        evidence.append(f"{len(failed)} of them did not reconnect")
    suggestion = "one reconnect at a time per connection, jittered exponential backoff, and a breaker that " \
                 "halts the books while the line stays down"
    return _finding(Pattern.NETWORK_INSTABILITY, conf, evidence, suggestion, shown)


def detect_reconnect_rate_limited(records: Sequence[TriageRecord]) -> Finding | None:
    """Short-lived connections in a loop, reconnect attempts climbing, 429/418.

    Args:
        records: all parsed records.

    Returns:
        The finding, or ``None`` without any 429/418 and without a reconnect loop.
    """
    inc = _incidents(records)
    limited = [r for r in inc if r.close_code in _RATE_LIMIT_CODES or r.cause is CloseReason.RATE_LIMITED]
    bans = [r for r in limited if r.close_code == 418]
    by_stream: dict[tuple[str, str], list[TriageRecord]] = defaultdict(list)
    for r in inc:
        by_stream[r.stream].append(r)
    loops: list[TriageRecord] = []
    for rs in by_stream.values():
        run: list[TriageRecord] = []
        for r in sorted(rs, key=lambda r: r.ts_s or 0.0):
            if r.uptime_s is not None and r.uptime_s < SHORT_LIVED_S:
                run.append(r)
                continue
            if len(run) >= 3:
                loops.extend(run)
            run = []
        if len(run) >= 3:
            loops.extend(run)
    attempts = [r.reconnect_attempt for r in inc if r.reconnect_attempt is not None]
    top_attempt = max(attempts, default=0)
    climbing = min(1.0, max(top_attempt - 1, 0) / 3)  # 4 attempts for one disconnect: fully climbing
    loop_share = len(loops) / len(inc) if inc else 0.0
    shape = max(loop_share, climbing)
    if limited:
        # a 418 is a ban for having ignored 429s: worth two
        conf = _certainty(len(limited) + len(bans)) * (0.7 + 0.3 * shape)
    elif loops:
        # a loop without a 429 could be other refusals (a connection limit, a rejected
        # subscription): suggestive, never more likely than not
        conf = 0.45 * _certainty(len(loops) - 2) * shape
    else:
        return None
    shown = list(dict.fromkeys([*limited, *loops]))
    evidence = []
    if limited:
        evidence.append(f"{len(limited)} refusal(s) with HTTP 429/418 or a rate-limit close "
                        f"({_counts(r.close_code or r.raw_cause for r in limited)})")
    if loops:
        evidence.append(f"{len(loops)} connections shorter than {SHORT_LIVED_S:.0f} s in a row "
                        "(a reconnect loop)")
    evidence.append(f"reconnect attempts for one disconnect went up to {top_attempt}")
    per_min = max_per_minute([r.ts_s for r in shown if r.ts_s is not None])
    if per_min:
        evidence.append(f"up to {per_min} of these records within one minute")
    suggestion = "honour Retry-After, back off exponentially from a longer base, and cap connection " \
                 "attempts per minute below the venue's limit"
    return _finding(Pattern.RECONNECT_RATE_LIMITED, conf, evidence, suggestion, shown)


def max_per_minute(times: Sequence[float]) -> int:
    """The most ``times`` (seconds) within any 60 s window.

    >>> max_per_minute([0.0, 30.0, 59.0, 61.0, 200.0])
    3
    """
    ordered = sorted(times)
    best = j = 0
    for i, t in enumerate(ordered):
        while ordered[j] < t - 60.0:
            j += 1
        best = max(best, i - j + 1)
    return best


def detect_private_auth_expiry(records: Sequence[TriageRecord]) -> Finding | None:
    """Only private channels drop, at a regular connection age near the token/session lifetime.

    Args:
        records: all parsed records.

    Returns:
        The finding, or ``None`` without private-channel drops.
    """
    inc = _incidents(records)
    private = [r for r in inc if r.channel == "private" and not r.failed_open]
    if not private:
        return None
    instances = {r.instance for r in private}
    public = [r for r in inc if r.channel != "private" and r.instance in instances and not r.failed_open]
    only_share = len(private) / (len(private) + len(public))
    aged = [r for r in private if r.uptime_s is not None and r.uptime_s >= 60.0]
    idx = _cluster([r.uptime_s or 0.0 for r in aged], AGE_TOLERANCE)
    regular = [aged[i] for i in idx] if len(idx) >= 2 else []
    auth = [r for r in private if r.cause is CloseReason.AUTH_FAILED or r.close_code in _AUTH_CODES]
    shown = list(dict.fromkeys([*regular, *auth]))
    if not shown:
        return None
    age_conf = _certainty(len(regular)) * len(regular) / len(private)
    auth_conf = 0.8 * _certainty(len(auth)) * len(auth) / len(private)
    conf = max(age_conf, auth_conf) * only_share
    evidence = [f"{len(private)} private-channel drops, {len(public)} public-channel drops on the same instances"]
    suggestion = "re-authenticate (refresh the listen key / token) well before it expires"
    if regular:
        ages = sorted(r.uptime_s or 0.0 for r in regular)
        life = statistics.median(ages)
        evidence.append(f"{len(regular)} of them at a connection age of {_fmt_s(life)} "
                        f"(between {_fmt_s(ages[0])} and {_fmt_s(ages[-1])}): likely the token/session lifetime")
        suggestion = f"re-authenticate before {_fmt_s(life * 0.9)} of session age (the drops come at {_fmt_s(life)})"
    if auth:
        evidence.append(f"{len(auth)} auth failure(s) ({_counts(r.close_code or r.raw_cause for r in auth)})")
    return _finding(Pattern.PRIVATE_AUTH_EXPIRY, conf, evidence, suggestion, shown)


#: every detector, by the pattern it names
DETECTORS: dict[Pattern, Callable[[Sequence[TriageRecord]], Finding | None]] = {
    Pattern.IDLE_TIMEOUT: detect_idle_timeout,
    Pattern.CONNECTION_LIMIT: detect_connection_limit,
    Pattern.NETWORK_INSTABILITY: detect_network_instability,
    Pattern.RECONNECT_RATE_LIMITED: detect_reconnect_rate_limited,
    Pattern.PRIVATE_AUTH_EXPIRY: detect_private_auth_expiry,
}

#: findings below this are not reported at all (noise)
MIN_REPORTED = 0.05


# ---------------------------------------------------------------------------- report
def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile, ``q`` in [0, 100] (``None`` for no values).

    >>> percentile([5.0, 1.0, 3.0], 50), percentile([], 95)
    (3.0, None)
    """
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(frozen=True, slots=True, kw_only=True)
class TriageReport:
    """What ``bookkeeper triage`` found.

    Attributes:
        records: the parsed records (local shutdowns included).
        malformed: lines that were not JSON objects.
        malformed_samples: the first few, as ``file:line: why``.
        findings: most likely first.
    """

    records: tuple[TriageRecord, ...]
    malformed: int
    malformed_samples: tuple[str, ...]
    findings: tuple[Finding, ...]

    @property
    def top(self) -> Finding | None:
        """The most likely finding."""
        return self.findings[0] if self.findings else None

    def stats(self) -> dict[str, float | None]:
        """The pattern numbers of the seed's advice (local shutdowns left out: not disconnects).

        Returns:
            ``disconnects_per_hour`` (over the records' time span), ``reconnect_success_rate``
            (of records that say), ``median_last_message_ago_ms``, ``median_uptime_s`` (of
            connections that opened), ``p95_reconnect_latency_ms``; ``None`` where unknown.
        """
        inc = _incidents(self.records)
        times = [r.ts_s for r in self.records if r.ts_s is not None]
        span_h = (max(times) - min(times)) / 3600 if len(times) >= 2 else 0.0
        known = [r.reconnect_success for r in inc if r.reconnect_success is not None]
        agos = [r.last_message_ago_ms for r in inc if r.last_message_ago_ms is not None]
        ups = [r.uptime_s for r in inc if r.uptime_s is not None and r.uptime_s > 0]
        lats = [r.reconnect_latency_ms for r in inc if r.reconnect_latency_ms is not None]
        return {
            "disconnects_per_hour": _round(len(inc) / span_h, 2) if span_h > 0 else None,
            "reconnect_success_rate": _round(sum(known) / len(known), 3) if known else None,
            "median_last_message_ago_ms": _round(statistics.median(agos), 1) if agos else None,
            "median_uptime_s": _round(statistics.median(ups), 3) if ups else None,
            "p95_reconnect_latency_ms": _round(percentile(lats, 95), 1),
        }

    def as_json(self) -> dict[str, Any]:
        """The ``--json`` object."""
        times = [r.ts_s for r in self.records if r.ts_s is not None]
        return {
            "records": len(self.records),
            "malformed": self.malformed,
            "malformed_samples": list(self.malformed_samples),
            "disconnects": len(_incidents(self.records)),
            "instances": sorted({r.instance for r in self.records}),
            "channels": sorted({r.channel for r in self.records}),
            "first_ts": _iso(min(times)) if times else None,
            "last_ts": _iso(max(times)) if times else None,
            "findings": [f.as_json() for f in self.findings],
            "stats": self.stats(),
        }


def _iso(ts_s: float) -> str:
    return datetime.fromtimestamp(ts_s, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def triage(records: Sequence[TriageRecord], *, malformed: int = 0,
           malformed_samples: Sequence[str] = ()) -> TriageReport:
    """Run every detector; rank the findings, most likely first.

    Args:
        records: parsed records (any order, any instances).
        malformed: malformed lines seen while reading them (reported).
        malformed_samples: a few of them.

    Returns:
        The report (findings under :data:`MIN_REPORTED` left out).
    """
    found = [f for detect in DETECTORS.values() if (f := detect(records)) is not None]
    ranked = sorted((f for f in found if f.confidence >= MIN_REPORTED), key=lambda f: -f.confidence)
    return TriageReport(records=tuple(records), malformed=malformed, malformed_samples=tuple(malformed_samples),
                        findings=tuple(ranked))


def triage_files(paths: Sequence[str]) -> TriageReport:
    """Read records files and triage them.

    Args:
        paths: JSON-lines files (gzip ok; ``-`` is standard input).

    Returns:
        The report.

    Raises:
        UsageError: a file cannot be read.
    """
    records, malformed, samples = read_records(paths)
    return triage(records, malformed=malformed, malformed_samples=samples)


def format_report(report: TriageReport) -> str:
    """The human-readable report (what ``bookkeeper triage`` prints without ``--json``)."""
    data = report.as_json()
    lines = [(f"{data['records']} records ({data['disconnects']} disconnects) from "
             f"{len(data['instances'])} instance(s), {data['first_ts'] or '?'} .. {data['last_ts'] or '?'}")]
    if report.malformed:
        lines.append(f"{report.malformed} malformed line(s) skipped, e.g. {report.malformed_samples[0]}")
    stats = data["stats"]
    lines.append("  " + "  ".join(f"{k}={'-' if v is None else v}" for k, v in stats.items()))
    if not report.findings:
        lines.append("no pattern found: the disconnects look like ordinary churn")
    for f in report.findings:
        weak = "" if f.confidence > 0.5 else "  (weak)"
        lines.append(f"\n{f.pattern.value}  confidence {f.confidence:.2f}{weak}")
        lines.append(f"  first safe move: {f.first_safe_move}")
        lines.append(f"  here: {f.suggestion}")
        lines.extend(f"  - {e}" for e in f.evidence)
        lines.append(f"  affected: instances {', '.join(f.instances)}; channels {', '.join(f.channels)}")
    return "\n".join(lines)
