"""Readers (and a writer) for recorded exchange sessions.

Formats, detected per file (gzip is transparent, by magic bytes, not by name):

- **cryptofeed raw capture** (``*.cfcap.txt``): one record per line —
  ``<url> <-> <ts>`` connection opened; ``<url> <- <ts>: <payload>`` frame sent;
  ``<ts>: <payload>`` frame received; ``<url> -> <ts>: <body>`` HTTP GET and its body;
  an optional first line ``configuration: {...}`` (skipped). ``<ts>`` is float seconds.
- **hftbacktest collector** (``*.hbt.txt``): ``<recv_ts_ns> <raw json>``; a line whose JSON
  is a REST depth body (``{"lastUpdateId":...``) is a REST record.
- **JSON lines**: one exchange message per line, no timestamps (the line number orders them).
- **bookkeeper recording** (``*.bkrec.jsonl``): a header line
  ``{"format": "bookkeeper-recording", "version": 1, "venue": ...}`` then one JSON object per
  line ``{"ts": <recv ns>, "dir": "in"|"out"|"rest"|"open"|"close", "url": <str|null>,
  "data": <raw frame or REST body text>}`` (REST responses included, with their URL).

Several files are one session: records are merged by receive time (a ``*.continuation*``
file simply continues its predecessor; separate REST snapshot captures slot in where they
were received, so deltas received before a snapshot are buffered exactly as live).
"""

from __future__ import annotations

import enum
import gzip
import heapq
import os
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson

from ..errors import UsageError

__all__ = ["RecordKind", "Record", "ReadProgress", "detect_format", "read_file", "read_records", "RecordingWriter",
           "FileFormat"]


class RecordKind(enum.Enum):
    RECV = "in"
    SENT = "out"
    REST = "rest"
    OPEN = "open"
    CLOSE = "close"


class FileFormat(enum.Enum):
    CFCAP = "cfcap"
    HBT = "hbt"
    JSONL = "jsonl"
    BOOKKEEPER = "bookkeeper"


@dataclass(frozen=True, slots=True)
class Record:
    """One recorded event. ``data`` is the raw frame or REST body bytes."""

    ts_recv_ns: int
    kind: RecordKind
    data: bytes
    url: str | None = None
    source: int = 0  # index of the file it came from


_KIND_BY_DIR = {k.value: k for k in RecordKind}


def _open(path: Path) -> IO[bytes]:
    fh = open(path, "rb")  # noqa: SIM115 - returned to the caller, closed by it
    magic = fh.read(2)
    fh.seek(0)
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=fh)  # type: ignore[return-value]
    return fh


def detect_format(path: str | os.PathLike[str]) -> FileFormat:
    """Detect a recording's format from its name and first line.

    Raises:
        UsageError: unreadable file or unknown format.
    """
    p = Path(path)
    name = p.name
    if ".cfcap" in name:
        return FileFormat.CFCAP
    if ".hbt" in name:
        return FileFormat.HBT
    if ".bkrec" in name:
        return FileFormat.BOOKKEEPER
    try:
        with _open(p) as fh:
            first = fh.readline().strip()
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise UsageError(f"cannot read {p}: {exc}", path=str(p)) from None
    if b"bookkeeper-recording" in first[:200]:
        return FileFormat.BOOKKEEPER
    if first.startswith((b"{", b"[")):
        return FileFormat.JSONL
    head = first.split(b" ", 1)[0]
    if head.isdigit() and len(head) >= 16:
        return FileFormat.HBT
    if first.startswith(b"configuration:") or b" -> " in first or b" <-> " in first or first[:1].isdigit():
        return FileFormat.CFCAP
    raise UsageError(f"{p}: unknown recording format (first line {first[:60]!r})", path=str(p))


def _iter_cfcap(fh: IO[bytes], source: int) -> Iterator[Record]:
    for line in fh:
        line = line.rstrip(b"\r\n")
        if not line or line.startswith(b"configuration:"):
            continue
        if line[:1].isdigit():
            ts, _, payload = line.partition(b": ")
            yield Record(int(float(ts) * 1e9), RecordKind.RECV, payload, None, source)
            continue
        url, _, rest = line.partition(b" ")
        op, _, rest = rest.partition(b" ")
        if op == b"<->":
            yield Record(int(float(rest) * 1e9), RecordKind.OPEN, b"", url.decode(), source)
            continue
        ts, _, payload = rest.partition(b": ")
        kind = RecordKind.REST if op == b"->" else RecordKind.SENT if op == b"<-" else None
        if kind is None:
            raise ValueError(f"unrecognised cfcap line: {line[:80]!r}")
        yield Record(int(float(ts) * 1e9), kind, payload, url.decode(), source)


def _iter_hbt(fh: IO[bytes], source: int) -> Iterator[Record]:
    for line in fh:
        ts, _, payload = line.partition(b" ")
        if not payload:
            continue
        payload = payload.rstrip(b"\r\n")
        kind = RecordKind.REST if payload.startswith(b'{"lastUpdateId"') else RecordKind.RECV
        yield Record(int(ts), kind, payload, None, source)


