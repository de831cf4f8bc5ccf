"""Boundaries: close classification (websockets -> CloseReason), ccxt error mapping, the
CcxtRestClient over real ccxt against a local HTTP server, and disconnect records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ccxt
import pytest
from aiohttp import web
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Close
from websockets.http11 import Response

from bookkeeper.adapters import get_adapter
from bookkeeper.errors import ConnectionLost, ExchangeRejected, RateLimited, RequestTimeout
from bookkeeper.events import CloseReason, SnapshotSource
from bookkeeper.io.records import RECORD_KEYS, DisconnectRecord, RecordWriter, iso_utc
from bookkeeper.io.rest import CcxtRestClient, map_ccxt_errors, rest_config_for
from bookkeeper.io.ws import Closure, classify_close, closure_error


def _status(code: int, headers: dict[str, str] | None = None) -> InvalidStatus:
    return InvalidStatus(Response(code, "x", Headers(headers or {}), b""))


@pytest.mark.parametrize(("exc", "local", "expected"), [
    (ConnectionClosed(None, None), None, (CloseReason.ABNORMAL_CLOSURE, 1006, None)),
    (ConnectionClosed(Close(1000, ""), Close(1000, ""), True), None, (CloseReason.SERVER_CLOSE, 1000, None)),
    (ConnectionClosed(Close(1001, "going away"), None), None, (CloseReason.SERVER_CLOSE, 1001, None)),
    (ConnectionClosed(None, Close(1011, "keepalive ping timeout")), None, (CloseReason.PING_TIMEOUT, 1006, None)),
    (ConnectionClosed(None, None), CloseReason.PING_TIMEOUT, (CloseReason.PING_TIMEOUT, 1006, None)),
    (ConnectionClosed(None, None), CloseReason.IDLE_TIMEOUT, (CloseReason.IDLE_TIMEOUT, 1006, None)),
    (ConnectionClosed(None, Close(1000, "")), CloseReason.LOCAL_SHUTDOWN, (CloseReason.LOCAL_SHUTDOWN, 1000, None)),
    (ConnectionRefusedError(111, "refused"), None, (CloseReason.TCP_ERROR, None, None)),
    (ConnectionResetError(104, "reset"), None, (CloseReason.TCP_ERROR, None, None)),
    (TimeoutError(), None, (CloseReason.TCP_ERROR, None, None)),
    (_status(429, {"Retry-After": "7"}), None, (CloseReason.RATE_LIMITED, 429, 7.0)),
    (_status(418, {"Retry-After": "120"}), None, (CloseReason.RATE_LIMITED, 418, 120.0)),
    (_status(429), None, (CloseReason.RATE_LIMITED, 429, None)),
    (_status(401), None, (CloseReason.AUTH_FAILED, 401, None)),
    (_status(403), None, (CloseReason.AUTH_FAILED, 403, None)),
    (_status(503), None, (CloseReason.TCP_ERROR, 503, None)),
])
def test_classify_close_table(exc: BaseException, local: CloseReason | None, expected: tuple) -> None:
    c = classify_close(exc, local_reason=local)
    assert (c.reason, c.code, c.retry_after_s) == expected


def test_closure_error_types_carry_the_closure() -> None:
    rl = Closure(reason=CloseReason.RATE_LIMITED, code=429, retry_after_s=3.0)
    err = closure_error(rl)
    assert isinstance(err, RateLimited) and err.retry_after_s == 3.0 and err.closure is rl
    assert isinstance(closure_error(Closure(reason=CloseReason.AUTH_FAILED, code=401)), ExchangeRejected)
    assert isinstance(closure_error(Closure(reason=CloseReason.TCP_ERROR, code=None)), ConnectionLost)


@pytest.mark.parametrize(("raised", "expected"), [
    (ccxt.RateLimitExceeded("429"), RateLimited),
    (ccxt.DDoSProtection("418"), RateLimited),
    (ccxt.RequestTimeout("slow"), RequestTimeout),
    (ccxt.NetworkError("reset"), ConnectionLost),
    (ccxt.ExchangeNotAvailable("down"), ConnectionLost),
    (ccxt.AuthenticationError("bad key"), ExchangeRejected),
    (ccxt.BadSymbol("nope"), ExchangeRejected),
])
def test_map_ccxt_errors(raised: Exception, expected: type) -> None:
    with pytest.raises(expected) as info:
        with map_ccxt_errors(venue="binance", symbol="BTCUSDT"):
            raise raised
    assert info.value.__cause__ is raised
    assert info.value.symbol == "BTCUSDT"


class _DepthServer:
    """A local HTTP server answering Binance's ``GET /api/v3/depth`` (what ccxt calls)."""

    def __init__(self) -> None:
        self.queries: list[dict[str, str]] = []
        self.statuses: list[tuple[int, dict[str, str]]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def depth(self, request: web.Request) -> web.Response:
        self.queries.append(dict(request.query))
        if self.statuses:
            status, headers = self.statuses.pop(0)
            return web.json_response({"code": -1003, "msg": "Too many requests"}, status=status, headers=headers)
        return web.json_response({"lastUpdateId": 4242, "bids": [["100.5", "2.0"]], "asks": [["101.0", "1.5"]]})

    async def __aenter__(self) -> _DepthServer:
        app = web.Application()
        app.router.add_get("/api/v3/depth", self.depth)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


async def test_ccxt_rest_client_keeps_the_venue_sequence_id() -> None:
    async with _DepthServer() as server:
        rest = CcxtRestClient(get_adapter("binance"), config=rest_config_for("binance", server.url))
        try:
            snap = await rest.fetch_snapshot("BTCUSDT", depth=100)
        finally:
            await rest.close()
    assert server.queries == [{"symbol": "BTCUSDT", "limit": "100"}]
    assert (snap.symbol, snap.seq, snap.source) == ("BTCUSDT", 4242, SnapshotSource.REST)
    assert (snap.bids, snap.asks) == ([(100.5, 2.0)], [(101.0, 1.5)])


async def test_ccxt_rest_client_maps_429_with_retry_after() -> None:
    async with _DepthServer() as server:
        server.statuses.append((429, {"Retry-After": "9"}))
        rest = CcxtRestClient(get_adapter("binance"), config=rest_config_for("binance", server.url))
        try:
            with pytest.raises(RateLimited) as info:
                await rest.fetch_snapshot("BTCUSDT", depth=100)
        finally:
            await rest.close()
    assert info.value.retry_after_s == 9.0
    assert isinstance(info.value.__cause__, ccxt.BaseError)


def test_record_has_exactly_the_contract_keys_in_order(tmp_path: Path) -> None:
    path = tmp_path / "disconnects.jsonl"
    sink: list[dict[str, Any]] = []
    w = RecordWriter(path, sink=sink)
    rec = DisconnectRecord(ts=iso_utc(1_767_225_600_000_000_000), bot_instance_id="b", exchange="okx",
                           channel="public", close_code=1006, close_cause=CloseReason.ABNORMAL_CLOSURE.value,
                           last_message_ago_ms=5, uptime_seconds=1.25, reconnect_attempt=2, reconnect_success=True,
                           reconnect_latency_ms=1500, missed_messages_count=3, plan=["rest_snapshot"])
    w.write(rec)
    w.write(rec)
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    row = json.loads(lines[0])
    assert tuple(row) == RECORD_KEYS
    assert row == sink[0] == {
        "ts": "2026-01-01T00:00:00.000Z", "bot_instance_id": "b", "exchange": "okx", "channel": "public",
        "close_code": 1006, "close_cause": "abnormal_closure", "last_message_ago_ms": 5, "uptime_seconds": 1.25,
        "reconnect_attempt": 2, "reconnect_success": True, "reconnect_latency_ms": 1500,
        "missed_messages_count": 3, "plan": ["rest_snapshot"]}


def test_close_causes_are_close_reason_values() -> None:
    assert {r.value for r in CloseReason} >= {
        "abnormal_closure", "server_close", "ping_timeout", "idle_timeout", "tcp_error", "rate_limited",
        "auth_failed", "local_shutdown"}


def test_records_never_log_at_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="bookkeeper.io.records")
    w = RecordWriter()
    for success in (True, False):
        w.write(DisconnectRecord(ts="t", bot_instance_id="b", exchange="x", channel="public", close_code=1006,
                                 close_cause="abnormal_closure", last_message_ago_ms=None, uptime_seconds=0.0,
                                 reconnect_success=success))
    assert [r.levelname for r in caplog.records] == ["INFO", "WARNING"]
