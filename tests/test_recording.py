"""Recording readers and writer (bookkeeper.io.recording): format detection, per-format
parsing, gzip transparency, the bookkeeper recording round-trip and multi-file merging."""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path

import pytest

from bookkeeper.errors import UsageError
from bookkeeper.io.recording import (
    FileFormat,
    Record,
    RecordingWriter,
    RecordKind,
    detect_format,
    read_file,
    read_records,
)

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real"

CFCAP = (
    b'configuration: {"log": {"filename": "demo.log"}}\n'
    b"wss://stream.example.com/ws <-> 1619378325.5\n"
    b'wss://stream.example.com/ws <- 1619378326.25: {"op":"subscribe","args":["book"]}\n'
    b'1619378326.75: {"type":"message","n":1}\n'
    b"https://api.example.com/depth?symbol=BTC-USDT -> 1619378327.0: "
    b'{"code":"200000","data":{"sequence":"5"}}\n'
    b'1619378327.5: {"type":"message","n":2}\n'
)

HBT = (
    b'1723161253123456789 {"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","U":1,"u":2}}\n'
    b'1723161254000000000 {"lastUpdateId":2,"bids":[],"asks":[]}\n'
    b'1723161255000000000 {"stream":"btcusdt@bookTicker","data":{"u":3}}\n'
)


