"""The C Binance depthUpdate decoder (``bookkeeper.adapters.binance._fastdepth.binance_depth``,
built from ``adapters/binance/_fastdepth.c``) against the msgspec path of
``adapters/binance/parse.py``.

The C decoder takes a strict subset of frames and answers ``None`` for everything else, so the
public ``parse_depth_update`` / ``decode`` must give *identical* events (same values, same
types, same float bits) or the *identical* ``AdapterError`` whichever path runs. Checked on
every depthUpdate of the recorded Binance fixtures, on random well-formed frames (random
decimals, key orders, whitespace, optional fields) and on hostile mutations of them.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import random
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bookkeeper.adapters.binance import parse as P
from bookkeeper.errors import AdapterError
from bookkeeper.events import BookDelta

_fastdepth = pytest.importorskip("bookkeeper.adapters.binance._fastdepth", reason="C decoder not built")
FIXTURES = Path("/work/shared/fixtures/real")
SETTINGS = settings(max_examples=400, derandomize=True, deadline=None)


@contextlib.contextmanager
def typed_only():
    saved = P._fast_depth
    P._fast_depth = None
    try:
        yield
    finally:
        P._fast_depth = saved


def bits(x):
    return struct.pack("<d", x) if type(x) is float else x


def fingerprint(ev: BookDelta):
    """Everything observable about the event, with floats compared bit for bit."""
    out = []
    for f in ev.__struct_fields__:
        v = getattr(ev, f)
        if isinstance(v, list):
            v = [tuple((type(x).__name__, bits(x)) for x in lv) + (type(lv).__name__,) for lv in v]
        out.append((f, type(v).__name__, v))
    return out


def outcome(fn, frame):
    try:
        ev = fn(frame, 123, "binance")
    except AdapterError as exc:
        return ("AdapterError", str(exc), exc.exchange, exc.excerpt, exc.symbol)
    except Exception as exc:  # noqa: BLE001 -- e.g. UnicodeDecodeError from msgspec on invalid UTF-8
        return (type(exc).__name__, str(exc))
    if isinstance(ev, list):
        return [fingerprint(e) if type(e) is BookDelta else repr(e) for e in ev]
    return fingerprint(ev)


def check(frame):
    """Both public entry points agree with the msgspec-only path; returns whether C took it."""
    fast = _fastdepth.binance_depth(frame, 123, BookDelta)
    for fn in (P.parse_depth_update, P.decode):
        got = outcome(fn, frame)
        with typed_only():
            want = outcome(fn, frame)
        assert got == want, frame
    if fast is not None:
        with typed_only():
            assert fingerprint(fast) == fingerprint(P.parse_depth_update(frame, 123, "binance"))
    return fast is not None


# ------------------------------------------------------------------ recorded frames
def _recorded_depth_frames(per_file=4000):
    """The first ``per_file`` depthUpdate frames of each recorded Binance capture."""
    frames = []
    for path in sorted(FIXTURES.glob("binance*/*.txt*")):
        n = 0
        with (gzip.open(path) if path.suffix == ".gz" else open(path, "rb")) as fh:
            for line in fh:
                if b"depthUpdate" not in line:
                    continue
                i = line.find(b"{")
                frames.append(line[i:].rstrip(b"\r\n"))
                n += 1
                if n == per_file:
                    break
    return frames


@pytest.mark.skipif(not FIXTURES.exists(), reason="recorded fixtures not present")
def test_recorded_frames_decode_identically_and_take_the_fast_path():
    frames = _recorded_depth_frames()
    assert frames
    taken = sum(check(f) for f in frames)
    assert taken == len(frames), f"C decoder declined {len(frames) - taken} real frames"


# ------------------------------------------------------------------ random frames
def fmt_decimal(rng: random.Random, clean: bool = False) -> str:
    kind = rng.random() * (0.6 if clean else 1.0)
    if kind < 0.5:
        return f"{rng.randint(1, 99999)}.{rng.randint(0, 10**8 - 1):08d}"
    if kind < 0.6:
        return "0.00000000"
    if kind < 0.7:
        return str(rng.randint(0, 10**rng.randint(1, 16)))
    if kind < 0.8:
        return f"{rng.randint(0, 10**rng.randint(0, 15))}.{rng.randint(0, 10**rng.randint(1, 25)):0{rng.randint(1, 25)}d}"
    if kind < 0.9:
        return repr(rng.uniform(1e-9, 1e16))
    return rng.choice(["1e5", "1E-3", "-1.5", "-0.0", "01.5", ".5", "5.", "nan", "inf", "1_0", " 1", "1 ",
                       "", "0", "00", "999999999999999.9", "1000000000000000", "9007199254740993",
                       "900719925474099.3", "0.30000000000000004", "\\u0031", "é1", "1.0e", "+1"])


def make_frame(rng: random.Random) -> bytes:
    clean = rng.random() < 0.6  # then only decimals of the fast subset (else any)

    def lvls():
        def px():  # a clean frame's prices are never zero
            return f"{rng.randint(1, 99999)}.{rng.randint(0, 10**8 - 1):08d}" if clean else fmt_decimal(rng)

        return [[px(), fmt_decimal(rng, clean)] for _ in range(rng.randint(0, 12))]

    U = rng.randint(0, 10**rng.randint(1, 19))
    d: dict = {"e": "depthUpdate", "E": rng.randint(0, 10**rng.randint(1, 14)), "s": rng.choice(["BTCUSDT", "ETHBTC", "X"]),
               "U": U, "u": U + rng.randint(-2, 50), "b": lvls(), "a": lvls()}
    if rng.random() < 0.3:
        d["pu"] = rng.choice([None, U - 1, 0])
    if rng.random() < 0.2:
        d["T"] = rng.randint(0, 10**13)
    for k in list(d):
        if rng.random() < 0.04:
            del d[k]
    if rng.random() < 0.05:
        d["x"] = 1
    items = list(d.items())
    if rng.random() < 0.3:
        rng.shuffle(items)
    sep = rng.choice(["", "", "", " ", "\n "])
    import json

    body = "{" + ",".join(f'{sep}{json.dumps(k)}{sep}:{sep}{json.dumps(v, separators=(",", ":"))}' for k, v in items) + sep + "}"
    body = body.replace('"\\\\u0031"', '"\\u0031"')
    if rng.random() < 0.6:
        stream = json.dumps("btcusdt@depth@100ms")
        body = ('{"stream":' + stream + ',"data":' + body + "}") if rng.random() < 0.9 else \
               ('{"stream":' + stream + ',"data":' + body + ',"stream":' + stream + "}")
    return body.encode("utf-8")


def mutate(rng: random.Random, frame: bytes) -> bytes:
    b = bytearray(frame)
    for _ in range(rng.randint(1, 3)):
        op = rng.random()
        if not b:
            break
        i = rng.randrange(len(b))
        if op < 0.3:
            del b[i]
        elif op < 0.6:
            b.insert(i, rng.choice(b'"[]{},:.-0123456789e \\\x00\xff'))
        elif op < 0.8:
            b[i] = rng.choice(b'"[]{},:.-0123456789eE \\')
        else:
            del b[i:]
    return bytes(b)


@SETTINGS
@given(st.integers(0, 2**32 - 1))
def test_random_frames_decode_identically(seed):
    rng = random.Random(seed)
    for _ in range(5):
        frame = make_frame(rng)
        check(frame)
        check(mutate(rng, frame))


def test_random_frame_generator_exercises_both_paths():
    rng = random.Random(1)
    taken = sum(_fastdepth.binance_depth(make_frame(rng), 0, BookDelta) is not None for _ in range(2000))
    assert 300 < taken < 1900, taken


def test_random_frames_mostly_take_the_fast_path():
    rng = random.Random(5)
    frames = []
    for _ in range(2000):
        U = rng.randint(1, 10**12)
        levels = lambda: ",".join(  # noqa: E731
            f'["{rng.randint(1, 99999)}.{rng.randint(0, 10**8 - 1):08d}","{rng.randint(0, 999)}.{rng.randint(0, 10**8 - 1):08d}"]'
            for _ in range(rng.randint(0, 40)))
        frames.append(f'{{"stream":"btcusdt@depth","data":{{"e":"depthUpdate","E":1723161255208,"s":"BTCUSDT",'
                      f'"U":{U},"u":{U + 5},"b":[{levels()}],"a":[{levels()}]}}}}'.encode())
    assert all(check(f) for f in frames)


@pytest.mark.parametrize("frame", [
    b'{"e":"depthUpdate","E":1,"s":"X","U":5,"u":4,"b":[],"a":[]}',  # u < U: AdapterError
    b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["0","1"]],"a":[]}',  # price 0
    b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1000000000000000","1"]],"a":[]}',
    b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1","1000000000000000.0"]],"a":[]}',
    b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1","2","3"]],"a":[]}',
    b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1",2]],"a":[]}',
    b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[],"a":[]} x',
    b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[],"a":[],"s":"Y"}',  # duplicate: last wins
    b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[],"a":[],"zz":[1,{"a":2}]}',  # unknown key
    b'{"e":"depthUpdate","E":99999999999999999,"s":"X","U":1,"u":2,"b":[],"a":[]}',  # E * 10^6 > int64
    b'{"e":"depthUpdate","E":1,"s":"X","U":-1,"u":2,"b":[],"a":[]}',
    b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[],"a":[],"pu":null}',
    b'{"e":"depthUpdate","E":1,"s":"X\\u0041","U":1,"u":2,"b":[],"a":[]}',
    b'{"e":"depthUpdate","E":1,"s":"\xc3\xa9","U":1,"u":2,"b":[],"a":[]}',
    b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1.12345678901234567890","1"]],"a":[]}',
    b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["9007199254740993","1"]],"a":[]}',
    b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["18446744073709551616","1"]],"a":[]}',
    b'{"stream":"x","data":{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[],"a":[]}}',
    b'{"data":{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[],"a":[]},"stream":"x"}',
    b'{"stream":"x","data":{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[],"a":[]},"extra":1}',
    b'{"stream":"x","data":{"e":"depthUpdate","s":"X","U":1,"u":2,"b":[],"a":[]}',
    b' {"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[ [ "1.5" , "0.00000000" ] ],"a":[]}\n',
    b'{"e":"depthUpdate"}',
    b'depthUpdate',
    b'',
])
def test_edge_frames_decode_identically(frame):
    check(frame)
    check(frame.decode("utf-8", "replace"))  # str frames always take the msgspec path


def test_zero_sizes_are_positive_zero_and_prices_exact():
    frame = (b'{"e":"depthUpdate","E":7,"s":"BTCUSDT","U":1,"u":2,'
             b'"b":[["0.30000000","0.00000000"],["57000.01000000","1.23456789"]],"a":[["0.1","0"]]}')
    ev = _fastdepth.binance_depth(frame, 9, BookDelta)
    assert ev is not None
    assert ev.bids == [(0.3, 0.0), (57000.01, 1.23456789)] and ev.asks == [(0.1, 0.0)]
    assert math.copysign(1.0, ev.bids[0][1]) == 1.0
    assert ev.ts_exchange_ns == 7_000_000 and ev.ts_recv_ns == 9 and ev.prev_seq is None


def test_non_bytes_frames_are_declined():
    frame = b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[],"a":[]}'
    assert _fastdepth.binance_depth(bytearray(frame), 0, BookDelta) is None
    assert _fastdepth.binance_depth(frame.decode(), 0, BookDelta) is None
    assert _fastdepth.binance_depth(memoryview(frame), 0, BookDelta) is None
