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

``-`` names standard input (any of the formats, gzip or not, detected from its content). Every
error while reading names the file and the line (``x.hbt.txt.gz: line 1234: ...``), and every
record carries its line, so a replay can say where a bad frame is.

How it reads (the reader is on the replay's critical path): the input is read in large blocks,
gzip members are inflated a block at a time (zlib-ng when installed, else the stdlib's zlib;
several members and zero padding as :class:`gzip.GzipFile` reads them) and each block is split
into lines with one ``bytes.split``, the partial last line carried to the next block. Block
boundaries never show in the records, and a damaged or truncated file still yields every line
before the damage, then an error naming the first line that cannot be read.
"""

from __future__ import annotations

import enum
import heapq
import itertools
import operator
import os
import stat
import sys
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from ..errors import UsageError

__all__ = [
    "STDIN",
    "FileFormat",
    "ReadProgress",
    "Record",
    "RecordKind",
    "RecordingWriter",
    "Row",
    "detect_format",
    "read_file",
    "read_records",
    "read_rows",
]

#: The path that names standard input (``bookkeeper replay --venue okx - < capture``).
STDIN = "-"


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
    #: 1-based line of the file it was read from (0: not read from a file). Where it was
    #: read, not what it is: two records with the same content compare equal.
    line: int = field(default=0, compare=False)


_KIND_BY_DIR = {k.value: k for k in RecordKind}


def _load_zlib_ng() -> Any:
    """zlib-ng's drop-in ``zlib`` module (the same inflate, ~2.5x faster here; ccxt depends on
    it, so it is normally installed), or ``None``: then the stdlib's zlib does the job."""
    try:
        from zlib_ng import zlib_ng
    except ImportError:  # pragma: no cover - optional speed-up
        return None
    return zlib_ng


_zlib_ng: Any = _load_zlib_ng()

#: The module whose ``decompressobj`` inflates gzip input (tests swap in ``zlib`` to cover the
#: stdlib fallback). Both produce the same bytes; only the speed differs.
_INFLATE: Any = _zlib_ng if _zlib_ng is not None else zlib
_ZLIB_ERRORS: tuple[type[Exception], ...] = (zlib.error,) if _zlib_ng is None else (zlib.error, _zlib_ng.error)
_READ_ERRORS: tuple[type[Exception], ...] = (OSError, EOFError, ValueError, *_ZLIB_ERRORS)

#: Bytes read at once from a plain file, and compressed bytes inflated at once (~6x that as
#: text): big enough that per-call costs vanish, small enough that a block stays in cache
#: while it is split into lines. Chunk boundaries never show: tests vary them.
_PLAIN_BLOCK = 1 << 18
_GZIP_BLOCK = 1 << 16
_GZIP_MAGIC = b"\x1f\x8b"


def _name(path: str | os.PathLike[str]) -> str:
    return "<stdin>" if str(path) == STDIN else str(path)


def _read_blocks(raw: IO[bytes], head: bytes, size: int) -> Iterator[bytes]:
    """``head``, then ``raw`` in blocks of at most ``size`` bytes (``read1`` where there is one,
    so a pipe hands over what it has instead of waiting for a full block)."""
    if head:
        yield head
    read = getattr(raw, "read1", raw.read)
    while block := read(size):
        yield block


def _inflate_block(d: Any, data: bytes) -> bytes:
    """``d.decompress(data)``; on damage, raise :class:`_Damaged` with the text before it.

    zlib drops a call's whole output when it meets bad data, so the block is inflated once
    more from a copy of the state before it, a byte at a time, to keep every line that can
    still be read (the error then names the first line that cannot, whatever the block size).
    """
    before = d.copy()
    try:
        return d.decompress(data)  # type: ignore[no-any-return]
    except _ZLIB_ERRORS as exc:
        good = []
        for i in range(len(data)):
            try:
                good.append(before.decompress(data[i:i + 1]))
            except _ZLIB_ERRORS:
                break
        raise _Damaged(b"".join(good), zlib.error(str(exc))) from None


class _Damaged(Exception):
    """A damaged deflate stream: ``text`` is what could be inflated before ``error``."""

    def __init__(self, text: bytes, error: zlib.error) -> None:
        super().__init__(str(error))
        self.text = text
        self.error = error


