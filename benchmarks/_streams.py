"""Shared helpers for the side-by-side benchmarks (not a benchmark itself).

* ``capture_stats()`` reads the real Binance spot BTCUSDT capture (hftbacktest collector
  format, ``<recv_ts_ns> <json>`` per line) and returns the empirical distributions the
  synthetic stream is drawn from: levels per ``depthUpdate``, bid/ask split, distance of each
  updated level from the mid (in bps, taken against the latest ``bookTicker``), the share of
  zero sizes (deletes), and the real REST snapshot that seeds the book.
* ``make_stream()`` turns those into a seeded, self-consistent stream of raw combined-stream
  ``depthUpdate`` frames (bytes) with contiguous ``U``/``u`` ids.
* ``CcxtHarness`` drives exactly what ccxt.pro's Binance class does per message
  (``handle_order_book`` -> nonce checks -> ``handle_order_book_message`` ->
  ``handle_deltas`` -> ``OrderBookSide.store``) with a stub client (no network).
* ``OursHarness`` drives ``BookSession.apply_frame_fast`` (the fused C steady-state path, when
  built) and otherwise ``get_adapter("binance").new_decoder().decode()`` -> ``BookSession.on_delta``.
"""

from __future__ import annotations

import gc
import gzip
import os
import random
import statistics
import sys
import time
from bisect import bisect_left
from importlib import import_module
from collections.abc import Callable
from pathlib import Path

import orjson

# the repository's own copies of the real captures (same bytes, see fixtures/real/PROVENANCE.md)
FIXTURES = Path(os.environ.get("BOOKKEEPER_FIXTURES", Path(__file__).resolve().parents[1] / "fixtures/real/binance"))
CAPTURE = FIXTURES / "binance_spot_btcusdt_2024-08-08.hbt.txt.gz"
CONTINUATION = FIXTURES / "binance_spot_btcusdt_2024-08-09.continuation.hbt.txt.gz"
SYMBOL = "BTCUSDT"
CCXT_SYMBOL = "BTC/USDT"
TICK = 0.01


# --------------------------------------------------------------------------- capture stats
class CaptureStats:
    __slots__ = ("levels_per_msg", "bid_share", "offsets_bps", "zero_frac", "snapshot", "source", "n_msgs")

    def describe(self) -> str:
        lpm = sorted(self.levels_per_msg)
        q = lambda f: lpm[min(len(lpm) - 1, int(f * len(lpm)))]  # noqa: E731
        offs = sorted(self.offsets_bps)
        qo = lambda f: offs[min(len(offs) - 1, int(f * len(offs)))]  # noqa: E731
        return (
            f"stream stats from {self.source}: {self.n_msgs} depthUpdate msgs; levels/msg "
            f"p50={q(0.5)} p90={q(0.9)} p99={q(0.99)} max={lpm[-1]} mean={statistics.fmean(lpm):.1f}; "
            f"bid share {self.bid_share:.2f}; |px-mid| bps p50={qo(0.5):.1f} p90={qo(0.9):.1f} "
            f"p99={qo(0.99):.0f}; zero-size share {self.zero_frac:.2f}; seed book = the capture's "
            f"REST snapshot ({len(self.snapshot['bids'])}+{len(self.snapshot['asks'])} levels)"
        )


def capture_stats(path: Path = CAPTURE) -> CaptureStats:
    counts: list[int] = []
    nbid = nask = 0
    offsets: list[float] = []
    zeros = total = 0
    mid = None
    snapshot = None
    with gzip.open(path) as fh:
        for line in fh:
            _, _, js = line.partition(b" ")
            o = orjson.loads(js)
            if "lastUpdateId" in o:
                snapshot = o
                continue
            d = o.get("data", o)
            if "B" in d and "A" in d and "e" not in d:
                mid = (float(d["b"]) + float(d["a"])) / 2
                continue
            if d.get("e") != "depthUpdate":
                continue
            counts.append(len(d["b"]) + len(d["a"]))
            nbid += len(d["b"])
            nask += len(d["a"])
            if mid is not None:
                for p, s in d["b"] + d["a"]:
                    offsets.append(abs(float(p) - mid) / mid * 1e4)
                    total += 1
                    zeros += float(s) == 0.0
    st = CaptureStats()
    st.levels_per_msg = counts
    st.bid_share = nbid / (nbid + nask)
    st.offsets_bps = offsets
    st.zero_frac = zeros / total
    st.snapshot = snapshot
    st.source = str(path)
    st.n_msgs = len(counts)
    return st


