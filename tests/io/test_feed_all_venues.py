"""Every registered venue runs live through :class:`~bookkeeper.io.feed.Feed`.

- Construction: every venue whose exchange is open makes a live ``Feed`` with no URL given,
  on the production root of its market (exchange-protocols.md), and without a ccxt client when
  its REST book cannot be spliced; BitMEX (closed) is refused with a message that says so.
- The live path of each venue the simulator has no dialect for, driven by a scripted transport
  that plays the venue's real capture (``fixtures/real/<venue>/``) after the feed's subscribe
  messages arrive, with the capture's REST answers served by a fake REST client: every book
  reaches SYNCED at the same ``last_seq`` as ``bookkeeper replay`` of the same frames.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from bookkeeper.adapters import VENUES, get_adapter
from io_support import SAFETY_TIMEOUT_S, ManualSleep, Probe

from bookkeeper.actions import SyncState
from bookkeeper.errors import ConnectionLost, UsageError
from bookkeeper.events import BookSnapshot, CloseReason
from bookkeeper.io.feed import Feed
from bookkeeper.io.recording import RecordKind, read_records
from bookkeeper.io.replay import replay
from bookkeeper.io.rest import CcxtRestClient, NoRestClient
from bookkeeper.io.stream import DriverConfig
from bookkeeper.io.ws import Closure, Frame
from bookkeeper.ports import LiveSpec
from bookkeeper.sim import DIALECTS
from bookkeeper.testing.clock import FakeClock

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "real"

#: The production URL each venue's live Feed dials with no ``ws_url`` given
#: (``adapter.ws_url(default root, symbols)``), as exchange-protocols.md (or, for venues it
#: does not cover, the venue's own docs) gives it. KuCoin has no fixed URL (§10.1): ``None``.
EXPECTED_URLS: dict[str, str | None] = {
    "binance": "wss://stream.binance.com:9443/stream?streams=btcusdt@depth@100ms",  # §3.1
    "binance_usdm": "wss://fstream.binance.com/public/stream?streams=btcusdt@depth@100ms",  # §0, §4.1
    "binance_coinm": "wss://dstream.binance.com/stream?streams=btcusdt@depth@100ms",
    "okx": "wss://ws.okx.com:8443/ws/v5/public",  # §5.1
    "bitget": "wss://ws.bitget.com/v2/ws/public",
    "kraken": "wss://ws.kraken.com/v2",  # §7.1
    "kraken_futures": "wss://futures.kraken.com/ws/v1",
    "deribit": "wss://www.deribit.com/ws/api/v2",  # §9.1
    "kucoin": None,  # §10.1: bullet-public answers the URL per connection
    "gateio": "wss://api.gateio.ws/ws/v4/",  # §11.1
    "gateio_futures": "wss://fx-ws.gateio.ws/v4/ws/usdt",
    "bybit": "wss://stream.bybit.com/v5/public/linear",  # §6.1 (the adapter's market: linear)
    "bybit_spot": "wss://stream.bybit.com/v5/public/spot",  # §6.1 (orderbook.full: spot)
    "coinbase": "wss://advanced-trade-ws.coinbase.com",  # §8.1
}
CLOSED = {"bitmex"}


def test_every_registered_venue_is_either_open_or_closed() -> None:
    assert set(VENUES) == set(EXPECTED_URLS) | CLOSED


@pytest.mark.parametrize("venue", sorted(EXPECTED_URLS))
async def test_feed_constructs_for_every_open_venue_with_no_url(venue: str) -> None:
    feed = Feed(venue, ["BTCUSDT"])  # not started: nothing connects
    try:
        adapter = get_adapter(venue)
        needs_rest = adapter.capabilities.rest_snapshot
        assert isinstance(adapter, LiveSpec)
        root = adapter.default_ws_url()
        dialled = adapter.ws_url(root, ["BTCUSDT"]) if root is not None else None
        assert dialled == EXPECTED_URLS[venue]
        # a venue whose REST book cannot be spliced gets no ccxt client at all
        assert isinstance(feed._rest, CcxtRestClient if needs_rest else NoRestClient), venue
        assert (adapter.rest_snapshot_call("BTCUSDT") is not None) is needs_rest
    finally:
        await feed.close()


def test_bitmex_feed_is_refused_because_the_exchange_closed() -> None:
    with pytest.raises(UsageError, match="BitMEX closed on 2026-09-23"):
        Feed("bitmex", ["XBTUSD"])


# ---------------------------------------------------------------- the scripted transport
class ScriptedTransport:
    """A :class:`~bookkeeper.io.ws.StreamTransport` that plays recorded frames once the
    feed's ``expect_subscribes`` subscribe messages have arrived, then stays open (quiet)
    until closed."""

    def __init__(self, frames: Sequence[tuple[bytes, int]], expect_subscribes: int, probe: Probe) -> None:
        self._frames = list(frames)
        self._expect = expect_subscribes
        self._probe = probe
        self.url: str | None = None
        self.sent: list[str] = []
        self._queue: asyncio.Queue[Frame | None] = asyncio.Queue()
        self._closure: Closure | None = None

    @property
    def closure(self) -> Closure | None:
        return self._closure

    @property
    def played(self) -> bool:
        return len(self.sent) >= self._expect

    async def connect(self, url: str) -> None:
        self.url = url

    async def recv(self) -> Frame:
        item = await self._queue.get()
        if item is None:
            assert self._closure is not None
            raise ConnectionLost(self._closure.detail, closure=self._closure)
        return item

    async def send(self, text: str) -> None:
        self.sent.append(text)
        if len(self.sent) == self._expect:  # subscribed: the venue starts pushing
            for data, ts in self._frames:
                self._queue.put_nowait(Frame(data, ts, ts))
        self._probe.notify()

    async def ping(self, message: str | None, on_pong: Callable[[], None]) -> None:
        return None

    def abort(self, reason: CloseReason) -> None:
        self._end(Closure(reason=reason, code=1006, detail=f"aborted ({reason})"))

    async def close(self) -> None:
        self._end(Closure(reason=CloseReason.LOCAL_SHUTDOWN, code=1000, detail="closed"))

    def _end(self, closure: Closure) -> None:
        if self._closure is None:
            self._closure = closure
            self._queue.put_nowait(None)


class CaptureRest:
    """A RestClient answering each symbol with the capture's REST snapshot of it."""

    def __init__(self, snapshots: dict[str, BookSnapshot]) -> None:
        self.snapshots = snapshots
        self.calls: list[str] = []

    async def fetch_snapshot(self, symbol: str, *, depth: int | None = None) -> BookSnapshot:
        self.calls.append(symbol)
        return self.snapshots[symbol]

    async def close(self) -> None:
        return None