def write(path: Path, data: bytes, *, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


# ---------------------------------------------------------------- detection
@pytest.mark.parametrize("name, content, fmt", [
    ("a.cfcap.txt", CFCAP, FileFormat.CFCAP),
    ("a.hbt.txt", HBT, FileFormat.HBT),
    ("a.bkrec.jsonl", b'{"format":"bookkeeper-recording","version":1,"venue":"x"}\n', FileFormat.BOOKKEEPER),
    # by content, when the name says nothing
    ("noname1", CFCAP, FileFormat.CFCAP),
    ("noname2", b"wss://x <-> 1619378325.5\n", FileFormat.CFCAP),
    ("noname3", b"https://x?symbol=A -> 1.5: {}\n", FileFormat.CFCAP),
    ("noname4", b'1619378326.75: {"a":1}\n', FileFormat.CFCAP),
    ("noname5", HBT, FileFormat.HBT),
    ("noname6", b'{"topic":"orderbook.1.X","type":"snapshot"}\n', FileFormat.JSONL),
    ("noname7", b'[1, {"a": []}, "book-10", "XBT/USD"]\n', FileFormat.JSONL),
    ("noname8", b'{"format":"bookkeeper-recording","version":1,"venue":"x"}\n', FileFormat.BOOKKEEPER),
])
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_detect_format(tmp_path, name, content, fmt, gz):
    assert detect_format(write(tmp_path / name, content, gz=gz)) is fmt


@pytest.mark.parametrize("content", [b"hello world\n", b"", bytes(range(256)), b"\x1f\x8bnot really gzip"])
def test_unknown_or_unreadable_content_is_a_usage_error(tmp_path, content):
    with pytest.raises(UsageError):
        detect_format(write(tmp_path / "mystery.dat", content))


def test_real_captures_are_detected():
    assert detect_format(REAL / "kucoin/kucoin_spot_level2_2021-04-25.ws.cfcap.txt.gz") is FileFormat.CFCAP
    assert detect_format(REAL / "binance/binance_spot_btcusdt_2024-08-08.hbt.txt.gz") is FileFormat.HBT
    assert detect_format(REAL / "bybit/bybit_v5_linear_orderbook500_XRPUSDT_2024-12-01.jsonl.gz") is FileFormat.JSONL


# ---------------------------------------------------------------- parsing
def test_cfcap_records(tmp_path):
    recs = list(read_file(write(tmp_path / "s.cfcap.txt", CFCAP), source=3))
    assert [r.kind for r in recs] == [RecordKind.OPEN, RecordKind.SENT, RecordKind.RECV, RecordKind.REST,
                                      RecordKind.RECV]
    opened, sent, recv, rest, recv2 = recs
    assert opened.url == "wss://stream.example.com/ws" and opened.data == b""
    assert opened.ts_recv_ns == pytest.approx(1619378325_500_000_000, abs=1000)
    assert sent.url == "wss://stream.example.com/ws" and sent.data == b'{"op":"subscribe","args":["book"]}'
    assert recv.url is None and recv.data == b'{"type":"message","n":1}'
    assert recv.ts_recv_ns == pytest.approx(1619378326_750_000_000, abs=1000)
    assert rest.url == "https://api.example.com/depth?symbol=BTC-USDT"
    assert rest.data == b'{"code":"200000","data":{"sequence":"5"}}'
    assert all(r.source == 3 for r in recs)
    assert [r.ts_recv_ns for r in recs] == sorted(r.ts_recv_ns for r in recs)


def test_cfcap_real_rest_file():
    recs = list(read_file(REAL / "kucoin/kucoin_spot_level2_2021-04-25.rest_level2.cfcap.txt.gz"))
    assert len(recs) == 9 and all(r.kind is RecordKind.REST for r in recs)
    assert all("symbol=" in r.url and r.data.startswith(b'{"code":"200000"') for r in recs)


def test_hbt_rest_line_detection(tmp_path):
    recs = list(read_file(write(tmp_path / "d.hbt.txt", HBT)))
    assert [r.kind for r in recs] == [RecordKind.RECV, RecordKind.REST, RecordKind.RECV]
    assert [r.ts_recv_ns for r in recs] == [1723161253123456789, 1723161254000000000, 1723161255000000000]
    assert recs[1].data == b'{"lastUpdateId":2,"bids":[],"asks":[]}'
    assert recs[0].url is None


def test_hbt_real_file_has_one_rest_line():
    kinds = [r.kind for r in read_file(REAL / "binance/binance_spot_btcusdt_2024-08-08.hbt.txt.gz")]
    assert kinds.count(RecordKind.REST) == 1 and kinds.count(RecordKind.RECV) == 41248


def test_jsonl_lines_are_ordered_by_line_number(tmp_path):
    p = write(tmp_path / "m.jsonl", b'{"a":1}\n\n{"a":2}\n  \n{"a":3}\n')
    recs = list(read_file(p))
    assert [r.data for r in recs] == [b'{"a":1}', b'{"a":2}', b'{"a":3}']
    assert all(r.kind is RecordKind.RECV for r in recs)
    assert [r.ts_recv_ns for r in recs] == sorted(r.ts_recv_ns for r in recs)


@pytest.mark.parametrize("name, content", [("s.cfcap.txt", CFCAP), ("d.hbt.txt", HBT), ("m.jsonl", b'{"a":1}\n')])
def test_gzip_is_transparent_by_magic_not_by_name(tmp_path, name, content):
    plain = list(read_file(write(tmp_path / name, content)))
    gz = list(read_file(write(tmp_path / ("gz-" + name), content, gz=True)))  # no .gz suffix
    assert plain == gz and plain


# ---------------------------------------------------------------- bookkeeper recording
def test_recording_writer_round_trip(tmp_path):
    path = tmp_path / "live.bkrec.jsonl"
    w = RecordingWriter(path, venue="kucoin")
    w.write(RecordKind.OPEN, 10, b"", url="wss://x/endpoint")
    w.write(RecordKind.SENT, 11, '{"type":"subscribe"}', url="wss://x/endpoint")
    w.write(RecordKind.RECV, 12, b'{"type":"message","data":{"s":"\\u00e9"}}')
    w.write(RecordKind.REST, 13, b'{"code":"200000"}', url="https://api/level2?symbol=A-B")
    w.write(RecordKind.CLOSE, 14, b"")
    w.close()
    assert detect_format(path) is FileFormat.BOOKKEEPER
    first = path.read_bytes().splitlines()[0]
    assert b'"format":"bookkeeper-recording"' in first and b'"venue":"kucoin"' in first
    recs = list(read_file(path))
    assert recs == [
        Record(10, RecordKind.OPEN, b"", "wss://x/endpoint", 0),
        Record(11, RecordKind.SENT, b'{"type":"subscribe"}', "wss://x/endpoint", 0),
        Record(12, RecordKind.RECV, b'{"type":"message","data":{"s":"\\u00e9"}}', None, 0),
        Record(13, RecordKind.REST, b'{"code":"200000"}', "https://api/level2?symbol=A-B", 0),
        Record(14, RecordKind.CLOSE, b"", None, 0),
    ]


def test_recording_writer_to_a_stream_and_gzip(tmp_path):
    buf = io.BytesIO()
    w = RecordingWriter(buf, venue="gateio")
    w.write(RecordKind.RECV, 1, b'{"x":1}')
    w.close()
    p = write(tmp_path / "rec.bkrec.jsonl.gz", buf.getvalue(), gz=True)
    assert [r.data for r in read_file(p)] == [b'{"x":1}']


def test_real_capture_survives_a_round_trip(tmp_path):
    src = [REAL / "gateio/gateio_spot_order_book_update_2021-04-22.ws.cfcap.txt.gz",
           REAL / "gateio/gateio_spot_order_book_update_2021-04-22.rest_order_book.cfcap.txt.gz"]
    original = list(read_records(src))
    path = tmp_path / "copy.bkrec.jsonl"
    w = RecordingWriter(path, venue="gateio")
    for r in original:
        w.write(r.kind, r.ts_recv_ns, r.data, r.url)
    w.close()
    copy = list(read_records([path]))
    assert [(r.ts_recv_ns, r.kind, r.data, r.url) for r in copy] == \
           [(r.ts_recv_ns, r.kind, r.data, r.url) for r in original]


def test_recording_without_header_is_rejected_while_reading(tmp_path):
    p = write(tmp_path / "x.bkrec.jsonl", b'{"ts":1,"dir":"in","url":null,"data":"{}"}\n')
    with pytest.raises(UsageError, match=f"{p}: line 1: missing bookkeeper-recording header"):
        list(read_file(p))


@pytest.mark.parametrize("line", [b'{"ts":1,"url":null,"data":"x"}', b'{"ts":1,"dir":"sideways","data":"x"}',
                                  b'{"dir":"in","data":"x"}'])
def test_malformed_recording_line_names_the_file_and_line(tmp_path, line):
    header = b'{"format":"bookkeeper-recording","version":1,"venue":"x"}\n'
    good = b'{"ts":1,"dir":"in","url":null,"data":"{}"}\n'
    p = write(tmp_path / "x.bkrec.jsonl", header + good + b"\n" + line)
    with pytest.raises(UsageError, match=f"{p}: line 4: bad bookkeeper-recording line") as err:
        list(read_file(p))
    assert err.value.line == 4 and err.value.path == str(p)


# ---------------------------------------------------------------- merging
def test_rest_file_is_interleaved_by_receive_time():
    ws = REAL / "kucoin/kucoin_spot_level2_2021-04-25.ws.cfcap.txt.gz"
    rest = REAL / "kucoin/kucoin_spot_level2_2021-04-25.rest_level2.cfcap.txt.gz"
    merged = list(read_records([ws, rest]))
    assert len(merged) == len(list(read_file(ws))) + 9
    ts = [r.ts_recv_ns for r in merged]
    assert ts == sorted(ts)
    rest_pos = [i for i, r in enumerate(merged) if r.kind is RecordKind.REST]
    assert len(rest_pos) == 9 and rest_pos[0] > 20 and rest_pos[-1] < len(merged) - 100  # in the middle
    assert {r.source for r in merged} == {0, 1}
    # file order does not matter: the merge is by receive time
    assert [(r.ts_recv_ns, r.kind, r.data) for r in read_records([rest, ws])] == \
           [(r.ts_recv_ns, r.kind, r.data) for r in merged]


def test_continuation_file_follows_its_predecessor():
    day = REAL / "binance/binance_spot_btcusdt_2024-08-08.hbt.txt.gz"
    cont = REAL / "binance/binance_spot_btcusdt_2024-08-09.continuation.hbt.txt.gz"
    merged = read_records([day, cont])
    sources = [r.source for r in merged]
    switch = sources.index(1)
    assert set(sources[:switch]) == {0} and set(sources[switch:]) == {1}


def test_equal_timestamps_keep_file_order(tmp_path):
    a = write(tmp_path / "a.hbt.txt", b'1000000000000000000 {"n":1}\n1000000000000000000 {"n":2}\n')
    b = write(tmp_path / "b.hbt.txt", b'1000000000000000000 {"n":3}\n')
    assert [r.data for r in read_records([b, a])] == [b'{"n":3}', b'{"n":1}', b'{"n":2}']


def test_jsonl_files_are_replayed_one_after_another(tmp_path):
    a = write(tmp_path / "a.jsonl", b'{"n":1}\n{"n":2}\n')
    b = write(tmp_path / "b.jsonl", b'{"n":3}\n')
    assert [r.data for r in read_records([a, b])] == [b'{"n":1}', b'{"n":2}', b'{"n":3}']


def test_missing_file_fails_before_any_record(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        read_records([write(tmp_path / "a.jsonl", b"{}\n"), tmp_path / "missing.jsonl"])


def corrupt_deflate(tmp_path: Path) -> Path:
    """A gzip file whose header is fine but whose deflate stream is damaged mid-way (zlib
    raises ``zlib.error``, not ``OSError``)."""
    import random

    text = b"".join(b'%d.5: {"type":"message","n":%d,"pad":"%s"}\n' % (1619378326 + i, i, b"x" * (i % 50))
                    for i in range(5000))
    good = gzip.compress(text)
    for seed in range(500):
        r = random.Random(seed)
        bad = bytearray(good)
        i = r.randrange(len(good) // 3, 2 * len(good) // 3)
        bad[i:i + 64] = bytes(r.randrange(256) for _ in range(64))
        try:
            gzip.decompress(bytes(bad))
        except zlib.error:
            return write(tmp_path / "broken.cfcap.txt.gz", bytes(bad))
        except (OSError, EOFError):
            continue
    raise AssertionError("could not build a corrupt deflate stream")


def test_damaged_gzip_body_is_a_usage_error(tmp_path):
    from bookkeeper.adapters import get_adapter

    from bookkeeper.io.replay import replay

    with pytest.raises(UsageError):
        replay(get_adapter("kucoin"), [corrupt_deflate(tmp_path)])


# ---------------------------------------------------------------- where: file, line, stdin
def test_records_carry_their_line(tmp_path):
    recs = list(read_file(write(tmp_path / "s.cfcap.txt", CFCAP)))
    # line 1 is the configuration line; every record knows the line it came from
    assert [r.line for r in recs] == [2, 3, 4, 5, 6]
    jl = list(read_file(write(tmp_path / "m.jsonl", b'{"a":1}\n\n{"a":2}\n')))
    assert [r.line for r in jl] == [1, 3]


def test_line_is_not_part_of_a_records_identity():
    assert Record(1, RecordKind.RECV, b"x", None, 0, 10) == Record(1, RecordKind.RECV, b"x", None, 0)


def test_malformed_cfcap_line_names_file_and_line(tmp_path):
    p = write(tmp_path / "s.cfcap.txt", CFCAP + b"wss://x ?? 1.5: junk\n")
    with pytest.raises(UsageError, match=f"cannot read {p}: line 7: unrecognised cfcap line"):
        list(read_file(p))


def test_truncated_gzip_names_file_and_the_line_where_it_ends(tmp_path):
    text = b"".join(b'%d.5: {"n":%d}\n' % (1619378326 + i, i) for i in range(20000))
    data = gzip.compress(text)
    p = write(tmp_path / "t.cfcap.txt.gz", data[: len(data) // 2])
    got = []
    with pytest.raises(UsageError, match=f"cannot read {p}: line ") as err:
        for r in read_file(p):
            got.append(r)
    assert err.value.line == len(got) + 1  # the first line that could not be read
    assert 1000 < len(got) < 20000


def test_a_directory_is_not_a_missing_file(tmp_path):
    with pytest.raises(UsageError, match=f"{tmp_path}: is a directory"):
        read_records([tmp_path])
    with pytest.raises(UsageError, match="is a directory"):
        detect_format(tmp_path)


class _Stdin:
    def __init__(self, data: bytes, chunk: int = 1) -> None:
        self.buffer = _Trickle(data, chunk)


class _Trickle(io.RawIOBase):
    """A pipe that hands out ``chunk`` bytes per read (the worst case for sniffing)."""

    def __init__(self, data: bytes, chunk: int) -> None:
        self._data, self._chunk = data, chunk

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        n = min(len(b), self._chunk, len(self._data))
        b[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("content", [CFCAP, HBT, b'{"a":1}\n{"a":2}\n'], ids=["cfcap", "hbt", "jsonl"])
def test_dash_is_stdin_in_any_format(tmp_path, monkeypatch, gz, content):
    monkeypatch.setattr("sys.stdin", _Stdin(gzip.compress(content) if gz else content))
    from_stdin = list(read_records(["-"]))
    from_file = list(read_file(write(tmp_path / "noname", content)))
    assert from_stdin == from_file and from_stdin


def test_stdin_of_unknown_format_is_a_usage_error(monkeypatch):
    monkeypatch.setattr("sys.stdin", _Stdin(b"hello world\n"))
    with pytest.raises(UsageError, match="<stdin>: unknown recording format"):
        read_records(["-"])