# --------------------------------------------------------------------------- stream generator
def _fmt(x: float) -> str:
    return f"{x:.8f}"


def make_stream(stats: CaptureStats, n_msgs: int, seed: int, snapshot_levels: int | None = None
                ) -> tuple[bytes, list[bytes], int]:
    """Return ``(rest_snapshot_body, frames, snapshot_last_update_id)``.

    The generator keeps a truth book in integer ticks; each message draws its level count
    from the capture's empirical distribution, each level's side by the capture's bid share,
    its distance from mid from the capture's offsets, and deletes with the capture's zero
    share (a delete snaps to an existing level near that distance, so the book stays about
    the size of the seed snapshot, as a live book does).
    """
    rng = random.Random(seed)
    snap = stats.snapshot
    bids = {round(float(p) / TICK): s for p, s in snap["bids"][:snapshot_levels]}
    asks = {round(float(p) / TICK): s for p, s in snap["asks"][:snapshot_levels]}
    best_bid = max(bids)
    best_ask = min(asks)
    mid_px = (best_bid + best_ask) * TICK / 2
    bkeys = sorted(bids)  # ascending
    akeys = sorted(asks)
    last_id = 50_000_000_000
    body = orjson.dumps({
        "lastUpdateId": last_id,
        "bids": [[_fmt(k * TICK), bids[k]] for k in reversed(bkeys)],
        "asks": [[_fmt(k * TICK), asks[k]] for k in akeys],
    })
    counts = stats.levels_per_msg
    offsets = stats.offsets_bps
    zf = stats.zero_frac
    bshare = stats.bid_share
    frames: list[bytes] = []
    ev_ms = 1_723_161_255_208
    for _ in range(n_msgs):
        n = rng.choice(counts)
        b_out: dict[int, str] = {}
        a_out: dict[int, str] = {}
        for _ in range(n):
            is_bid = rng.random() < bshare
            off = rng.choice(offsets)
            dist = max(0, round(mid_px * off / 1e4 / TICK))
            if is_bid:
                side, keys, out = bids, bkeys, b_out
                k = best_bid - dist
            else:
                side, keys, out = asks, akeys, a_out
                k = best_ask + dist
            if rng.random() < zf:
                # delete: the existing level nearest that distance (not the best one, so the
                # spread stays put and the book never crosses)
                if len(keys) < 3:
                    continue
                i = min(max(bisect_left(keys, k), 0), len(keys) - 1)
                k = keys[i]
                if k == best_bid or k == best_ask:
                    continue
                del keys[i]
                del side[k]
                out[k] = "0.00000000"
            else:
                sz = _fmt(rng.choice((0.0001, 0.001, 0.01, 0.1, 0.5, 1.0, 3.0)) * rng.randint(1, 99))
                if k <= 0:
                    # a bid further below mid than the price itself (the capture's far tail,
                    # reached after ~40k messages): no exchange sends a price <= 0, and
                    # bookkeeper rightly refuses one. Dropped after the size draw, so the
                    # random sequence, and every stream that never gets here, is unchanged.
                    continue
                if k not in side:
                    keys.insert(bisect_left(keys, k), k)
                side[k] = sz
                out[k] = sz
        first = last_id + 1
        last_id = first + len(b_out) + len(a_out) + rng.randint(0, 3)
        ev_ms += 100
        msg = {
            "stream": "btcusdt@depth@100ms",
            "data": {
                "e": "depthUpdate", "E": ev_ms, "s": SYMBOL, "U": first, "u": last_id,
                "b": [[_fmt(k * TICK), s] for k, s in b_out.items()],
                "a": [[_fmt(k * TICK), s] for k, s in a_out.items()],
            },
        }
        frames.append(orjson.dumps(msg))
    return body, frames, 50_000_000_000


