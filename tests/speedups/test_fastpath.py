"""``BookSession.apply_frame_fast`` + ``binance_depth_apply`` against the normal path.

The fused fast path (decode + the APPLY case of the sequence rule + apply: in C, and its
pure-Python twin ``adapters/binance/_purefast.py``, each run here) must be invisible: a driver that tries it first and falls back to ``decoder.decode()`` ->
``session.handle()`` whenever it answers False must see the same actions, stats, state,
``last_seq`` and book (internal containers included) after EVERY frame as a driver that only
uses the normal path. Checked on the first few thousand lines of the recorded Binance spot
(CONTIGUOUS_RANGE), USD-M and COIN-M (PREV_POINTER) captures, clean and with injected faults
(drops, duplicates, reorders, garbage, foreign symbols, crossing deltas, disconnects).
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from bookkeeper.actions import FetchSnapshot
from bookkeeper.adapters import get_adapter
from bookkeeper.adapters.binance import parse as P
from bookkeeper.errors import AdapterError
from bookkeeper.events import BookSnapshot, CloseReason, SnapshotSource, StreamClosed
from bookkeeper.session import BookSession

#: both fused paths: the pure-Python twin always, the C one when built (and not switched off)
FUSED = [pytest.param(P.fused_depth_py, id="pure")]
if P.fused_depth is not P.fused_depth_py:
    FUSED.append(pytest.param(P.fused_depth, id="c"))
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures/real"
CAPTURES = [
    ("binance", "binance/binance_spot_btcusdt_2024-08-08.hbt.txt.gz", "BTCUSDT"),
    ("binance_usdm", "binance_usdm/binance_usdm_btcusdt_2024-08-08.hbt.txt.gz", "BTCUSDT"),
    ("binance_coinm", "binance_coinm/binance_coinm_btcusd_perp_2024-08-08.hbt.txt.gz", "BTCUSD_PERP"),
]
N_LINES = 4000


def _lines(rel: str) -> list[bytes]:
    path = FIXTURES / rel
    if not path.exists():
        pytest.skip(f"{path} not present")
    out = []
    with gzip.open(path) as fh:
        for i, line in enumerate(fh):
            if i >= N_LINES:
                break
            out.append(line.rstrip(b"\n").partition(b" ")[2])
    return out


def _state(s: BookSession) -> tuple:
    b = s.book
    return (s.state, s.last_seq, s.stats.as_dict(), s.buffered, s.epoch, b.poisoned,
            list(b._bids.items()), list(b._asks.items()), list(b._bkeys), list(b._akeys))


class _Driver:
    """One session + decoder, fed like the stream driver; ``fast`` tries the fused path first."""

    def __init__(self, name: str, symbol: str, fast: Any = None) -> None:
        self.adapter = get_adapter(name)
        self.session = BookSession(symbol, self.adapter.capabilities)
        self.decoder = self.adapter.new_decoder()
        self.fast = fast  # the fused call to try first, or None
        self.fast_hits = 0
        self.fetch: FetchSnapshot | None = None

    def feed(self, frame: bytes) -> list:
        s = self.session
        if self.fast is not None and s.apply_frame_fast(frame, self.fast):
            self.fast_hits += 1
            return []
        try:
            events = self.decoder.decode(frame, 0)
        except AdapterError as exc:
            return self._note(s.on_invalid_input(str(exc)))
        actions = []
        for ev in events:
            if type(ev) is BookSnapshot:
                continue  # the REST snapshot line: answered through FetchSnapshot below
            actions.extend(s.handle(ev))
        return self._note(actions)

    def _note(self, actions: list) -> list:
        for a in actions:
            if type(a) is FetchSnapshot:
                self.fetch = a
        return actions

    def answer(self, snap: BookSnapshot) -> list:
        fetch, self.fetch = self.fetch, None
        return self._note(self.session.on_snapshot(snap, epoch=fetch.epoch))  # type: ignore[union-attr]


def _crossing_frame(symbol: str, s: BookSession, prev_pointer: bool) -> bytes:
    """A delta that chains but crosses the book (a bid far above the best ask)."""
    local = s.last_seq or 0
    ask = s.book.best_ask()
    px = (ask[0] if ask else 100.0) * 1.01
    data = {"e": "depthUpdate", "E": 1, "s": symbol, "U": local + 1, "u": local + 2,
            "b": [[f"{px:.2f}", "1.00000000"]], "a": []}
    if prev_pointer:
        data["pu"] = local
    return orjson.dumps({"stream": "x@depth", "data": data})


def _faulted(frames: list[bytes], rng: random.Random, symbol: str) -> list[object]:
    """The capture with faults: drops, duplicates, reorders, garbage, foreign symbols, a
    lookalike that is not a depthUpdate, a pu removed, disconnects, crossing deltas ("CROSS")."""
    out: list[object] = []
    i = 0
    while i < len(frames):
        f = frames[i]
        r = rng.random()
        if r < 0.01:
            pass  # drop
        elif r < 0.02:
            out += [f, f]  # duplicate
        elif r < 0.03 and i + 1 < len(frames):
            out += [frames[i + 1], f]  # reorder
            i += 1
        elif r < 0.035:
            out += [f[: rng.randrange(1, len(f))], f]  # truncated garbage, then the real one
        elif r < 0.04:
            g = bytearray(f)
            g[rng.randrange(len(g))] = rng.randrange(256)
            out.append(bytes(g))  # a flipped byte (often still a valid frame)
        elif r < 0.043:
            out.append(f.replace(symbol.encode(), b"ETHUSDT"))  # another symbol
        elif r < 0.046:
            out.append(f.replace(b"depthUpdate", b"depthUpdatX"))  # not a depthUpdate
        elif r < 0.049:
            out.append(f.replace(b'"pu":', b'"pX":'))  # pu missing
        elif r < 0.051:
            out.append("CROSS")
        elif r < 0.052:
            out += ["CLOSE", f]
        else:
            out.append(f)
        i += 1
    return out


def _run(name: str, rel: str, symbol: str, faults: random.Random | None, fused: Any) -> tuple[int, int]:
    frames = _lines(rel)
    prev_pointer = name != "binance"
    truth = _Driver(name, symbol)  # clean stream: serves later snapshots
    normal = _Driver(name, symbol)
    fast = _Driver(name, symbol, fast=fused)
    stream = frames if faults is None else _faulted(frames, faults, symbol)
    clean = iter(frames)
    rest_body: bytes | None = None
    applied = 0
    for item in stream:
        # keep the truth session roughly in step with the (faulted) stream
        f = next(clean, None)
        if f is not None:
            if b"lastUpdateId" in f:
                rest_body = f
            truth.feed(f)
            if truth.fetch is not None and rest_body is not None:
                truth.answer(get_adapter(name).parse_rest_snapshot(rest_body, symbol=symbol))
        if item == "CROSS":
            item = _crossing_frame(symbol, normal.session, prev_pointer)
        if item == "CLOSE":
            got = [d.session.on_stream_closed(StreamClosed(reason=CloseReason.ABNORMAL_CLOSURE)) for d in (normal, fast)]
        else:
            assert isinstance(item, bytes)
            got = [d.feed(item) for d in (normal, fast)]
        assert got[0] == got[1], item
        assert _state(normal.session) == _state(fast.session), item
        # answer pending snapshot requests identically: the capture's REST snapshot first, then
        # a snapshot of the clean truth book
        if normal.fetch is not None:
            assert fast.fetch == normal.fetch
            if rest_body is None:
                continue
            if truth.session.is_synced and truth.session.last_seq is not None and normal.session.epoch > 1:
                snap = BookSnapshot(symbol=symbol, bids=truth.session.book.bids(), asks=truth.session.book.asks(),
                                    seq=truth.session.last_seq, source=SnapshotSource.REST)
            else:
                snap = get_adapter(name).parse_rest_snapshot(rest_body, symbol=symbol)
            got = [d.answer(snap) for d in (normal, fast)]
            assert got[0] == got[1]
            assert _state(normal.session) == _state(fast.session)
        applied = normal.session.stats.deltas_applied
    return fast.fast_hits, applied


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize(("name", "rel", "symbol"), CAPTURES, ids=[c[0] for c in CAPTURES])
def test_clean_capture_identical(name: str, rel: str, symbol: str, fused: Any) -> None:
    hits, applied = _run(name, rel, symbol, None, fused)
    assert applied > 100
    assert hits > 0.9 * applied, (hits, applied)  # the steady state really takes the fast path


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("name", "rel", "symbol"), CAPTURES, ids=[c[0] for c in CAPTURES])
def test_faulted_capture_identical(name: str, rel: str, symbol: str, seed: int, fused: Any) -> None:
    hits, applied = _run(name, rel, symbol, random.Random(seed), fused)
    assert hits > 0


@pytest.mark.parametrize("fused", FUSED)
def test_fused_touches_nothing_unless_applied(fused: Any) -> None:
    """Every non-tuple answer leaves the containers untouched (the caller falls back)."""
    bs, bk, as_, ak = {100.0: 1.0}, [100.0], {101.0: 1.0}, [-101.0]
    frame = (b'{"e":"depthUpdate","E":1,"s":"X","U":11,"u":12,'
             b'"b":[["100.5","2"],["100","0"]],"a":[["102","1"]]}')
    before = (dict(bs), list(bk), dict(as_), list(ak))
    for args in [(frame, "Y", 1, 10), (frame, "X", 1, 12), (frame, "X", 1, 9), (frame, "X", 2, 10),
                 (frame, "X", 3, 10), (frame, "X", 1, None), (frame.replace(b"depthUpdate", b"x"), "X", 1, 10),
                 (frame.replace(b'"100.5"', b'"101.5"'), "X", 1, 10), (frame[:-1], "X", 1, 10),
                 (frame.decode(), "X", 1, 10)]:
        r = fused(*args, bs, bk, as_, ak)
        assert type(r) is int, args
        assert (bs, bk, as_, ak) == before
    assert fused(frame, "X", 1, 10, bs, bk, as_, ak) == (11, 12)
    assert (bs, bk, as_, ak) == ({100.5: 2.0}, [100.5], {101.0: 1.0, 102.0: 1.0}, [-102.0, -101.0])


@pytest.mark.parametrize("name", ["binance", "binance_coinm"])
def test_pure_twin_under_the_fuzz_kit(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Mutated frames (NaN/inf/negative/huge values, ids beyond int64, broken JSON...) through
    the pure-Python twin, whatever path this process runs: it never applies a frame the decoder
    refuses, never touches a book when it declines, and agrees with the decoder on the book."""
    from bookkeeper.testing.fuzz import fuzz_adapter, load_seed_frames

    rel = next(r for n, r, _ in CAPTURES if n == name)
    if not (FIXTURES / rel).exists():
        pytest.skip(f"{rel} not present")
    adapter = get_adapter(name)
    monkeypatch.setattr(adapter, "fused", P.fused_depth_py)
    seed = 20261208
    report = fuzz_adapter(adapter, load_seed_frames([FIXTURES / rel], limit=300), frames=2000, seed=seed)
    report.check()
    assert report.fast_path_applied > 0, f"seed={seed}: {report.summary()}"
