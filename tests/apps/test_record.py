"""`bookkeeper record`: a session recorded from the simulator (faults included) replays with
`bookkeeper replay` to the simulator's own final books; credentials are never written."""

from __future__ import annotations

import asyncio
import io
import selectors
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from bookkeeper.adapters import get_adapter

from bookkeeper import cli
from bookkeeper.actions import SyncState
from bookkeeper.events import CloseReason
from bookkeeper.io import replay as replay_mod
from bookkeeper.io.record import (
    REDACTED,
    Recorder,
    RecordingSink,
    RecordingTransport,
    scrub_frame,
    scrub_url,
)
from bookkeeper.io.recording import RecordingWriter, RecordKind, read_file
from bookkeeper.io.stream import DriverConfig
from bookkeeper.io.ws import Closure, Frame
from bookkeeper.policy import BackoffPolicy
from bookkeeper.sim import DIALECTS, SimExchange

pytestmark = pytest.mark.timeout(90)

#: the depth subscribed (and compared) on venues that truncate their book to it
_DEPTH = 10


def _depth(venue: str) -> int | None:
    return _DEPTH if get_adapter(venue).capabilities.truncate_to_depth else None


class _FakeTransport:
    """A transport that answers nothing: only what is sent matters here."""

    closure: Closure | None = None

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def connect(self, url: str) -> None:
        pass

    async def recv(self) -> Frame:
        return Frame('{"ok":true}', 7, 7)

    async def send(self, text: str) -> None:
        self.sent.append(text)

    async def ping(self, message: str | None, on_pong: Callable[[], None]) -> None:
        pass

    def abort(self, reason: CloseReason) -> None:
        pass

    async def close(self) -> None:
        pass


def _lines(buf: io.BytesIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in buf.getvalue().splitlines()[1:]]


async def test_sent_frames_are_written_scrubbed_and_sent_unchanged() -> None:
    buf = io.BytesIO()
    sink = RecordingSink(RecordingWriter(buf, venue="okx"))
    inner = _FakeTransport()
    t = RecordingTransport(inner, sink)
    login = '{"op":"login","args":[{"apiKey":"AK-FAKE-123","passphrase":"PP-FAKE","timestamp":"1","sign":"SIG-FAKE"}]}'
    bybit = '{"op":"auth","args":["BYBIT-KEY-FAKE",1700000000000,"BYBIT-SIG-FAKE"]}'
    await t.connect("ws://127.0.0.1:1/ws?listenKey=LK-FAKE")
    await t.send(login)
    await t.send(bybit)
    await t.send('{"X-MBX-APIKEY":"MBX-FAKE","secret":"S-FAKE","method":"SUBSCRIBE"}')
    await t.ping("ping apiKey=TEXT-FAKE", lambda: None)
    assert (await t.recv()).data == '{"ok":true}'
    await t.close()
    assert inner.sent[0] == login  # the wire gets the real frame; only the file is scrubbed
    written = buf.getvalue().decode()
    for secret in ("AK-FAKE", "PP-FAKE", "SIG-FAKE", "BYBIT-KEY", "BYBIT-SIG", "MBX-FAKE", "S-FAKE", "TEXT-FAKE",
                   "LK-FAKE"):
        assert secret not in written, (secret, written)
    recs = _lines(buf)
    assert [r["dir"] for r in recs] == ["open", "out", "out", "out", "out", "in", "close"]
    assert orjson.loads(recs[1]["data"]) == {"op": "login", "args": [
        {"apiKey": REDACTED, "passphrase": REDACTED, "timestamp": "1", "sign": REDACTED}]}
    assert orjson.loads(recs[2]["data"]) == {"op": "auth", "args": [REDACTED, REDACTED, REDACTED]}
    assert recs[4]["data"] == f"ping apiKey={REDACTED}"
    assert recs[0]["url"] == "ws://127.0.0.1:1/ws?listenKey=%3Credacted%3E"
    assert sink.counts == {RecordKind.OPEN: 1, RecordKind.SENT: 4, RecordKind.RECV: 1, RecordKind.CLOSE: 1}