# --------------------------------------------------------------------------- harnesses
class OursHarness:
    """bytes -> [session.apply_frame_fast, else] decoder.decode() -> BookSession.on_delta."""

    def __init__(self) -> None:
        from bookkeeper.adapters import get_adapter
        from bookkeeper.events import BookDelta
        from bookkeeper.session import BookSession

        self.adapter = get_adapter("binance")
        #: the fused steady-state path (``BookSession.apply_frame_fast``): C, or without the C
        #: accelerator its pure-Python twin (``adapters/binance/_purefast.py``)
        self.fused = import_module("bookkeeper.adapters.binance.parse").fused_depth
        self.BookSession = BookSession
        self.BookDelta = BookDelta

    def new_session(self, snapshot_body: bytes, first_frame: bytes):
        session = self.BookSession(SYMBOL, self.adapter.capabilities)
        decoder = self.adapter.new_decoder()
        for ev in decoder.decode(first_frame, 0):
            session.on_delta(ev)  # buffered; asks for the REST snapshot (epoch 1)
        snap = self.adapter.parse_rest_snapshot(snapshot_body, symbol=SYMBOL)
        session.on_snapshot(snap, epoch=1)
        assert session.state.name == "SYNCED", session.state
        return session, decoder

    def feeder(self, session, decoder, read_top: int = 0, fused: bool = True) -> Callable[[list[bytes]], None]:
        decode = decoder.decode
        on_delta = session.on_delta
        BookDelta = self.BookDelta
        book = session.book
        top = book.top
        fz = self.fused if fused else None

        if fz is not None:
            # The driver's steady state: the fused path (decode + APPLY check + apply, no
            # BookDelta) first; whenever it declines, the normal path decides.
            fast = session.apply_frame_fast

            def run(frames: list[bytes]) -> None:
                for frame in frames:
                    if not fast(frame, fz):
                        for ev in decode(frame, 0):
                            if type(ev) is BookDelta:
                                if on_delta(ev):
                                    raise AssertionError("unexpected actions")
                    if read_top:
                        top(read_top)
            return run
        if read_top:
            def run(frames: list[bytes]) -> None:
                for frame in frames:
                    for ev in decode(frame, 0):
                        if type(ev) is BookDelta:
                            if on_delta(ev):
                                raise AssertionError("unexpected actions")
                    top(read_top)
        else:
            def run(frames: list[bytes]) -> None:
                for frame in frames:
                    for ev in decode(frame, 0):
                        if type(ev) is BookDelta:
                            if on_delta(ev):
                                raise AssertionError("unexpected actions")
        return run


class _StubClient:
    """Just what ccxt's handlers touch: ``url`` (spot detection), ``futures``,
    ``subscriptions``, and the real ``Client.resolve``/``reject``."""

    def __init__(self) -> None:
        from ccxt.async_support.base.ws.client import Client

        self.url = "wss://stream.binance.com:9443/stream?streams=btcusdt@depth@100ms"
        self.futures: dict = {}
        self.subscriptions: dict = {}
        self.rejections: dict = {}
        self.verbose = False
        self.resolve = Client.resolve.__get__(self)
        self.reject = Client.reject.__get__(self)