def _gunzip(blocks: Iterator[bytes]) -> Iterator[bytes]:
    """Inflate a gzip stream of one or more members (``cat a.gz b.gz``), given in blocks.

    Zero bytes between or after members are skipped, as :class:`gzip.GzipFile` does. Every
    byte that can be inflated is handed out before an error is raised.

    Raises:
        zlib.error: damaged data, a bad header or a CRC/length mismatch.
        EOFError: the stream ends inside a member (a truncated file).
    """
    d: Any = None  # None: between members
    for block in blocks:
        data = block
        while data:
            if d is None:
                data = data.lstrip(b"\x00")
                if not data:
                    break
                d = _INFLATE.decompressobj(31)  # 16 + 15: gzip header and trailer, 32 KiB window
            try:
                text = _inflate_block(d, data)
            except _Damaged as exc:
                if exc.text:
                    yield exc.text
                raise exc.error from None
            if text:
                yield text
            if not d.eof:
                break
            data = d.unused_data  # the next member starts inside this block
            d = None
    if d is not None:
        raise EOFError("Compressed file ended before the end-of-stream marker was reached")


def _split_lines(blocks: Iterator[bytes]) -> Iterator[list[bytes]]:
    """Lists of whole lines (without their ``\\n``) from blocks of text, in bulk: one
    ``bytes.split`` per block, the partial last line carried into the next block. A last line
    without a newline is a line; an error in ``blocks`` propagates after every line before it.
    """
    carry: list[bytes] = []
    for block in blocks:
        lines = block.split(b"\n")
        if len(lines) == 1:  # no line ends in this block (a long REST body): keep collecting
            carry.append(block)
            continue
        if carry:
            carry.append(lines[0])
            lines[0] = b"".join(carry)
        last = lines.pop()
        carry = [last] if last else []
        yield lines
    if carry:
        yield [b"".join(carry)]


def _open_lines(path: str | os.PathLike[str]) -> tuple[IO[bytes], Iterator[list[bytes]]]:
    """(raw file, batches of lines) of a file or of stdin; gzip is detected by its magic.

    Raises:
        OSError: the file cannot be opened or read.
    """
    if str(path) == STDIN:
        raw: IO[bytes] = sys.stdin.buffer
    else:
        # unbuffered: the blocks are big, and ``tell()`` is then exactly the bytes consumed
        raw = open(path, "rb", buffering=0)  # noqa: SIM115 - returned to the caller, closed by it
    try:
        head = b""
        while len(head) < 2:  # a pipe may hand out one byte at a time
            chunk = raw.read(2 - len(head))
            if not chunk:
                break
            head += chunk
    except BaseException:
        if raw is not sys.stdin.buffer:
            raw.close()
        raise
    if head == _GZIP_MAGIC:
        text = _gunzip(_read_blocks(raw, head, _GZIP_BLOCK))
    else:
        text = _read_blocks(raw, head, _PLAIN_BLOCK)
    return raw, _split_lines(text)


def _format_by_name(name: str) -> FileFormat | None:
    if ".cfcap" in name:
        return FileFormat.CFCAP
    if ".hbt" in name:
        return FileFormat.HBT
    if ".bkrec" in name:
        return FileFormat.BOOKKEEPER
    return None


def _format_by_content(first: bytes, name: str) -> FileFormat:
    first = first.strip()
    if b"bookkeeper-recording" in first[:200]:
        return FileFormat.BOOKKEEPER
    if first.startswith((b"{", b"[")):
        return FileFormat.JSONL
    head = first.split(b" ", 1)[0]
    if head.isdigit() and len(head) >= 16:
        return FileFormat.HBT
    if first.startswith(b"configuration:") or b" -> " in first or b" <-> " in first or first[:1].isdigit():
        return FileFormat.CFCAP
    raise UsageError(f"{name}: unknown recording format (first line {first[:60]!r})", path=name)


def _check_path(path: str | os.PathLike[str]) -> None:
    """Raise a precise :class:`UsageError` for a path that cannot be a recording."""
    if str(path) == STDIN:
        return
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise UsageError(f"no such file: {p}", path=str(p)) from None
    except OSError as exc:
        raise UsageError(f"cannot read {p}: {exc.strerror or exc}", path=str(p)) from None
    if stat.S_ISDIR(mode):
        raise UsageError(f"{p}: is a directory", path=str(p))


def detect_format(path: str | os.PathLike[str]) -> FileFormat:
    """Detect a recording's format from its name and first line.

    Args:
        path: a file (not ``-``: standard input can be read only once; :func:`read_records`
            detects its format while reading it).

    Returns:
        The format.

    Raises:
        UsageError: missing file, a directory, unreadable file or unknown format.
    """
    _check_path(path)
    p = Path(path)
    fmt = _format_by_name(p.name)
    if fmt is not None:
        return fmt
    try:
        raw, batches = _open_lines(p)
        try:
            first = next(batches, [b""])[0]
        finally:
            raw.close()
    except _READ_ERRORS as exc:
        raise UsageError(f"cannot read {p}: {exc}", path=str(p)) from None
    return _format_by_content(first, str(p))