def _iter_jsonl(fh: IO[bytes], source: int, offset: int) -> Iterator[Record]:
    for i, line in enumerate(fh):
        line = line.strip()
        if line:
            yield Record(offset + i, RecordKind.RECV, line, None, source)


def _iter_bookkeeper(fh: IO[bytes], source: int) -> Iterator[Record]:
    header = fh.readline()
    if b"bookkeeper-recording" not in header:
        raise ValueError("missing bookkeeper-recording header line")
    for line in fh:
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
            ts = int(obj["ts"])
            kind = _KIND_BY_DIR[obj["dir"]]
            data = obj.get("data") or ""
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ValueError(f"bad bookkeeper-recording line: {line[:80]!r}") from None
        yield Record(ts, kind, data.encode() if isinstance(data, str) else bytes(data), obj.get("url"), source)


class ReadProgress:
    """Bytes of the input files consumed so far (compressed bytes for gzip files), for a
    progress bar. ``done`` is refreshed as the files are read."""

    def __init__(self, paths: Sequence[str | os.PathLike[str]]) -> None:
        self.total = sum(Path(p).stat().st_size for p in paths if Path(p).is_file())
        self._raw: dict[int, IO[bytes]] = {}
        self._finished = 0

    def watch(self, source: int, raw: IO[bytes]) -> None:
        self._raw[source] = raw

    def finish(self, source: int) -> None:
        raw = self._raw.pop(source, None)
        if raw is not None:
            try:
                self._finished += os.fstat(raw.fileno()).st_size
            except (OSError, ValueError):
                pass

    @property
    def done(self) -> int:
        live = 0
        for raw in self._raw.values():
            try:
                live += raw.tell()
            except (OSError, ValueError):
                pass
        return self._finished + live


def read_file(path: str | os.PathLike[str], source: int = 0, offset: int = 0,
              progress: ReadProgress | None = None) -> Iterator[Record]:
    """Stream the records of one file.

    Raises:
        UsageError: the file cannot be opened or its format is unknown.
        ValueError: a line is not of the file's format (raised while iterating).
    """
    p = Path(path)
    fmt = detect_format(p)
    try:
        fh = _open(p)
    except OSError as exc:
        raise UsageError(f"cannot read {p}: {exc}", path=str(p)) from None
    if progress is not None:
        progress.watch(source, getattr(fh, "fileobj", None) or fh)
    try:
        if fmt is FileFormat.CFCAP:
            yield from _iter_cfcap(fh, source)
        elif fmt is FileFormat.HBT:
            yield from _iter_hbt(fh, source)
        elif fmt is FileFormat.JSONL:
            yield from _iter_jsonl(fh, source, offset)
        else:
            yield from _iter_bookkeeper(fh, source)
    finally:
        if progress is not None:
            progress.finish(source)
        fh.close()


def read_records(paths: Sequence[str | os.PathLike[str]], progress: ReadProgress | None = None) -> Iterator[Record]:
    """Merge several files into one session, ordered by receive time (stable per file).

    Files without timestamps (JSON lines) keep their order, one after another.
    """
    for p in paths:
        if not Path(p).is_file():
            raise UsageError(f"no such file: {p}", path=str(p))
        detect_format(p)  # fail early, before any output
    iterators: list[Iterable[Record]] = []
    offset = 0
    for i, p in enumerate(paths):
        if detect_format(p) is FileFormat.JSONL:
            iterators.append(read_file(p, i, offset, progress))
            offset += 1 << 40
        else:
            iterators.append(read_file(p, i, progress=progress))
    if len(iterators) == 1:
        return iter(iterators[0])
    return heapq.merge(*iterators, key=lambda r: (r.ts_recv_ns, r.source))


class RecordingWriter:
    """Write a bookkeeper recording (what the live driver saw, REST answers included).

    >>> import io
    >>> buf = io.BytesIO()
    >>> w = RecordingWriter(buf, venue="binance")
    >>> w.write(RecordKind.RECV, 1, b'{"e":"depthUpdate"}')
    >>> buf.getvalue().splitlines()[1]
    b'{"ts":1,"dir":"in","url":null,"data":"{\\\\"e\\\\":\\\\"depthUpdate\\\\"}"}'
    """

    def __init__(self, target: str | os.PathLike[str] | IO[bytes], *, venue: str) -> None:
        if isinstance(target, (str, os.PathLike)):
            self._fh: IO[bytes] = open(target, "wb")  # noqa: SIM115
            self._own = True
        else:
            self._fh = target
            self._own = False
        self._fh.write(orjson.dumps({"format": "bookkeeper-recording", "version": 1, "venue": venue}) + b"\n")

    def write(self, kind: RecordKind, ts_recv_ns: int, data: bytes | str, url: str | None = None) -> None:
        text = data.decode("utf-8", "replace") if isinstance(data, (bytes, bytearray)) else data
        self._fh.write(orjson.dumps({"ts": ts_recv_ns, "dir": kind.value, "url": url, "data": text}) + b"\n")

    def close(self) -> None:
        if self._own:
            self._fh.close()
        else:
            self._fh.flush()

