"""Disconnect records: one JSON line per disconnect (a public contract).

Every record has EXACTLY the keys of :data:`RECORD_KEYS`, in that order:

- ``ts``: ISO 8601 UTC time of the disconnect (``2026-01-02T03:04:05.678Z``).
- ``bot_instance_id``, ``exchange``, ``channel`` (``public``/``private``).
- ``close_code``: the WebSocket close code (1006 when no close frame was received), the
  HTTP status when the upgrade was refused (429, 418, 401, 403), or ``null``.
- ``close_cause``: a :class:`~bookkeeper.events.CloseReason` value (``abnormal_closure``,
  ``server_close``, ``ping_timeout``, ``idle_timeout``, ``tcp_error``, ``rate_limited``,
  ``auth_failed``, ``local_shutdown``).
- ``last_message_ago_ms``: time since the last data frame when the connection ended.
- ``uptime_seconds``: how long the connection had been open.
- ``reconnect_attempt``: connection attempts it took to come back (0: none made).
- ``reconnect_success``, ``reconnect_latency_ms`` (``null`` when it never came back).
- ``missed_messages_count``: sequence ids proven missed during recovery.
- ``plan``: the recovery plan kinds used (``resume``, ``ws_snapshot``, ``rest_snapshot``,
  ``replay_deltas``, ``halt``), in the order first used.

A record is written once, when reconnect and recovery of that disconnect are known. It is
logged at INFO (WARNING when the reconnect failed), never ERROR: a 1006 is a reconnect
signal, not a failure of the program.

>>> sink: list[dict] = []
>>> w = RecordWriter(sink=sink)
>>> w.write(DisconnectRecord(ts="2026-01-01T00:00:00.000Z", bot_instance_id="bot-1", exchange="binance",
...     channel="public", close_code=1006, close_cause="abnormal_closure", last_message_ago_ms=12,
...     uptime_seconds=3.5, reconnect_attempt=1, reconnect_success=True, reconnect_latency_ms=250,
...     missed_messages_count=0, plan=["resume"]))
>>> list(sink[0]) == list(RECORD_KEYS), sink[0]["close_cause"]
(True, 'abnormal_closure')
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

__all__ = ["RECORD_KEYS", "DisconnectRecord", "RecordWriter", "iso_utc"]

log = logging.getLogger("bookkeeper.io.records")

RECORD_KEYS: tuple[str, ...] = (
    "ts", "bot_instance_id", "exchange", "channel", "close_code", "close_cause",
    "last_message_ago_ms", "uptime_seconds", "reconnect_attempt", "reconnect_success",
    "reconnect_latency_ms", "missed_messages_count", "plan",
)  # fmt: skip


def iso_utc(wall_ns: int) -> str:
    """Wall-clock ns to ISO 8601 UTC text with milliseconds.

    >>> iso_utc(1_700_000_000_123_456_789)
    '2023-11-14T22:13:20.123Z'
    """
    dt = datetime.fromtimestamp(wall_ns // 1_000_000_000, tz=timezone.utc)
    ms = (wall_ns // 1_000_000) % 1000
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms:03d}Z"


@dataclass(slots=True, kw_only=True)
class DisconnectRecord:
    """One disconnect; field names and order are the public JSON contract."""

    ts: str
    bot_instance_id: str
    exchange: str
    channel: str
    close_code: int | None
    close_cause: str
    last_message_ago_ms: int | None
    uptime_seconds: float
    reconnect_attempt: int = 0
    reconnect_success: bool = False
    reconnect_latency_ms: int | None = None
    missed_messages_count: int = 0
    plan: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RecordWriter:
    """Writes records to a JSONL file and/or an in-memory list.

    Args:
        path: append one JSON line per record (the file is opened per write, so the writer
            holds no handle and a rotated file is picked up).
        sink: a list that receives each record as a dict.
    """

    def __init__(self, path: str | Path | None = None, *, sink: list[dict[str, Any]] | None = None) -> None:
        self._path = Path(path) if path is not None else None
        self._sink = sink
        self.records: list[DisconnectRecord] = []  # bounded by max_kept
        self._max_kept = 1000

    def write(self, record: DisconnectRecord) -> None:
        """Persist and log one record."""
        data = record.to_dict()
        line = orjson.dumps(data)
        if self._path is not None:
            with self._path.open("ab") as fh:
                fh.write(line + b"\n")
        if self._sink is not None:
            self._sink.append(data)
        self.records.append(record)
        if len(self.records) > self._max_kept:
            del self.records[0]
        level = logging.INFO if record.reconnect_success or record.close_cause == "local_shutdown" else logging.WARNING
        log.log(level, "disconnect %s", line.decode())
