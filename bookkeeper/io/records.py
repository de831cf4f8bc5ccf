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
  ``replay_deltas``, ``halt``; on the ``private`` channel ``replay`` and ``full_sync``), in
  the order first used.

Records of the ``private`` channel (the account ingest, ``bookkeeper.io.account``) add one
key after these: ``account_plans``, each plan of the recovery with its reason and figures
(:meth:`bookkeeper.account.AccountRecoveryPlan.as_record`). Public-channel records have
exactly the keys above.

A record is written once, when reconnect and recovery of that disconnect are known. It is
logged at INFO (WARNING when the reconnect failed), never ERROR: a 1006 is a reconnect
signal, not a failure of the program.

A path that cannot be written is a :class:`~bookkeeper.errors.UsageError` when the writer is
made (missing folder, a directory, no permission). A write that fails later (a full disk,
the file made read-only) is logged once (with its traceback) and counted in
:attr:`RecordWriter.failed_writes`: losing a record never stops the feed.

>>> sink: list[dict] = []
>>> w = RecordWriter(sink=sink)
>>> w.write(DisconnectRecord(ts="2026-01-01T00:00:00.000Z", bot_instance_id="bot-1", exchange="binance",
...     channel="public", close_code=1006, close_cause="abnormal_closure", last_message_ago_ms=12,
...     uptime_seconds=3.5, reconnect_attempt=1, reconnect_success=True, reconnect_latency_ms=250,
...     missed_messages_count=0, plan=["resume"]))
True
>>> list(sink[0]) == list(RECORD_KEYS), sink[0]["close_cause"]
(True, 'abnormal_closure')
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from bookkeeper.errors import UsageError

__all__ = ["RECORD_KEYS", "DisconnectRecord", "RecordWriter", "check_writable", "iso_utc"]

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
    #: private channel only: every account recovery plan of this disconnect, with its reason
    account_plans: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data["account_plans"] is None:
            del data["account_plans"]
        return data


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Check up front that records can be appended to ``path`` (the file is created empty
    when missing, as its first append would).

    Args:
        path: the JSONL file.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        UsageError: the folder does not exist, the path is a directory, or it cannot be
            opened for appending (permissions, read-only file system).
    """
    p = Path(path)
    if str(path) == "":
        raise UsageError("records path is empty")
    if p.is_dir():
        raise UsageError(f"records path {str(p)!r} is a directory, not a file", path=str(p))
    if not p.parent.is_dir():
        raise UsageError(f"records path {str(p)!r}: folder {str(p.parent)!r} does not exist", path=str(p))
    try:
        with p.open("ab"):
            pass
    except OSError as exc:
        raise UsageError(f"records path {str(p)!r} is not writable: {exc.strerror or exc}", path=str(p)) from exc
    return p


class RecordWriter:
    """Writes records to a JSONL file and/or an in-memory list.

    Args:
        path: append one JSON line per record (the file is opened per write, so the writer
            holds no handle and a rotated file is picked up).
        sink: a list that receives each record as a dict.

    Raises:
        UsageError: ``path`` cannot be written (see :func:`check_writable`).
    """

    def __init__(self, path: str | Path | None = None, *, sink: list[dict[str, Any]] | None = None) -> None:
        self._path = check_writable(path) if path is not None else None
        self._sink = sink
        self.records: list[DisconnectRecord] = []  # bounded by max_kept
        self._max_kept = 1000
        self.failed_writes = 0  #: records that could not be appended to ``path``
        self._failing = False  # log a failure once, until a write succeeds again

    def write(self, record: DisconnectRecord) -> bool:
        """Persist and log one record.

        Args:
            record: the record.

        Returns:
            False when it could not be appended to the file (logged once per run of failures,
            counted in :attr:`failed_writes`); the sink and :attr:`records` still get it.
        """
        data = record.to_dict()
        line = orjson.dumps(data)
        written = True
        if self._path is not None:
            try:
                with self._path.open("ab") as fh:
                    fh.write(line + b"\n")
            except OSError as exc:
                written = False
                self.failed_writes += 1
                if not self._failing:
                    self._failing = True
                    log.warning("cannot append disconnect records to %s (%s); records are kept in memory "
                                "and further failures only counted", self._path, exc, exc_info=True)
            else:
                if self._failing:
                    self._failing = False
                    log.warning("disconnect records are written to %s again (%d record(s) lost)", self._path,
                                self.failed_writes)
        if self._sink is not None:
            self._sink.append(data)
        self.records.append(record)
        if len(self.records) > self._max_kept:
            del self.records[0]
        level = logging.INFO if record.reconnect_success or record.close_cause == "local_shutdown" else logging.WARNING
        log.log(level, "disconnect %s", line.decode())
        return written
