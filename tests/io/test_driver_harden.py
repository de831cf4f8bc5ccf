"""[harden] Every way the driver could die, each pinned: the feed keeps ingesting after the
bad thing (the book is SYNCED again and equals the truth), or, when it truly cannot, no book
stays SYNCED and the failure re-raises from the feed's awaitables.

Real sockets on 127.0.0.1 (``FakeBinance``) or an in-memory scripted transport, fake clock
and fake sleep; nothing sleeps to synchronise (tests await ``Probe`` conditions).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from bookkeeper.adapters import get_adapter
from io_support import (
    AutoSleep,
    FakeBinance,
    FakeRest,
    NotifyingList,
    Probe,
    ScriptedTransport,
    okx_books,
)
from test_driver import BTC, Rig, config, record

from bookkeeper.actions import SyncState
from bookkeeper.errors import InvalidState, UsageError
from bookkeeper.events import BookSnapshot
from bookkeeper.io.feed import Feed
from bookkeeper.io.metrics import FeedMetrics
from bookkeeper.io.records import DisconnectRecord, RecordWriter
from bookkeeper.io.stream import FailureSite, StreamDriver
from bookkeeper.io.ws import Frame, WebsocketsTransport
from bookkeeper.session import BookSession
from bookkeeper.testing.clock import FakeClock

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def probe() -> Probe:
    return Probe()


# ---------------------------------------------------------------------------- helpers
class _BadDecoderBinance:
    """The Binance adapter, except that its decoder raises ``exc_type`` (an untyped error,
    as 13 of 14 decoders did on mutated frames) on any frame holding ``"boom"``."""

    def __init__(self, exc_type: type[BaseException]) -> None:
        self._inner = get_adapter("binance")
        self._exc_type = exc_type
        self.name = self._inner.name
        self.capabilities = self._inner.capabilities

    def __getattr__(self, item: str) -> Any:
        return getattr(self._inner, item)

    def new_decoder(self) -> Any:
        inner = self._inner.new_decoder()
        exc_type = self._exc_type

        class _Decoder:
            def decode(self, data: str | bytes, ts_recv_ns: int) -> Any:
                if (b"boom" if isinstance(data, bytes) else "boom") in data:
                    raise exc_type("decoder bug on a mutated frame")
                return inner.decode(data, ts_recv_ns)

        return _Decoder()

    def ws_url(self, base: str, symbols: Any) -> str:
        return self._inner.ws_url(base, symbols)

    def subscribe_messages(self, symbols: Any, depth: int | None = None) -> list[str]:
        return self._inner.subscribe_messages(symbols, depth)

    def unsubscribe_messages(self, symbols: Any) -> list[str]:
        return self._inner.unsubscribe_messages(symbols)

    def ping_message(self) -> str | None:
        return self._inner.ping_message()


class _FlakySession(BookSession):
    """A session that raises once, on the delta ending at ``bad_seq``, from ``handle`` or
    from the fused fast path (a bug in the core must not kill the driver)."""

    def __init__(self, symbol: str, *, bad_seq: int, where: str) -> None:
        super().__init__(symbol, get_adapter("binance").capabilities)
        self.bad_seq = bad_seq
        self.where = where
        self.raised = 0

    def handle(self, event: object) -> list[Any]:
        if self.where == "handle" and not self.raised and getattr(event, "last_seq", None) == self.bad_seq:
            self.raised += 1
            raise ZeroDivisionError("session bug")
        return super().handle(event)

    def apply_frame_fast(self, frame: bytes, fused: Callable[..., object]) -> bool:
        if self.where == "handle":
            return False  # every delta through handle()
        if not self.raised and orjson.loads(frame)["data"]["u"] == self.bad_seq:
            self.raised += 1
            raise IndexError("fused path bug")
        return super().apply_frame_fast(frame, fused)


class _DriverRig:
    """A StreamDriver (no Feed) over FakeBinance with a given adapter or sessions."""

    def __init__(self, server: FakeBinance, probe: Probe, *, adapter: Any = None,
                 sessions: dict[str, BookSession] | None = None) -> None:
        self.server = server
        self.probe = probe
        self.clock = FakeClock()
        self.records: list[dict[str, Any]] = NotifyingList(probe)
        self.rest = FakeRest(server, probe)
        self.driver = StreamDriver(adapter or get_adapter("binance"), sessions or [BTC], ws_base=server.url,
                                   rest=self.rest, clock=self.clock, sleep=AutoSleep(self.clock), seed=5,
                                   config=config(), records=RecordWriter(sink=self.records),
                                   on_state=probe.on_state, on_update=probe.on_update)
        self.task: asyncio.Task[None] | None = None

    async def sync(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.driver.run())
        await self.probe.until(lambda: len(self.server.received) >= 1, "subscribed")
        await self.server.push(BTC)
        await self.caught_up()

    async def caught_up(self) -> None:
        s = self.driver.sessions[BTC]
        await self.probe.until(lambda: s.is_synced and s.last_seq == self.server.seq[BTC], "caught up")

    def assert_book_is_truth(self) -> None:
        s = self.driver.sessions[BTC]
        assert s.is_synced
        assert s.book.equals(self.server.bids[BTC].items(), self.server.asks[BTC].items())

    async def close(self) -> None:
        await self.driver.close()
        assert self.task is not None and self.task.done() and self.task.exception() is None


# ---------------------------------------------------------------------------- decoder
@pytest.mark.parametrize("exc_type", [TypeError, RecursionError, OverflowError])
async def test_decoder_raising_untyped_error_drops_connection_then_book_resumes(
        probe: Probe, exc_type: type[BaseException]) -> None:
    async with FakeBinance(probe) as server:
        rig = _DriverRig(server, probe, adapter=_BadDecoderBinance(exc_type))
        await rig.sync()
        await server.current.send('{"boom": [[[[1]]]]}')
        # no symbol is known: the connection is no longer trusted and is dropped
        await probe.until(lambda: len(server.conns) == 2 and len(server.received) >= 2, "reconnected")
        assert rig.driver.errors[FailureSite.FRAME] == 1
        await server.push(BTC, n=2)  # still chains: the resume proves nothing was missed
        await rig.caught_up()
        await probe.until(lambda: len(rig.records) == 1, "record written")
        assert rig.records[0] == record(close_code=1006, close_cause="integrity_failure")
        assert rig.rest.calls == [BTC], "a resume takes no snapshot"
        rig.assert_book_is_truth()
        await rig.close()


@pytest.mark.parametrize("where", ["handle", "fused"])
async def test_session_raising_is_invalid_input_for_that_book_which_rebuilds(probe: Probe, where: str) -> None:
    async with FakeBinance(probe) as server:
        session = _FlakySession(BTC, bad_seq=103, where=where)
        rig = _DriverRig(server, probe, sessions={BTC: session})
        await rig.sync()
        await server.push(BTC, n=1)  # 102: fine
        await rig.caught_up()
        await server.push(BTC, n=1)  # 103: the session raises on it
        await probe.until(lambda: session.raised == 1 and len(rig.rest.calls) == 2, "rebuild requested")
        await rig.caught_up()  # the REST snapshot at 103 holds what the lost delta did
        await server.push(BTC, n=2)
        await rig.caught_up()
        rig.assert_book_is_truth()
        assert rig.driver.errors[FailureSite.FRAME] == 1
        assert session.stats.invalid_inputs == 1
        assert len(server.conns) == 1, "a symbol's bad input never drops the connection"
        await rig.close()


# ---------------------------------------------------------------------------- callbacks
@pytest.mark.parametrize("which", ["on_update", "on_state"])
async def test_raising_user_callback_is_isolated_and_ingest_goes_on(probe: Probe, which: str,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    def raising(inner: Callable[[Any], None]) -> Callable[[Any], None]:
        def cb(x: Any) -> None:
            inner(x)
            raise RuntimeError(f"user bug in {which}")
        return cb

    caplog.set_level(logging.ERROR, logger="bookkeeper.io.stream")
    async with FakeBinance(probe) as server:
        rig = Rig(server, probe)
        kw: dict[str, Any] = {"on_update": probe.on_update, "on_state": probe.on_state}
        kw[which] = raising(kw[which])
        rig.feed = Feed("binance", [BTC], ws_url=server.url, rest=rig.rest, config=config(),
                        records=RecordWriter(sink=rig.records), clock=rig.clock, sleep=rig.sleep, seed=7, **kw)
        await rig.sync(BTC)
        await rig.feed.wait_synced(BTC, timeout=5)
        await server.push(BTC, n=3)
        await rig.caught_up()
        rig.assert_book_is_truth()
        site = FailureSite.ON_UPDATE if which == "on_update" else FailureSite.ON_STATE
        assert rig.feed.errors[site] >= 1
        assert rig.feed.metrics.value("bookkeeper_driver_errors_total", exchange="binance",
                                      where=site.value) == rig.feed.errors[site]
        logged = [r for r in caplog.records if f"{which} callback raised" in r.getMessage()]
        assert logged and logged[0].exc_info is not None, "logged with its traceback"
        await rig.feed.close()


# ---------------------------------------------------------------------------- records, metrics
class _RaisingWriter(RecordWriter):
    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    def write(self, record: DisconnectRecord) -> bool:
        self.attempts += 1
        raise OSError(28, "No space left on device")


@pytest.mark.parametrize("kind", ["raising_writer", "dev_full"])
async def test_records_that_cannot_be_written_never_stop_the_feed(probe: Probe, kind: str) -> None:
    if kind == "dev_full" and not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    async with FakeBinance(probe) as server:
        rig = Rig(server, probe)
        writer: RecordWriter = _RaisingWriter() if kind == "raising_writer" else RecordWriter("/dev/full")
        rig.feed = Feed("binance", [BTC], ws_url=server.url, rest=rig.rest, config=config(), records=writer,
                        clock=rig.clock, sleep=rig.sleep, seed=7, on_state=probe.on_state, on_update=probe.on_update)
        await rig.sync(BTC)
        server.abort()  # a disconnect: its record cannot be written
        await rig.reconnected(2)
        await server.push(BTC, n=2)
        await rig.caught_up()
        await probe.until(lambda: rig.feed.errors[FailureSite.RECORDS] == 1, "record failure counted")
        rig.assert_book_is_truth()
        await server.push(BTC)
        await rig.caught_up()
        await rig.feed.close()  # the local_shutdown record fails too: close still returns, no raise
        assert rig.feed.errors[FailureSite.RECORDS] == 2
        if isinstance(writer, _RaisingWriter):
            assert writer.attempts == 2
        else:
            assert writer.failed_writes == 2 and len(writer.records) == 2


class _Broken:
    """Stands for any metric: every use raises."""

    def labels(self, **kw: Any) -> Any:
        raise ValueError("metrics backend broken")


class _BrokenMetrics(FeedMetrics):
    def __init__(self) -> None:
        super().__init__()
        for name in ("disconnects", "reconnect_attempts", "reconnect_successes", "gaps", "missed_messages",
                     "snapshots", "snapshots_avoided", "book_state", "breaker_open", "driver_errors"):
            setattr(self, name, _Broken())


async def test_metrics_raising_never_stop_the_feed(probe: Probe) -> None:
    async with FakeBinance(probe) as server:
        rig = Rig(server, probe)
        rig.feed = Feed("binance", [BTC], ws_url=server.url, rest=rig.rest, config=config(),
                        records=RecordWriter(sink=rig.records), metrics=_BrokenMetrics(), clock=rig.clock,
                        sleep=rig.sleep, seed=7, on_state=probe.on_state, on_update=probe.on_update)
        await rig.sync(BTC)
        server.abort()
        await rig.reconnected(2)
        await server.push(BTC, n=3, skip=2)  # a gap: rest snapshot, gap and missed counters all raise
        await rig.caught_up()
        await probe.until(lambda: len(rig.records) == 1, "record written")
        assert rig.records[0] == record(missed_messages_count=2, plan=["rest_snapshot"])
        rig.assert_book_is_truth()
        assert rig.feed.errors[FailureSite.METRICS] >= 5
        await rig.feed.close()


# ---------------------------------------------------------------------------- REST client
@pytest.mark.parametrize("exc", [KeyError("lastUpdateId"), RuntimeError("ccxt internals"), AttributeError("x")])
async def test_rest_client_raising_anything_is_a_failed_snapshot(probe: Probe, exc: Exception) -> None:
    async with FakeBinance(probe) as server:
        rig = Rig(server, probe)
        rig.rest.fail.append(exc)  # the first snapshot request raises an untyped error
        await rig.sync(BTC)  # ... which is a failed snapshot: the next rung asks again
        assert rig.rest.calls == [BTC, BTC]
        assert rig.feed.errors[FailureSite.REST] == 1
        await server.push(BTC, n=2)
        await rig.caught_up()
        rig.assert_book_is_truth()
        await rig.feed.close()


# ---------------------------------------------------------------------------- driver death
class _DyingTransport(WebsocketsTransport):
    """A transport with a bug: once ``armed``, ``recv`` raises an untyped error."""

    armed = False

    async def recv(self) -> Frame:
        frame = await super().recv()
        if _DyingTransport.armed:
            raise RuntimeError("transport bug")
        return frame


async def test_driver_death_halts_every_book_and_reraises_everywhere(probe: Probe) -> None:
    _DyingTransport.armed = False
    async with FakeBinance(probe, symbols=(BTC, "ETHUSDT")) as server:
        rig = Rig(server, probe, (BTC, "ETHUSDT"))
        clock = rig.clock
        rig.feed = Feed("binance", [BTC, "ETHUSDT"], ws_url=server.url, rest=rig.rest, config=config(),
                        records=RecordWriter(sink=rig.records), clock=clock, sleep=rig.sleep, seed=7,
                        on_state=probe.on_state, on_update=probe.on_update,
                        transport_factory=lambda: _DyingTransport(clock=clock))
        await rig.sync(BTC)  # ETH never synced: someone waits for it
        waiter = asyncio.get_running_loop().create_task(rig.feed.wait_synced("ETHUSDT"))
        seen: list[Any] = []

        async def consume() -> None:
            async for u in rig.feed.updates():
                seen.append(u)

        consumer = asyncio.get_running_loop().create_task(consume())
        _DyingTransport.armed = True
        await server.push(BTC)
        await probe.until(lambda: rig.feed.state(BTC) is SyncState.HALTED
                          and rig.feed.state("ETHUSDT") is SyncState.HALTED, "every book halted")
        assert isinstance(rig.feed.failure, RuntimeError)
        halts = [c for c in probe.states if c.new is SyncState.HALTED]
        assert {c.symbol for c in halts} == {BTC, "ETHUSDT"}
        assert all("RuntimeError: transport bug" in c.reason for c in halts)
        with pytest.raises(InvalidState) as info:
            rig.feed.book(BTC)
        assert isinstance(info.value.__cause__, RuntimeError)
        for task in (waiter, consumer):
            with pytest.raises(InvalidState) as info:
                await task
            assert isinstance(info.value.__cause__, RuntimeError)
        with pytest.raises(InvalidState):
            await rig.feed.wait_synced(BTC)
        with pytest.raises(InvalidState) as info:
            async with asyncio.timeout(10):  # never hangs
                await rig.feed.close()
        assert isinstance(info.value.__cause__, RuntimeError)
        assert rig.feed.driver.errors[FailureSite.DRIVER] == 1
        assert rig.feed.driver.connected is False
    _DyingTransport.armed = False


# ---------------------------------------------------------------------------- defect 3 (driver part)
class _HangingRest:
    """A REST client whose answer never comes; it records the request and its cancellation."""

    def __init__(self, probe: Probe) -> None:
        self.probe = probe
        self.calls: list[str] = []
        self.cancelled = 0

    async def fetch_snapshot(self, symbol: str, *, depth: int | None = None) -> BookSnapshot:
        self.calls.append(symbol)
        self.probe.notify()
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            self.cancelled += 1
            self.probe.notify()
            raise
        raise AssertionError("unreachable")

    async def close(self) -> None:
        return None


async def test_ws_snapshot_that_syncs_the_book_cancels_the_rest_fetch_in_flight(probe: Probe) -> None:
    okx = get_adapter("okx")
    # OKX, with the REST rung first (the WS snapshot on subscribe still comes): a gap asks REST
    caps = dataclasses.replace(okx.capabilities, ws_snapshot_on_subscribe=False)
    sym = "BTC-USDT"
    session = BookSession(sym, caps)
    clock = FakeClock()
    transports: deque[ScriptedTransport] = deque()

    def factory() -> ScriptedTransport:
        t = ScriptedTransport(clock, probe)
        transports.append(t)
        return t

    rest = _HangingRest(probe)
    driver = StreamDriver(okx, {sym: session}, ws_base="ws://scripted", rest=rest, transport_factory=factory,
                          clock=clock, sleep=AutoSleep(clock), seed=1, config=config(), on_state=probe.on_state)
    task = asyncio.get_running_loop().create_task(driver.run())
    await probe.until(lambda: bool(transports) and bool(transports[0].sent), "subscribed")
    ws = transports[0]
    ws.push(okx_books("snapshot", 100, -1, [["99", "1", "0", "1"]], [["101", "1", "0", "1"]]))
    await probe.until(lambda: session.is_synced, "synced from the first WS snapshot")
    ws.push(okx_books("update", 105, 104, [["99", "5", "0", "1"]], []))  # ids 101..104 missed: gap
    await probe.until(lambda: rest.calls == [sym], "REST snapshot in flight")
    assert session.state is SyncState.AWAITING_SNAPSHOT or session.state is SyncState.RECOVERING
    # the venue's own snapshot arrives first and syncs the book; updates go on
    ws.push(okx_books("snapshot", 110, -1, [["98", "2", "0", "1"]], [["101", "3", "0", "1"]]))
    ws.push(okx_books("update", 111, 110, [["98", "4", "0", "1"]], []))
    await probe.until(lambda: session.is_synced and session.last_seq == 111, "synced at 111")
    await probe.until(lambda: rest.cancelled == 1, "the REST fetch was cancelled")
    assert session.book.equals([(98.0, 4.0)], [(101.0, 3.0)])
    assert rest.calls == [sym]
    await driver.close()
    assert task.done() and task.exception() is None


# ---------------------------------------------------------------------------- defect 7: local_shutdown plan
async def test_kraken_local_shutdown_record_has_an_empty_plan(probe: Probe) -> None:
    from bookkeeper.sim import SimExchange

    clock = FakeClock()
    records: list[dict[str, Any]] = NotifyingList(probe)
    async with SimExchange(venues=("kraken",), seed=11, paused=True) as sim:
        server = sim.servers["kraken"]
        symbols = list(server.specs)
        feed = Feed("kraken", symbols, ws_url=sim.urls("kraken")["ws_root"], rest_config=sim.ccxt_config("kraken"),
                    config=config(), records=RecordWriter(sink=records), clock=clock, sleep=AutoSleep(clock),
                    seed=1, on_state=probe.on_state, on_update=probe.on_update)
        async with feed:
            await probe.until(lambda: all(len(server.subscribers(s)) >= 1 for s in symbols), "subscribed")
            sim.push(updates=2)
            for s in symbols:
                await feed.wait_synced(s, timeout=10)
        assert [r["close_cause"] for r in records] == ["local_shutdown"]
        assert records[0]["plan"] == [], "nothing is being recovered on a local shutdown"
        assert records[0]["reconnect_success"] is False
        assert all(feed.state(s) is not SyncState.SYNCED for s in symbols)


# ---------------------------------------------------------------------------- records path up front
def test_unwritable_records_path_is_a_usage_error_at_construction(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        RecordWriter(tmp_path / "missing" / "x.jsonl")
    with pytest.raises(UsageError, match="is a directory"):
        RecordWriter(tmp_path)
    with pytest.raises(UsageError, match="does not exist"):
        Feed("binance", [BTC], ws_url="ws://127.0.0.1:9", records_path=tmp_path / "missing" / "x.jsonl")
    ok = RecordWriter(tmp_path / "x.jsonl")  # a writable path is fine (and created empty)
    assert (tmp_path / "x.jsonl").read_bytes() == b"" and ok.failed_writes == 0


def test_unwritable_records_path_without_permission_is_a_usage_error(tmp_path: Path) -> None:
    import os

    if os.geteuid() == 0:
        pytest.skip("root may write anywhere")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(UsageError, match="not writable"):
        RecordWriter(locked / "x.jsonl")


def _rec() -> DisconnectRecord:
    return DisconnectRecord(ts="t", bot_instance_id="b", exchange="x", channel="public", close_code=1006,
                            close_cause="abnormal_closure", last_message_ago_ms=None, uptime_seconds=0.0,
                            reconnect_success=True)


def test_write_failing_later_is_logged_once_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bookkeeper.io.records")
    path = tmp_path / "x.jsonl"
    sink: list[dict[str, Any]] = []
    w = RecordWriter(path, sink=sink)
    assert w.write(_rec()) is True
    path.unlink()
    path.mkdir()  # the file became unwritable (a directory now: fails even as root)
    assert w.write(_rec()) is False
    assert w.write(_rec()) is False
    assert w.failed_writes == 2 and len(sink) == 3, "the sink still gets every record"
    failures = [r for r in caplog.records if "cannot append" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info is not None
    path.rmdir()
    assert w.write(_rec()) is True  # writable again: written, and said once
    assert len(path.read_text().splitlines()) == 1
    assert any("written to" in r.getMessage() and "again" in r.getMessage() for r in caplog.records)