Lines = Iterator[tuple[int, bytes]]  # (1-based line number, the line without its "\n")
#: A record's fields as a plain tuple, in :class:`Record`'s order: ``(ts_recv_ns, kind, data,
#: url, source, line)``, so ``Record(*row)`` is the record. The parsers make rows, not records:
#: ``Record()`` (a frozen dataclass: one ``object.__setattr__`` per field) costs ~11k
#: instructions, a tuple ~0.2k, and ``bookkeeper replay`` reads rows (:func:`read_rows`).
Row = tuple[int, RecordKind, bytes, str | None, int, int]


def _iter_cfcap(lines: Lines, source: int) -> Iterator[Row]:
    for n, line in lines:
        line = line.rstrip(b"\r")  # lines come without their "\n"; CRLF files keep a "\r"
        if not line or line.startswith(b"configuration:"):
            continue
        if line[:1].isdigit():
            ts, _, payload = line.partition(b": ")
            yield int(float(ts) * 1e9), RecordKind.RECV, payload, None, source, n
            continue
        url, _, rest = line.partition(b" ")
        op, _, rest = rest.partition(b" ")
        if op == b"<->":
            yield int(float(rest) * 1e9), RecordKind.OPEN, b"", url.decode(), source, n
            continue
        ts, _, payload = rest.partition(b": ")
        kind = RecordKind.REST if op == b"->" else RecordKind.SENT if op == b"<-" else None
        if kind is None:
            raise ValueError(f"unrecognised cfcap line: {line[:80]!r}")
        yield int(float(ts) * 1e9), kind, payload, url.decode(), source, n


def _iter_hbt(lines: Lines, source: int) -> Iterator[Row]:
    recv, rest = RecordKind.RECV, RecordKind.REST  # locals: this loop runs per frame
    for n, line in lines:
        ts, sep, payload = line.partition(b" ")
        if not sep:  # a blank line, or no frame after the time
            continue
        # "<ts> " (an empty frame) is an empty record, as the line reader made it of every such
        # line that ended in a newline (it dropped only an unterminated last one)
        payload = payload.rstrip(b"\r")
        yield int(ts), rest if payload.startswith(b'{"lastUpdateId"') else recv, payload, None, source, n


def _iter_jsonl(lines: Lines, source: int, offset: int) -> Iterator[Row]:
    for n, line in lines:
        line = line.strip()
        if line:
            yield offset + n - 1, RecordKind.RECV, line, None, source, n


def _iter_bookkeeper(lines: Lines, source: int) -> Iterator[Row]:
    first = next(lines, None)
    if first is None or b"bookkeeper-recording" not in first[1]:
        raise ValueError("missing bookkeeper-recording header line")
    for n, line in lines:
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
            ts = int(obj["ts"])
            kind = _KIND_BY_DIR[obj["dir"]]
            data = obj.get("data") or ""
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ValueError(f"bad bookkeeper-recording line: {line[:80]!r}") from None
        yield ts, kind, data.encode() if isinstance(data, str) else bytes(data), obj.get("url"), source, n


class ReadProgress:
    """Bytes of the input files consumed so far (compressed bytes for gzip files), for a
    progress bar. ``done`` is refreshed as the files are read."""

    def __init__(self, paths: Sequence[str | os.PathLike[str]]) -> None:
        self.total = sum(Path(p).stat().st_size for p in paths if str(p) != STDIN and Path(p).is_file())
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