#: venue -> the capture files of one session (as ``bookkeeper replay`` takes them)
CAPTURES: dict[str, tuple[str, ...]] = {
    "binance_usdm": ("binance_usdm/binance_usdm_depth100ms_4sym_2021-07-22.ws.cfcap.txt.gz",
                     "binance_usdm/binance_usdm_depth100ms_4sym_2021-07-22.rest_depth.cfcap.txt.gz"),
    "binance_coinm": ("binance_coinm/binance_coinm_btcusd_perp_2024-08-08.hbt.txt.gz",),
    "bitget": ("bitget/bitget_spot_v1_books_8inst_2022-04-07.cfcap.txt.gz",),
    "kraken_futures": ("kraken_futures/kraken_futures_book_2021-07-22.cfcap.txt.gz",),
    "deribit": ("deribit/deribit_book_raw_options_2021-07-22.cfcap.txt.gz",),
    "kucoin": ("kucoin/kucoin_spot_level2_2021-04-25.ws.cfcap.txt.gz",
               "kucoin/kucoin_spot_level2_2021-04-25.rest_level2.cfcap.txt.gz"),
    "gateio": ("gateio/gateio_spot_order_book_update_2021-04-22.ws.cfcap.txt.gz",
               "gateio/gateio_spot_order_book_update_2021-04-22.rest_order_book.cfcap.txt.gz"),
    "gateio_futures": ("gateio/gateio_usdt_futures_order_book_update_2023-05-24.ws.cfcap.txt.gz",
                       "gateio/gateio_usdt_futures_order_book_update_2023-05-24.rest_order_book.cfcap.txt.gz"),
    "bybit": ("bybit/bybit_v5_linear_orderbook500_XRPUSDT_2024-12-01.jsonl.gz",),
    "coinbase": ("coinbase/coinbase_pro_legacy_level2_2021-04-17.cfcap.txt.gz",),
}
#: frames played per venue (a few hundred keeps each run fast); REST records are all kept
MAX_FRAMES = 400


def test_every_venue_without_a_simulator_dialect_has_a_capture_test() -> None:
    # (a venue may keep its capture test after it gains a dialect)
    assert set(CAPTURES) >= set(EXPECTED_URLS) - set(DIALECTS)


def _prefix(venue: str, tmp: Path) -> list[Path]:
    """The first lines of each capture file (same format, gzip), so that ``replay`` and the
    feed see exactly the same frames; every REST line is kept."""
    out = []
    for rel in CAPTURES[venue]:
        src = REAL / rel
        lines: list[bytes] = []
        frames = 0
        with gzip.open(src, "rb") as f:
            for line in f:
                is_rest = b" -> " in line[:300] or b"lastUpdateId" in line[:400]
                if frames >= MAX_FRAMES and not is_rest:
                    continue
                lines.append(line)
                frames += not is_rest
        dst = tmp / src.name
        dst.write_bytes(gzip.compress(b"".join(lines)))
        out.append(dst)
    return out