class CcxtHarness:
    """ccxt.pro binance, exactly its per-message path, no network.

    ``loads`` is the parser ccxt's own ws ``Client.receive`` uses (orjson when importable,
    which it is here, else ``json``); ``handle_order_book`` is the handler its
    ``handle_message`` dispatches ``depthUpdate`` to (we call it on the ``data`` object, i.e.
    we skip ccxt's generic ``handle_message`` dispatch, which only adds cost to ccxt's side).
    """

    def __init__(self) -> None:
        import ccxt
        import ccxt.pro
        from ccxt.async_support.base.ws import client as ccxt_ws_client

        self.version = ccxt.__version__
        self.loads = ccxt_ws_client.json_parser.loads
        self.parser_name = ccxt_ws_client.json_parser.__name__
        ex = ccxt.pro.binance()
        ex.set_markets([{
            "id": SYMBOL, "symbol": CCXT_SYMBOL, "base": "BTC", "quote": "USDT", "baseId": "BTC",
            "quoteId": "USDT", "type": "spot", "spot": True, "swap": False, "future": False,
            "option": False, "contract": False, "linear": None, "inverse": None, "active": True,
            "precision": {"price": 0.01, "amount": 0.00001}, "limits": {},
        }])
        self.ex = ex
        self.client = _StubClient()

    def new_book(self, snapshot_body: bytes, first_frame: bytes):
        """What ``handle_order_book_subscription`` + ``fetch_order_book_snapshot`` leave behind:
        ``order_book({}, 1000)`` reset from the parsed REST body, then the first delta."""
        ex = self.ex
        ob = ex.order_book({}, 1000)
        ex.orderbooks[CCXT_SYMBOL] = ob
        body = self.loads(snapshot_body)
        snap = ex.parse_order_book(body, CCXT_SYMBOL, ex.safe_integer(body, "T"))
        snap["nonce"] = ex.safe_integer_2(body, "lastUpdateId", "u")
        ob.reset(snap)
        msg = self.loads(first_frame)
        ex.handle_message(self.client, msg)
        assert ob["nonce"] == msg["data"]["u"], "ccxt did not apply the first delta"
        return ob

    def feeder(self, ob, read_top: int = 0, full_dispatch: bool = False) -> Callable[[list[bytes]], None]:
        loads = self.loads
        client = self.client
        handle = self.ex.handle_message if full_dispatch else self.ex.handle_order_book

        if read_top:
            n = read_top

            def run(frames: list[bytes]) -> None:
                for frame in frames:
                    msg = loads(frame)
                    handle(client, msg if full_dispatch else msg["data"])
                    # what watch_order_book hands the user (orderbook.limit()), then its top n
                    ob.limit()
                    ob["bids"][:n]
                    ob["asks"][:n]
        else:
            def run(frames: list[bytes]) -> None:
                for frame in frames:
                    msg = loads(frame)
                    handle(client, msg if full_dispatch else msg["data"])
        return run


# --------------------------------------------------------------------------- timing
def timed(fn: Callable[[], object]) -> int:
    gc.collect()
    t0 = time.perf_counter_ns()
    fn()
    return time.perf_counter_ns() - t0


def accelerator_note() -> str:
    """Which L2Book path runs: the optional C accelerator or pure Python."""
    import bookkeeper.book as book_mod

    if book_mod._sp is not None:
        from bookkeeper.adapters.binance import parse

        fd = "on" if parse.fused_depth is not None else "NOT built (msgspec decode, no fused path)"
        return f"L2Book path: C accelerator ({Path(book_mod._sp.__file__).name}); Binance C decoder {fd}"
    from bookkeeper._accel import ENV_VAR, PURE_PYTHON

    why = f"{ENV_VAR}=1" if PURE_PYTHON else "not built"
    return f"L2Book path: pure Python ({why}); Binance fused path: the pure-Python twin (_purefast.py)"


def machine_note() -> str:
    import platform

    return (f"python {sys.version.split()[0]} on {platform.machine()}, {os.cpu_count()} cores "
            f"(shared with other jobs: absolute numbers are noisy, compare ratios); {accelerator_note()}")