class _Reader:
    """One open input: its format is known (read from the first line) before any record is
    taken, so every input fails early, before any output.

    The text is read in large blocks and split into lines in bulk (:func:`_split_lines`); the
    per-format parsers get ``(line number, line)`` pairs from C iterators, so no Python code
    runs per line outside the parser itself.
    """

    def __init__(self, path: str | os.PathLike[str], source: int) -> None:
        _check_path(path)
        self.name = _name(path)
        self.source = source
        try:
            self.raw, batches = _open_lines(path)
        except OSError as exc:
            raise UsageError(f"cannot read {self.name}: {exc.strerror or exc}", path=self.name) from None
        try:
            head = next(batches, [])
        except _READ_ERRORS as exc:
            self.close()
            raise UsageError(f"cannot read {self.name}: line 1: {exc}", path=self.name, line=1) from None
        first = head[0] if head else b""
        by_name = None if str(path) == STDIN else _format_by_name(Path(path).name)
        try:
            self.format = by_name or _format_by_content(first, self.name)
        except UsageError:
            self.close()
            raise
        self._batches = itertools.chain((head,), batches)

    def records(self, offset: int = 0, progress: ReadProgress | None = None) -> Iterator[Record]:
        """The records; a malformed line or a damaged file is a :class:`UsageError` naming
        the file and the line."""
        rows = self.rows(offset, progress)
        try:
            yield from itertools.starmap(Record, rows)
        finally:
            rows.close()  # stopped early: the file is closed now, not when collected

    def rows(self, offset: int = 0, progress: ReadProgress | None = None) -> Iterator[Row]:
        """:meth:`records` as rows (see :data:`Row`)."""
        if progress is not None and self.name != "<stdin>":
            progress.watch(self.source, self.raw)
        # zip takes the number before the line (left to right, guaranteed), so after any
        # error the next number says where: a line the parser refused (n taken, n + 1 next)
        # or a line that could not be read at all (n + 1 taken, n + 2 next).
        numbers = itertools.count(1)
        lines = zip(numbers, itertools.chain.from_iterable(self._batches))
        if self.format is FileFormat.CFCAP:
            it = _iter_cfcap(lines, self.source)
        elif self.format is FileFormat.HBT:
            it = _iter_hbt(lines, self.source)
        elif self.format is FileFormat.JSONL:
            it = _iter_jsonl(lines, self.source, offset)
        else:
            it = _iter_bookkeeper(lines, self.source)
        try:
            yield from it
        except _READ_ERRORS as exc:
            line = next(numbers) - 1
            raise UsageError(f"cannot read {self.name}: line {line}: {exc}", path=self.name, line=line) from None
        finally:
            if progress is not None:
                progress.finish(self.source)
            self.close()

    def close(self) -> None:
        if self.name == "<stdin>":
            return  # not ours to close
        self.raw.close()


def read_file(path: str | os.PathLike[str], source: int = 0, offset: int = 0,
              progress: ReadProgress | None = None) -> Iterator[Record]:
    """Stream the records of one file (``-``: standard input).

    Args:
        path: the file.
        source: stored in each record's ``source``.
        offset: added to the line number to make a JSON-lines record's ``ts_recv_ns``.
        progress: refreshed with the bytes read.

    Returns:
        An iterator of records.

    Raises:
        UsageError: the file is missing, a directory, unreadable or of an unknown format
            (at once); a line is not of the file's format or the file is damaged (while
            iterating; the message names the file and the line).
    """
    return _Reader(path, source).records(offset, progress)


#: receive time, then file order, of a row (a C itemgetter: the merge calls it once per record)
_MERGE_KEY = operator.itemgetter(0, 4)


def read_records(paths: Sequence[str | os.PathLike[str]], progress: ReadProgress | None = None) -> Iterator[Record]:
    """Merge several files into one session, ordered by receive time (stable per file).

    Files without timestamps (JSON lines) keep their order, one after another.

    Args:
        paths: the files (``-`` at most once: standard input).
        progress: refreshed with the bytes read.

    Returns:
        An iterator of records.

    Raises:
        UsageError: as :func:`read_file`; every file is opened and its format detected before
            the first record is returned.
    """
    return itertools.starmap(Record, read_rows(paths, progress))


def read_rows(paths: Sequence[str | os.PathLike[str]], progress: ReadProgress | None = None) -> Iterator[Row]:
    """:func:`read_records` as rows: the same records in the same order, each as the tuple of
    its fields (:data:`Row`), for readers on a hot path (``bookkeeper replay``).

    Raises:
        UsageError: as :func:`read_records`.
    """
    if sum(1 for p in paths if str(p) == STDIN) > 1:
        raise UsageError("standard input (-) can be read only once", path=STDIN)
    readers: list[_Reader] = []
    try:
        for i, p in enumerate(paths):
            readers.append(_Reader(p, i))
    except UsageError:
        for r in readers:
            r.close()
        raise
    iterators: list[Iterable[Row]] = []
    offset = 0
    for r in readers:
        if r.format is FileFormat.JSONL:
            iterators.append(r.rows(offset, progress))
            offset += 1 << 40
        else:
            iterators.append(r.rows(progress=progress))
    if len(iterators) == 1:
        return iter(iterators[0])
    return heapq.merge(*iterators, key=_MERGE_KEY)


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