@pytest.mark.parametrize("venue", sorted(CAPTURES))
async def test_live_path_replays_the_real_capture_to_the_same_books(venue: str, tmp_path: Path) -> None:
    adapter = get_adapter(venue)
    files = _prefix(venue, tmp_path)
    report = replay(adapter, files)
    caps = adapter.capabilities
    # a REST-bridged venue asks for a snapshot when a symbol's first delta arrives: symbols
    # whose prefix holds only a REST answer (replay syncs them from it) get no delta to ask with
    needs_delta = caps.rest_snapshot and not caps.ws_snapshot_on_subscribe
    synced = {i.symbol: i.last_seq for i in report.instruments
              if i.state == SyncState.SYNCED.value and (i.stats["deltas_applied"] > 0 or not needs_delta)}
    assert synced, f"{venue}: replay synced nothing: {report.as_json()}"

    frames: list[tuple[bytes, int]] = []
    rest: dict[str, BookSnapshot] = {}
    for rec in read_records(files):
        if rec.kind is RecordKind.RECV:
            frames.append((rec.data, rec.ts_recv_ns))
        elif rec.kind is RecordKind.REST:
            snap = adapter.parse_rest_snapshot(rec.data, url=rec.url, ts_recv_ns=rec.ts_recv_ns)
            # the first answer, as replay feeds it; one naming no symbol is the only symbol's
            rest.setdefault(snap.symbol or next(iter(synced)), snap)

    probe = Probe()
    clock = FakeClock()
    sleep = ManualSleep(clock, probe)  # nothing sleeps past the test: keepalive stays quiet
    symbols = sorted(synced)
    assert isinstance(adapter, LiveSpec)
    expect = len(adapter.subscribe_messages(symbols, None))
    transports: list[ScriptedTransport] = []

    def factory() -> ScriptedTransport:
        transports.append(ScriptedTransport(frames, expect, probe))
        return transports[-1]

    feed = Feed(venue, symbols, ws_url="ws://capture.invalid", rest=CaptureRest(rest), transport_factory=factory,
                clock=clock, sleep=sleep, seed=1, config=DriverConfig(startup_jitter_s=0.0),
                on_state=probe.on_state, on_update=probe.on_update)
    async with feed:
        await probe.until(lambda: bool(transports) and transports[0].played, f"{venue}: subscribed")
        # the driver consumed every frame once the scripted queue is drained and it waits again
        async with asyncio.timeout(SAFETY_TIMEOUT_S):
            while not transports[0]._queue.empty():
                await asyncio.sleep(0)
            for _ in range(10):
                await asyncio.sleep(0)
        got = {s: (feed.state(s), feed.last_seq(s)) for s in symbols}
        want = {s: (SyncState.SYNCED, synced[s]) for s in symbols}
        assert got == want, f"{venue}: live {got} != replay {want}"
        for s in symbols:
            bids, asks = feed.book(s).top(1)  # may be empty: an illiquid option (Deribit)
            assert not (bids and asks) or bids[0][0] < asks[0][0], f"{venue} {s}: crossed book"
    assert len(transports) == 1, f"{venue}: the feed reconnected"


async def test_kucoin_feed_asks_the_bullet_for_its_url_before_each_connection() -> None:
    probe = Probe()
    transports: list[ScriptedTransport] = []

    def factory() -> ScriptedTransport:
        transports.append(ScriptedTransport([], 10**6, probe))
        return transports[-1]

    bullet = {"code": "200000", "data": {"token": "T0K", "instanceServers": [
        {"endpoint": "wss://ws-api-spot.kucoin.com/", "pingInterval": 18000, "pingTimeout": 10000}]}}

    class FakeKucoin:
        calls = 0

        async def public_post_bullet_public(self, params: dict[str, Any]) -> dict[str, Any]:
            FakeKucoin.calls += 1
            return bullet

        async def close(self) -> None:
            return None

    clock = FakeClock()
    feed = Feed("kucoin", ["BTC-USDT"], rest=CaptureRest({}), transport_factory=factory, clock=clock,
                sleep=ManualSleep(clock, probe), config=DriverConfig(startup_jitter_s=0.0))
    feed._bootstrap_rest._exchanges["kucoin"] = FakeKucoin()  # type: ignore[union-attr]
    async with feed:
        await probe.until(lambda: bool(transports) and bool(transports[0].sent), "subscribed")
    assert FakeKucoin.calls == 1
    url = transports[0].url
    assert url is not None and url.startswith("wss://ws-api-spot.kucoin.com/?token=T0K&connectId=")
