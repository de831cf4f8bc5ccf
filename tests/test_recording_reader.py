"""The bulk reader behind ``bookkeeper replay`` (bookkeeper.io.recording): big blocks inflated
at once and split into lines in bulk must read exactly what the line-at-a-time reader it
replaced read.

How "exactly" is pinned: every capture of ``fixtures/`` and an edge-case corpus (CRLF, blank
lines, no final newline, long lines, several gzip members split mid-line, zero padding) were
read with the previous reader (``gzip.GzipFile.readline``, before [replay-speed]); the number
of records and a digest of every field (``line`` included) are saved below. Each is read
again with block sizes from 1 byte up and with both inflate modules (zlib-ng and the stdlib's
zlib): block boundaries and the module must never show. Errors name the file and the first
line that cannot be read, whatever the block size.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import random
import zlib
from collections.abc import Iterable
from pathlib import Path

import pytest
from test_recording import CFCAP, HBT, _Stdin  # the same samples and the 1-byte pipe

from bookkeeper.errors import UsageError
from bookkeeper.io import recording
from bookkeeper.io.recording import (
    ReadProgress,
    Record,
    RecordKind,
    read_file,
    read_records,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REAL = FIXTURES / "real"

INFLATE = [pytest.param(zlib, id="stdlib-zlib")]
if recording._zlib_ng is not None:
    INFLATE.insert(0, pytest.param(recording._zlib_ng, id="zlib-ng"))


def digest(records: Iterable[Record]) -> tuple[int, str]:
    """(count, digest of every field of every record, ``line`` included)."""
    h = hashlib.sha256()
    n = 0
    for r in records:
        n += 1
        url = b"\x00" if r.url is None else r.url.encode()
        h.update(b"%d|%s|%d|%d|%s|" % (r.ts_recv_ns, r.kind.value.encode(), r.source, r.line, url))
        h.update(len(r.data).to_bytes(8, "little"))
        h.update(r.data)
    return n, h.hexdigest()[:16]


@pytest.fixture(params=INFLATE)
def inflate(request, monkeypatch):
    monkeypatch.setattr(recording, "_INFLATE", request.param)
    return request.param


def blocks(monkeypatch, size: int | None) -> None:
    """Read in blocks of ``size`` bytes (plain and compressed); ``None``: the defaults."""
    if size is not None:
        monkeypatch.setattr(recording, "_PLAIN_BLOCK", size)
        monkeypatch.setattr(recording, "_GZIP_BLOCK", size)


# ---------------------------------------------------------------- the fixtures, as before
#: (count, digest) of ``read_file(path)`` with the reader before [replay-speed]
OLD_FILES = {
    "bybit/orderbook/restart_u1.jsonl": (8, "e37eb700f27d2c26"),
    "bybit_spot/orderbook_full/sim_session.bkrec.jsonl": (84, "c4d031062e25896c"),
    "coinbase/advanced_trade/level2.jsonl": (8, "a4b249dddc126989"),
    "real/binance/binance_spot_btcusdt_2024-08-08.hbt.txt.gz": (41249, "15a12e8986df5ef1"),
    "real/binance/binance_spot_btcusdt_2024-08-09.continuation.hbt.txt.gz": (58325, "48dc60d9557c8d25"),
    "real/binance/binance_spot_depth100ms_4sym_2021-10-12.rest_depth.cfcap.txt.gz": (4, "9beff5b20e398da4"),
    "real/binance/binance_spot_depth100ms_4sym_2021-10-12.ws.cfcap.txt.gz": (266, "bb08ddce897eeaa8"),
    "real/binance_coinm/binance_coinm_btcusd_perp_2024-08-08.hbt.txt.gz": (48270, "4a38175c3b024666"),
    "real/binance_coinm/binance_coinm_btcusd_perp_2024-08-09.continuation.hbt.txt.gz": (50116, "2fcbfd3054938ce2"),
    "real/binance_usdm/binance_usdm_btcusdt_2024-08-08.hbt.txt.gz": (93954, "cebb353b5af99890"),
    "real/binance_usdm/binance_usdm_depth100ms_4sym_2021-07-22.rest_depth.cfcap.txt.gz": (4, "dfa6123bed255b64"),
    "real/binance_usdm/binance_usdm_depth100ms_4sym_2021-07-22.ws.cfcap.txt.gz": (1536, "108b89b165b570ce"),
    "real/bitget/bitget_spot_v1_books_8inst_2022-04-07.cfcap.txt.gz": (686, "50bdddb34f1a0e33"),
    "real/bitmex/bitmex_orderBookL2_2021-07-22.cfcap.txt.gz": (2124, "287bbdac4abf21e4"),
    "real/bybit/bybit_legacy_inverse_orderBookL2_25_2021-04-17.cfcap.txt.gz": (1103, "ce2df74c232aa2f6"),
    "real/bybit/bybit_v5_linear_orderbook500_XRPUSDT_2024-12-01.jsonl.gz": (50, "adcce24ba6fde5f5"),
    "real/coinbase/coinbase_pro_legacy_level2_2021-04-17.cfcap.txt.gz": (9950, "e28aaae42ccbaa03"),
    "real/deribit/deribit_book_raw_options_2021-07-22.cfcap.txt.gz": (138, "327a208b5b5f2247"),
    "real/gateio/gateio_spot_order_book_update_2021-04-22.rest_order_book.cfcap.txt.gz": (10, "4eb2a90e05021be5"),
    "real/gateio/gateio_spot_order_book_update_2021-04-22.ws.cfcap.txt.gz": (262, "66a1616f66243d5b"),
    "real/gateio/gateio_usdt_futures_order_book_update_2023-05-24.rest_order_book.cfcap.txt.gz": (10, "7fd10c1b085a15b5"),
    "real/gateio/gateio_usdt_futures_order_book_update_2023-05-24.ws.cfcap.txt.gz": (473, "7b9a06dec88deb27"),
    "real/kraken/kraken_spot_v1_book1000_10pairs_2021-04-17.cfcap.txt.gz": (4323, "48c9d545305f980b"),
    "real/kraken_futures/kraken_futures_book_2021-07-22.cfcap.txt.gz": (7179, "35881ce012fbdb71"),
    "real/kucoin/kucoin_spot_level2_2021-04-25.rest_level2.cfcap.txt.gz": (9, "61659187db10c2c3"),
    "real/kucoin/kucoin_spot_level2_2021-04-25.ws.cfcap.txt.gz": (4735, "9effc7d14290b4aa"),
    "real/okx/okex_v5_books-l2-tbt_2021-07-22.cfcap.txt.gz": (1618, "126e4790363b4071"),
    "real/okx/okex_v5_books-l2-tbt_2021-07-22_conn3.cfcap.txt.gz": (1536, "03d4c1781e16ae26"),
    "real/okx/okx_v5_books_3inst_2022-05-13.cfcap.txt.gz": (414, "af2af15207bf1c9f"),
}

#: (count, digest) of ``read_records(paths)`` (merged by receive time) before [replay-speed]
OLD_SESSIONS = {
    ("real/binance/binance_spot_btcusdt_2024-08-08.hbt.txt.gz",
     "real/binance/binance_spot_btcusdt_2024-08-09.continuation.hbt.txt.gz"): (99574, "33146438e582d782"),
    ("real/kucoin/kucoin_spot_level2_2021-04-25.ws.cfcap.txt.gz",
     "real/kucoin/kucoin_spot_level2_2021-04-25.rest_level2.cfcap.txt.gz"): (4744, "75fe0281b5673f61"),
    ("real/binance/binance_spot_depth100ms_4sym_2021-10-12.ws.cfcap.txt.gz",
     "real/binance/binance_spot_depth100ms_4sym_2021-10-12.rest_depth.cfcap.txt.gz"): (270, "fd2ab9877a7040b0"),
}


#: fixture folders that hold no recordings (triage's disconnect-record logs)
NOT_RECORDINGS = ("triage/",)


def test_the_table_covers_every_fixture():
    on_disk = {str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*") if p.suffix in (".gz", ".jsonl")}
    assert {f for f in on_disk if not f.startswith(NOT_RECORDINGS)} == set(OLD_FILES)


@pytest.mark.parametrize("rel", sorted(OLD_FILES))
def test_every_fixture_reads_to_the_same_records_as_before(rel, inflate):
    assert digest(read_file(FIXTURES / rel)) == OLD_FILES[rel]


@pytest.mark.parametrize("rels", sorted(OLD_SESSIONS))
def test_merged_sessions_read_to_the_same_records_as_before(rels, inflate):
    assert digest(read_records([FIXTURES / r for r in rels])) == OLD_SESSIONS[rels]


@pytest.mark.parametrize("size", [1, 7, 4096])
def test_small_blocks_change_nothing_on_a_real_capture(monkeypatch, inflate, size):
    rel = "real/okx/okx_v5_books_3inst_2022-05-13.cfcap.txt.gz"
    blocks(monkeypatch, size)
    assert digest(read_file(FIXTURES / rel)) == OLD_FILES[rel]


# ---------------------------------------------------------------- edge cases, as before
JSONL = b'{"a":1}\n\n{"a":2}\n  \n{"a":3}\n'
BKREC = (
    b'{"format":"bookkeeper-recording","version":1,"venue":"x"}\n'
    b'{"ts":1,"dir":"open","url":"wss://x","data":""}\n'
    b'{"ts":2,"dir":"in","url":null,"data":"{\\"a\\":1}"}\n'
    b'{"ts":3,"dir":"rest","url":"https://x/depth","data":"{\\"lastUpdateId\\":2}"}\n'
)
LONG = b'1723161256000000000 {"lastUpdateId":9,"bids":[%s],"asks":[]}\n' % b",".join(
    b'["%d.5","1.0"]' % i for i in range(6000))  # ~80 KB: one line across many blocks


def _crlf(text: bytes) -> bytes:
    return text.replace(b"\n", b"\r\n")


def _blank(text: bytes) -> bytes:
    lines = text.split(b"\n")
    return b"\n\r\n".join(lines[:2]) + b"\n\n" + b"\n".join(lines[2:])


def _members(text: bytes, cuts: list[int], pad: bytes = b"") -> bytes:
    """``text`` as several gzip members cut at ``cuts`` (mid-line on purpose), ``pad`` after each."""
    edges = [0, *cuts, len(text)]
    return b"".join(gzip.compress(text[a:b], mtime=0) + pad for a, b in itertools.pairwise(edges))


def corpus() -> dict[str, bytes]:
    """name (with the format in it) -> file content."""
    base = {"s.cfcap.txt": CFCAP, "d.hbt.txt": HBT, "m.jsonl": JSONL, "r.bkrec.jsonl": BKREC,
            "long.hbt.txt": HBT + LONG + HBT}
    out: dict[str, bytes] = {}
    for name, text in base.items():
        out["plain-" + name] = text
        out["crlf-" + name] = _crlf(text)
        out["nofinal-" + name] = text.rstrip(b"\n")
        out["crlf-nofinal-" + name] = _crlf(text).rstrip(b"\n")
        out["blank-" + name] = _blank(text)
        out["gz-" + name] = gzip.compress(_blank(text), mtime=0)
        out["gz-nofinal-" + name] = gzip.compress(_crlf(text).rstrip(b"\n"), mtime=0)
        out["members-" + name] = _members(text, [1, len(text) // 3, len(text) // 3 + 1, len(text) - 2])
        out["members-empty-padded-" + name] = _members(b"" + text, [0, len(text) // 2], pad=b"\x00" * 7)
    out["then-blank-lines.jsonl"] = b'{"a":1}\n\n\r\n  \n\n'  # nothing after the last record but blanks
    out["one-line-nofinal.hbt.txt"] = b'1723161253123456789 {"a":1}'
    return out


#: (count, digest) of ``read_file`` of each corpus entry with the reader before [replay-speed]
OLD_CORPUS = {
    "blank-d.hbt.txt": (3, "edf350670777448c"),
    "blank-long.hbt.txt": (7, "bc4abc224138c23d"),
    "blank-m.jsonl": (3, "5682bf9361b1f5ae"),
    "blank-r.bkrec.jsonl": (3, "af3ec0bd4d2e8f4d"),
    "blank-s.cfcap.txt": (5, "dc6a67634c9f7b2d"),
    "crlf-d.hbt.txt": (3, "0ffc32ade12823b1"),
    "crlf-long.hbt.txt": (7, "4d85bb08b27819b3"),
    "crlf-m.jsonl": (3, "d4ced927c9ffe4d2"),
    "crlf-nofinal-d.hbt.txt": (3, "0ffc32ade12823b1"),
    "crlf-nofinal-long.hbt.txt": (7, "4d85bb08b27819b3"),
    "crlf-nofinal-m.jsonl": (3, "d4ced927c9ffe4d2"),
    "crlf-nofinal-r.bkrec.jsonl": (3, "af3dad33c53822d2"),
    "crlf-nofinal-s.cfcap.txt": (5, "534594f41547de6e"),
    "crlf-r.bkrec.jsonl": (3, "af3dad33c53822d2"),
    "crlf-s.cfcap.txt": (5, "534594f41547de6e"),
    "gz-d.hbt.txt": (3, "edf350670777448c"),
    "gz-long.hbt.txt": (7, "bc4abc224138c23d"),
    "gz-m.jsonl": (3, "5682bf9361b1f5ae"),
    "gz-nofinal-d.hbt.txt": (3, "0ffc32ade12823b1"),
    "gz-nofinal-long.hbt.txt": (7, "4d85bb08b27819b3"),
    "gz-nofinal-m.jsonl": (3, "d4ced927c9ffe4d2"),
    "gz-nofinal-r.bkrec.jsonl": (3, "af3dad33c53822d2"),
    "gz-nofinal-s.cfcap.txt": (5, "534594f41547de6e"),
    "gz-r.bkrec.jsonl": (3, "af3ec0bd4d2e8f4d"),
    "gz-s.cfcap.txt": (5, "dc6a67634c9f7b2d"),
    "members-d.hbt.txt": (3, "0ffc32ade12823b1"),
    "members-empty-padded-d.hbt.txt": (3, "0ffc32ade12823b1"),
    "members-empty-padded-long.hbt.txt": (7, "4d85bb08b27819b3"),
    "members-empty-padded-m.jsonl": (3, "d4ced927c9ffe4d2"),
    "members-empty-padded-r.bkrec.jsonl": (3, "af3dad33c53822d2"),
    "members-empty-padded-s.cfcap.txt": (5, "534594f41547de6e"),
    "members-long.hbt.txt": (7, "4d85bb08b27819b3"),
    "members-m.jsonl": (3, "d4ced927c9ffe4d2"),
    "members-r.bkrec.jsonl": (3, "af3dad33c53822d2"),
    "members-s.cfcap.txt": (5, "534594f41547de6e"),
    "nofinal-d.hbt.txt": (3, "0ffc32ade12823b1"),
    "nofinal-long.hbt.txt": (7, "4d85bb08b27819b3"),
    "nofinal-m.jsonl": (3, "d4ced927c9ffe4d2"),
    "nofinal-r.bkrec.jsonl": (3, "af3dad33c53822d2"),
    "nofinal-s.cfcap.txt": (5, "534594f41547de6e"),
    "one-line-nofinal.hbt.txt": (1, "3e047c69784ba2d2"),
    "plain-d.hbt.txt": (3, "0ffc32ade12823b1"),
    "plain-long.hbt.txt": (7, "4d85bb08b27819b3"),
    "plain-m.jsonl": (3, "d4ced927c9ffe4d2"),
    "plain-r.bkrec.jsonl": (3, "af3dad33c53822d2"),
    "plain-s.cfcap.txt": (5, "534594f41547de6e"),
    "then-blank-lines.jsonl": (1, "bfa112a3a2769345"),
}


@pytest.mark.parametrize("name", sorted(corpus()))
@pytest.mark.parametrize("size", [1, 3, None], ids=lambda s: f"block{s or '-default'}")
def test_edge_cases_read_as_before_at_any_block_size(tmp_path, monkeypatch, inflate, name, size):
    path = tmp_path / name
    path.write_bytes(corpus()[name])
    blocks(monkeypatch, size)
    assert digest(read_file(path)) == OLD_CORPUS[name]


# ---------------------------------------------------------------- errors name the file and line
def _cfcap_text(n: int) -> bytes:
    return b"".join(b'%d.5: {"type":"message","n":%d,"pad":"%s"}\n' % (1619378326 + i, i, b"x" * (i % 50))
                    for i in range(n))


def _readable_prefix(data: bytes) -> bytes:
    """What can be inflated of a (damaged or truncated) gzip stream, fed a byte at a time to
    the inflate module in use (zlib-ng notices some damage a few bytes sooner than zlib)."""
    d = recording._INFLATE.decompressobj(31)
    out = []
    for i in range(len(data)):
        try:
            out.append(d.decompress(data[i:i + 1]))
        except recording._ZLIB_ERRORS:
            break
    return b"".join(out)


def _read_until_error(path: Path) -> tuple[list[Record], UsageError]:
    got: list[Record] = []
    with pytest.raises(UsageError) as err:
        for r in read_file(path):
            got.append(r)  # noqa: PERF402 - what was read before the error is the point
    return got, err.value


@pytest.mark.parametrize("size", [1, 100, None], ids=lambda s: f"block{s or '-default'}")
def test_truncated_gzip_names_the_first_line_it_cuts(tmp_path, monkeypatch, inflate, size):
    data = gzip.compress(_cfcap_text(20000))
    cut = data[: len(data) // 2]
    path = tmp_path / "t.cfcap.txt.gz"
    path.write_bytes(cut)
    blocks(monkeypatch, size)
    got, err = _read_until_error(path)
    complete = _readable_prefix(cut).count(b"\n")
    assert 1000 < complete < 20000
    assert len(got) == complete and got[-1].line == complete
    assert err.line == complete + 1 and err.path == str(path)
    assert str(err).startswith(f"cannot read {path}: line {complete + 1}: Compressed file ended")


def damaged(text: bytes, seed: int = 0) -> bytes:
    """gzip of ``text`` with 64 random bytes written over it early on (while less than the
    32 KiB window has been written, so that the garbage soon refers "too far back"): zlib
    raises ``zlib.error`` for the deflate data, not a CRC mismatch at the end."""
    good = gzip.compress(text)
    for s in range(seed, seed + 500):
        r = random.Random(s)
        bad = bytearray(good)
        i = r.randrange(len(good) // 40, len(good) // 15)
        bad[i:i + 64] = bytes(r.randrange(256) for _ in range(64))
        try:
            zlib.decompress(bytes(bad), 31)
        except zlib.error as exc:
            if "incorrect data check" not in str(exc):
                return bytes(bad)
    raise AssertionError(f"no damaged stream from seeds {seed}..{seed + 499}")


@pytest.mark.parametrize("size", [1, 100, None], ids=lambda s: f"block{s or '-default'}")
def test_damaged_gzip_names_the_first_line_that_cannot_be_read_at_any_block_size(tmp_path, monkeypatch, inflate,
                                                                                  size):
    # zlib drops a whole call's output at the damage; the reader inflates that block again up
    # to it, so every line before the damage is read and the error names the next one (the
    # line-at-a-time reader lost up to GzipFile's 8 KiB read, and named an earlier line).
    # JSON lines: a garbage line inflated just before the damage is still a record.
    rng = random.Random(1)
    text = b"".join(b'{"n":%d,"r":"%s"}\n' % (i, rng.randbytes(8).hex().encode()) for i in range(5000))
    bad = damaged(text, seed=0)
    path = tmp_path / "broken.jsonl.gz"
    path.write_bytes(bad)
    blocks(monkeypatch, size)
    got, err = _read_until_error(path)
    lines = _readable_prefix(bad).split(b"\n")[:-1]
    assert 100 < len(lines) < 5000, "seed 0"
    assert [r.data for r in got] == [x.strip() for x in lines if x.strip()], "seed 0"
    assert err.line == len(lines) + 1 and f"cannot read {path}: line {len(lines) + 1}: Error -3" in str(err)


def test_crc_mismatch_is_found_after_the_last_line(tmp_path, inflate):
    text = _cfcap_text(300)
    data = bytearray(gzip.compress(text))
    data[-8] ^= 0xFF  # the CRC32 in the trailer
    path = tmp_path / "crc.cfcap.txt.gz"
    path.write_bytes(bytes(data))
    got, err = _read_until_error(path)
    assert len(got) == 300 and err.line == 301 and "incorrect data check" in str(err)


@pytest.mark.parametrize("tail", [b"garbage!", b"\x1f\x8b\x08"], ids=["garbage", "cut-header"])
def test_bytes_after_the_last_member_that_are_no_member_are_an_error(tmp_path, inflate, tail):
    path = tmp_path / "tail.cfcap.txt.gz"
    path.write_bytes(gzip.compress(_cfcap_text(10)) + b"\x00\x00" + tail)
    got, err = _read_until_error(path)
    assert len(got) == 10 and err.line == 11


def test_truncated_second_member_names_its_line(tmp_path, inflate):
    text = _cfcap_text(4000)
    second = gzip.compress(text[len(text) // 2:])
    path = tmp_path / "m.cfcap.txt.gz"
    path.write_bytes(gzip.compress(text[: len(text) // 2]) + second[: len(second) // 2])
    got, err = _read_until_error(path)
    complete = text[: len(text) // 2].count(b"\n") + _readable_prefix(second[: len(second) // 2]).count(b"\n")
    assert len(got) == complete and err.line == complete + 1


def test_damage_before_the_first_newline_fails_when_the_file_is_opened(tmp_path):
    path = tmp_path / "early.hbt.txt.gz"
    rng = random.Random(5)
    digits = bytes(rng.choice(b"0123456789") for _ in range(100_000))  # seed 5: incompressible enough
    path.write_bytes(gzip.compress(digits + b' {"a":1}\n')[:200])
    with pytest.raises(UsageError, match=f"cannot read {path}: line 1: ") as err:
        read_file(path)
    assert err.value.line == 1


@pytest.mark.parametrize("size", [3, None], ids=lambda s: f"block{s or '-default'}")
def test_a_malformed_line_inside_a_block_names_its_line_after_every_record_before_it(tmp_path, monkeypatch, size):
    lines = [b'%d {"n":%d}\n' % (1723161253123456789 + i, i) for i in range(5000)]
    lines[3210] = b'17231612531234x6789 {"n":-1}\n'
    path = tmp_path / "bad.hbt.txt.gz"
    path.write_bytes(gzip.compress(b"".join(lines)))
    blocks(monkeypatch, size)
    got, err = _read_until_error(path)
    assert len(got) == 3210 and err.line == 3211 and f"{path}: line 3211: invalid literal" in str(err)


# ---------------------------------------------------------------- stdin, progress, closing
@pytest.mark.parametrize("chunk", [1, 5, 1 << 20])
@pytest.mark.parametrize("name", ["members-padded", "gz-crlf", "plain-crlf"])
def test_stdin_reads_like_the_file_in_any_chunking(tmp_path, monkeypatch, inflate, chunk, name):
    text = _crlf(HBT + LONG + HBT)
    content = {"members-padded": _members(text, [5, 200, 201], pad=b"\x00"), "gz-crlf": gzip.compress(text),
               "plain-crlf": text}[name]
    path = tmp_path / "x.hbt.txt"
    path.write_bytes(content)
    monkeypatch.setattr("sys.stdin", _Stdin(content, chunk))
    assert digest(read_records(["-"])) == digest(read_file(path)) == OLD_CORPUS["crlf-long.hbt.txt"]


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_progress_counts_input_bytes_up_to_the_whole_file(tmp_path, monkeypatch, gz):
    text = _cfcap_text(20000)
    path = tmp_path / "p.cfcap.txt"
    path.write_bytes(gzip.compress(text) if gz else text)
    blocks(monkeypatch, 4096)
    meter = ReadProgress([path])
    seen = [meter.done for _ in read_records([path], meter)]
    assert meter.total == path.stat().st_size and meter.done == meter.total
    assert seen == sorted(seen) and 0 < seen[0] < seen[len(seen) // 2] < meter.total  # moves while reading


def test_stopping_early_closes_the_file(tmp_path):
    path = tmp_path / "c.cfcap.txt"
    path.write_bytes(_cfcap_text(100))
    it = read_file(path)
    next(it)
    raw = it.gi_frame.f_locals["self"].raw  # the reader's file
    assert not raw.closed
    it.close()
    assert raw.closed


def test_hbt_line_with_an_empty_frame_is_a_record_wherever_it_is(tmp_path):
    # "<ts> " was an empty RECV record on any line but an unterminated last one (the old
    # reader saw its "\n" as a payload there and nothing at the end): now it is one everywhere
    path = tmp_path / "e.hbt.txt"
    path.write_bytes(b'1723161253123456789 \n1723161253123456790 {"a":1}\n1723161253123456791 ')
    recs = list(read_file(path))
    assert [(r.ts_recv_ns, r.kind, r.data, r.line) for r in recs] == [
        (1723161253123456789, RecordKind.RECV, b"", 1),
        (1723161253123456790, RecordKind.RECV, b'{"a":1}', 2),
        (1723161253123456791, RecordKind.RECV, b"", 3),
    ]