def test_frames_without_credentials_are_kept_byte_for_byte() -> None:
    sub = '{"op": "subscribe", "args": [{"channel": "books", "instId": "BTC-USDT"}]}'
    assert scrub_frame(sub) is sub
    assert scrub_frame("ping") == "ping"
    assert scrub_url("http://x/api/v3/depth?symbol=BTCUSDT&limit=1000") == "http://x/api/v3/depth?symbol=BTCUSDT&limit=1000"


class _Waker:
    """Wakes a waiter on every book update and state change of the feed (no polling)."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def __call__(self, _: object) -> None:
        self.event.set()

    async def until(self, cond: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    self.event.clear()
                    if cond():
                        return
                    await self.event.wait()
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}") from None


def _resyncs_from_rest(venue: str) -> bool:
    caps = get_adapter(venue).capabilities
    return caps.rest_snapshot and not caps.ws_snapshot_on_subscribe


@pytest.mark.parametrize("missed", [False, True], ids=["resumed", "missed"])
@pytest.mark.parametrize("venue", list(DIALECTS))
async def test_recorded_session_with_faults_replays_to_the_simulators_books(
        venue: str, missed: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest) -> None:
    out = tmp_path / f"{venue}.bkrec.jsonl"
    depth = _depth(venue)
    waker = _Waker()
    config = DriverConfig(depth=depth, startup_jitter_s=0.0, resync_timeout_s=0.5,
                          backoff=BackoffPolicy(base_s=0.05, cap_s=0.2, first_delay_s=0.0))
    async with SimExchange(venues=(venue,), seed=11, push_interval_s=0.02) as sim:
        symbols = list(sim.servers[venue].specs)

        def truth(sym: str) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
            return sim.engine.book(sym, depth=depth)

        rec = Recorder(venue, symbols, out, ws_url=sim.urls(venue)["ws_root"], rest_config=sim.ccxt_config(venue),
                       config=config, seed=3, on_update=waker, on_state=waker)
        feed = rec.feed
        try:
            await rec.start()
            for sym in symbols:
                await feed.wait_synced(sym, timeout=15)
            # faults: duplicated frames, then a hard abort (the recording holds a reconnect)
            with sim.duplicate_frames(3, venue=venue):
                await sim.wait_for(lambda: sim.faults_injected["duplicate"] >= 3)
            if missed:
                # new connections are refused until the market has moved on: the client misses
                # updates, so the recording also holds a resync
                await sim.inject("conn_limit", venue, max=0)
                assert await sim.inject("abort", venue) == 1
                moved = {s: sim.engine.seq(s) + 5 for s in symbols}
                await sim.wait_for(lambda: all(sim.engine.seq(s) >= q for s, q in moved.items()))
                await sim.inject("conn_limit", venue, max=None)
            else:
                # a quiet market while the client is away (nothing missed): it resumes
                sim.pause()
                assert await sim.inject("abort", venue) == 1
                await waker.until(lambda: rec.sink.counts[RecordKind.OPEN] >= 2, "the reconnect")
                for sym in symbols:
                    await sim.wait_subscribed(venue, sym)
                sim.resume()
            await waker.until(lambda: rec.sink.counts[RecordKind.OPEN] >= 2
                              and all(feed.state(s) is SyncState.SYNCED for s in symbols), "the resync")
            sim.pause()
            await sim.wait_sent(venue)
            await waker.until(lambda: all(feed.state(s) is SyncState.SYNCED and feed.book(s).equals(*truth(s))
                                          for s in symbols), "the feed to catch up with the paused market")
            live_seq = {s: feed.last_seq(s) for s in symbols}
        finally:
            await rec.close()
        assert sim.faults_injected["abort"] == 1 and sim.faults_injected["duplicate"] == 3
        final = {s: truth(s) for s in symbols}

    kinds = [r.kind for r in read_file(out)]
    assert kinds.count(RecordKind.OPEN) >= 2 and kinds.count(RecordKind.CLOSE) >= 2, kinds.count(RecordKind.OPEN)
    assert RecordKind.SENT in kinds and kinds[0] is RecordKind.OPEN
    if _resyncs_from_rest(venue):
        assert kinds.count(RecordKind.REST) >= len(symbols)  # the first sync of each book

    sessions: dict[str, Any] = {}
    real = replay_mod.BookSession

    def capture(symbol: str, caps: Any) -> Any:
        sessions[symbol] = s = real(symbol, caps)
        return s

    monkeypatch.setattr(replay_mod, "BookSession", capture)
    code = cli.main(["replay", "--venue", venue, str(out), "--json"])
    report = orjson.loads(capsys.readouterr().out)
    for sym in symbols:  # the final books first: they match even where the verdict fails
        assert sessions[sym].book.equals(*final[sym]), (venue, sym, sessions[sym].book.top(3), final[sym])
    assert code == 0, report["problems"]
    assert report["reconnects"] >= 1
    for sym in symbols:
        assert report["per_instrument"][sym]["last_seq"] == live_seq[sym]
        assert sessions[sym].is_synced


def test_record_cli_against_the_embedded_simulator(tmp_path: Path) -> None:
    out = tmp_path / "s.bkrec.jsonl"
    proc = subprocess.run([sys.executable, "-m", "bookkeeper.cli", "record", "--venue", "okx", "BTC-USDT", "--sim",
                           "--out", str(out), "--duration", "1.5"], check=False, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "frames recorded" in proc.stderr and str(out) in proc.stderr
    assert proc.stdout == ""
    replayed = subprocess.run([sys.executable, "-m", "bookkeeper.cli", "replay", "--venue", "okx", str(out), "--json"],
                              check=False, capture_output=True, text=True, timeout=60)
    assert replayed.returncode == 0, replayed.stdout
    assert orjson.loads(replayed.stdout)["per_instrument"]["BTC-USDT"]["state"] == "synced"


def test_record_cli_ctrl_c_closes_cleanly(tmp_path: Path) -> None:
    out = tmp_path / "c.bkrec.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "bookkeeper.cli", "record", "--venue", "kraken", "BTC/USD", "--sim",
                             "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        sel = selectors.DefaultSelector()
        sel.register(proc.stderr, selectors.EVENT_READ)
        assert sel.select(30), "no progress on stderr"
        assert "frames recorded" in proc.stderr.readline()  # recording is under way
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    rest = proc.stderr.read()
    assert proc.returncode == 0, rest
    assert f"-> {out}" in rest and "Traceback" not in rest
    kinds = [r.kind for r in read_file(out)]
    assert kinds[0] is RecordKind.OPEN and kinds[-1] is RecordKind.CLOSE  # the close made it into the file


@pytest.mark.parametrize(("args", "needle"), [
    (["--venue", "nope", "X", "--out", "f"], "argument --venue: invalid choice"),
    (["--venue", "okx", "BTC-USDT"], "the following arguments are required: --out"),
    (["--venue", "okx", "BTC-USDT", "--out", "f", "--sim", "--ws-url", "ws://x"], "not allowed with argument --sim"),
    (["--venue", "okx", "BTC-USDT", "--out", "f", "--sim", "--rest-url", "http://x"], "not allowed with argument --sim"),
    # a venue the simulator has no dialect for
    (["--venue", "deribit", "BTC-PERPETUAL", "--out", "f", "--sim"], "the simulator speaks"),
    (["--venue", "okx", "BTC-USDT", "--out", "f", "--duration", "0"], "argument --duration: must be > 0"),
    (["--venue", "okx", "BTC-USDT", "--out", "/nonexistent-dir/f", "--sim"], "argument --out: cannot write"),
])
def test_record_usage_errors_exit_2(args: list[str], needle: str) -> None:
    assert args[1] != "deribit" or "deribit" not in DIALECTS, "pick a venue without a dialect"
    proc = subprocess.run([sys.executable, "-m", "bookkeeper.cli", "record", *args], check=False, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
