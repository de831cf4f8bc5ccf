"""Coinbase Advanced Trade's private side (spot account): the ``user`` stream on the user-data
host and the account-recovery REST calls.

Implements :class:`bookkeeper.ports.AccountAdapter` as :data:`COINBASE_ACCOUNT`. Pure: the
driver passes the clock (``now_ms``) and request ids; ccxt signs the REST calls (ccxt 4.5.90
``coinbase.sign()`` -> ``create_auth_token``: ``Authorization: Bearer <ES256 JWT>`` with a
``uri`` claim ``"GET host/path"``).

Theory of operation (exchange-protocols.md §8.1, §8.2, §8.5, §8.6, §2.4, §2.5)
------------------------------------------------------------------------------
- **Keys** are CDP keys: the name ``organizations/{org}/apiKeys/{id}`` is the API key, an EC
  P-256 private key in PEM (``-----BEGIN EC PRIVATE KEY-----``, multi-line) the secret.
- **JWT per message** (§8.1: a JWT expires after 2 minutes, make a new one for each message):
  ES256 over ``base64url(header) "." base64url(claims)``, header ``{"alg": "ES256", "kid":
  key name, "nonce", "typ": "JWT"}``, claims ``{"iss": "cdp", "nbf": now_s, "exp": now_s +
  120, "sub": key name}`` (Coinbase's documented form; ccxt ``create_auth_token`` writes
  ``iss: "coinbase-cloud"`` with ``aud: ["retail_rest_api_proxy"]`` and ``iat``: both are
  accepted by the venue, the simulator checks either). Built here with ``cryptography``
  (adapters may not import ccxt; ``tests/adapters/test_coinbase_private.py`` checks our JWT
  and ccxt's against the same verifier). The nonce is derived from the key, the time, the
  request id and the channel: unique per message, and the adapter stays deterministic.
- **Login = subscribe**: two frames, ``heartbeats`` (keeps the connection open, §8.5) and
  ``user`` (no ``product_ids``: every product), each with its own JWT. A ``subscriptions``
  message listing ``user`` is ``LOGGED_IN`` (the JWT was accepted; nothing else to
  subscribe); an ``error`` naming authentication (⚠ wording: ``authentication failure``) is
  ``AUTH_REJECTED``; one naming expiry (⚠ undocumented: the simulator's ``auth_expiry``) is
  ``SESSION_EXPIRED``; any other error is ``ERROR``.
- **``sequence_num``** (§8.2) counts every message of the connection across channels: a
  per-connection :class:`~.parse.AtSequence` checks it after the frame parsed. A skipped
  number puts ``PrivateControl(STREAM_GAP, since_ns=<timestamp of the last message before
  it>)`` before the frame's events (the session replays the gap); a repeated or late number
  drops the frame (a late one was already reported as the gap its absence made).
- **Orders, not fills** (§8.6): ``user`` events carry orders (``snapshot`` batches of 50,
  then ``update``\\ s) and **no per-fill id**. Each order is an ``OrderUpdate`` with
  ``filled_qty = cumulative_quantity`` and ``qty = cumulative + leaves_quantity`` at the
  envelope ``timestamp``; the session sees the cumulative quantity run ahead of the ledger's
  fills and replays that product over REST (``AccountSession``'s order-gap path), where the
  fill records live.
- **Fill key** (§2.5): ``entry_id``, unique per fill. ccxt's ``parse_trade`` uses ``trade_id``
  as the trade ``id``, but both sides of a self-trade share a ``trade_id``: keyed by it, one of
  the two fills would be dropped as a duplicate. ``trade_time`` is the fill's time;
  ``commission`` (positive when charged) is in the product's quote currency (spot, §8.6).
  ``size_in_quote: true`` rows give the size in the quote: the base quantity is ``size /
  price`` as ccxt computes it (⚠ inexact when the division does not terminate).
- **REST** (§8.6): ``GET /api/v3/brokerage/orders/historical/fills`` (``product_ids``,
  ``start_sequence_timestamp``/``end_sequence_timestamp`` RFC 3339, ``limit``, opaque
  ``cursor``; a non-empty ``cursor`` in the answer continues the same range), newest first;
  ``GET /api/v3/brokerage/accounts`` (``limit`` 250) for balances (total = ``available_balance``
  + ``hold``); ``GET /api/v3/brokerage/orders/historical/batch?order_status=OPEN`` for open
  orders. No positions (spot).
- **Consistency mark**: each account row's ``updated_at`` (⚠ Coinbase does not define when
  it moves; the simulator moves it with every balance or hold change, as a wallet's last
  change); the mark is the newest ``updated_at`` of the answer (``account_mark_call`` is
  ``None``). An order placement moves the hold, hence the mark: the session compares only
  when the mark lies between the newest fill and the newest event it knows of.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from bookkeeper.capabilities import FillHistory, FillPaging
from bookkeeper.credentials import ApiCredentials
from bookkeeper.errors import AdapterError, UsageError
from bookkeeper.events import (
    BalanceReport,
    Fill,
    NoticeKind,
    OrderStatus,
    OrderUpdate,
    PrivateControl,
    PrivateControlKind,
    PrivateEvent,
)
from bookkeeper.ports import FillsPage, PrivateDecoder, RestCall
from bookkeeper.types import TradeSide

from .._common import FrameDecoder, _excerpt, _r, loads
from .._private import AccountAdapterBase, NoPositions, convert, guarded_rest, json_body, money, opt_text, quantity
from .parse import AtSequence, iso_to_ns
from .private_schemas import AccountsPage, Envelope, FillRow, OrdersPage, RestOrder, SubscriptionsEvent, UserEvent
from .private_schemas import FillsPage as FillsBody

if TYPE_CHECKING:  # the cursor type of the AccountAdapter signature (a plain value, never built here)
    from bookkeeper.actions import FillCursor

__all__ = ["COINBASE_ACCOUNT", "CoinbaseAccount", "build_jwt", "decode_private"]

EXCHANGE = "coinbase"
CCXT_ID = "coinbase"
#: §8.1: the user-order-data host (``heartbeats``, ``user``, ``futures_balance_summary``)
USER_HOST = "advanced-trade-ws-user.coinbase.com"
MARKET_HOST = "advanced-trade-ws.coinbase.com"
WS_USER_ROOT = f"wss://{USER_HOST}"
#: where a server that serves both streams on one host (the simulator) serves the user one
WS_USER_PATH = "/advanced-trade-ws-user"
#: §8.1: a JWT lives 2 minutes
JWT_LIFETIME_S = 120
#: ccxt paginates fills by 250 (§8.6); Coinbase documents no maximum (⚠)
PAGE_SIZE = 250
#: ccxt ``fetch_balance`` asks ``accounts`` for 250 per page
ACCOUNTS_LIMIT = 250
#: open orders per request (⚠ no documented maximum; more is refused as "needs paging")
OPEN_ORDERS_LIMIT = 1000

HISTORY = FillHistory(page_size=PAGE_SIZE, paging=FillPaging.TIME_RANGE)  # no documented window

_SIDES: dict[str, TradeSide] = {"BUY": TradeSide.BUY, "SELL": TradeSide.SELL}
#: terminal statuses; the open ones (PENDING, OPEN, QUEUED, CANCEL_QUEUED) are NEW or
#: PARTIALLY_FILLED by the cumulative quantity
_TERMINAL: dict[str, OrderStatus] = {
    "FILLED": OrderStatus.FILLED, "CANCELLED": OrderStatus.CANCELED, "EXPIRED": OrderStatus.EXPIRED,
    "FAILED": OrderStatus.REJECTED,
}
#: EDIT_QUEUED (an order waiting for its edit) is still open; ⚠ it is in the API reference's
#: status enum, not in §8 or in ccxt's table. UNKNOWN_ORDER_STATUS stays refused (nothing to
#: build a state from).
_OPEN = frozenset({"PENDING", "OPEN", "QUEUED", "CANCEL_QUEUED", "EDIT_QUEUED"})


def _fail(message: str, raw: Any, symbol: str | None = None) -> AdapterError:
    return AdapterError(message, exchange=EXCHANGE, raw=_excerpt(raw), symbol=symbol)


def _time_ns(text: Any, what: str, raw: Any, symbol: str | None = None) -> int:
    """An RFC 3339 time in ns (strict: a time that does not parse is refused)."""
    ns = iso_to_ns(text) if type(text) is str else 0
    if ns <= 0:
        raise _fail(f"bad {what} time {_r(text)}", raw, symbol)
    return ns


def iso_ms(ms: int) -> str:
    """ms -> ``2026-01-01T00:00:00.000Z`` (ccxt ``iso8601``, what the fills range takes).

    >>> iso_ms(1_767_225_600_123)
    '2026-01-01T00:00:00.123Z'
    """
    head = datetime.fromtimestamp(ms // 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{head}.{ms % 1000:03d}Z"


def _status(value: str, filled: Decimal, raw: Any, symbol: str) -> OrderStatus:
    status = _TERMINAL.get(value)
    if status is not None:
        return status
    if value in _OPEN:
        return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.NEW
    raise _fail(f"unknown order status {_r(value)}", raw, symbol)


def _side(value: str, raw: Any, symbol: str | None) -> TradeSide:
    side = _SIDES.get(value.upper())
    if side is None:
        raise _fail(f"bad side {_r(value)}", raw, symbol)
    return side


def _price(text: str, what: str, raw: Any, symbol: str) -> Decimal | None:
    """A limit price; ``""`` or zero (market orders) is ``None``."""
    if not text:
        return None
    px = quantity(text, what, EXCHANGE, raw, symbol)
    return px if px != 0 else None


# ----------------------------------------------------------------------------- JWT


def _signing_key(credentials: ApiCredentials) -> ec.EllipticCurvePrivateKey:
    """The credentials' EC P-256 key (the message never quotes the secret).

    Raises:
        UsageError: the secret is not a P-256 private key in PEM.
    """
    try:
        key = serialization.load_pem_private_key(credentials.reveal_secret().encode(), password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise UsageError("coinbase: the API secret must be the CDP key's EC P-256 private key in PEM "
                         "(-----BEGIN EC PRIVATE KEY-----)", venue=EXCHANGE)
    return key


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def build_jwt(credentials: ApiCredentials, *, now_s: int, nonce: str, uri: str | None = None) -> str:
    """An ES256 JWT for the credentials' CDP key, valid ``[now_s, now_s + 120]`` (module
    docstring); ``uri`` (``"GET api.coinbase.com/api/v3/brokerage/accounts"``) for a REST call,
    none for a WebSocket subscribe.

    Raises:
        UsageError: the secret is not an EC P-256 PEM key.
    """
    key = _signing_key(credentials)
    header = {"alg": "ES256", "kid": credentials.api_key, "nonce": nonce, "typ": "JWT"}
    claims: dict[str, Any] = {"iss": "cdp", "nbf": now_s, "exp": now_s + JWT_LIFETIME_S, "sub": credentials.api_key}
    if uri is not None:
        claims["uri"] = uri
    signing_input = f"{_b64url(orjson.dumps(header))}.{_b64url(orjson.dumps(claims))}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def _nonce(credentials: ApiCredentials, now_ms: int, request_id: str, channel: str) -> str:
    return hashlib.sha256(f"{credentials.api_key}|{now_ms}|{request_id}|{channel}".encode()).hexdigest()[:32]


# ----------------------------------------------------------------------------- the stream


class _Connection:
    """Per connection: the ``sequence_num`` check and the last message's venue time."""

    __slots__ = ("seq", "last_ts_ns")

    def __init__(self) -> None:
        self.seq = AtSequence()
        self.last_ts_ns = 0


def _order_update(o: Any, ts_ns: int, raw: Any, ts_recv_ns: int) -> OrderUpdate:
    sym = o.product_id
    filled = quantity(o.cumulative_quantity, "cumulative_quantity", EXCHANGE, raw, sym)
    leaves = quantity(o.leaves_quantity, "leaves_quantity", EXCHANGE, raw, sym)
    status = _status(o.status, filled, raw, sym)
    return OrderUpdate(symbol=sym, order_id=o.order_id, side=_side(o.order_side, raw, sym), status=status,
                       qty=filled + leaves, filled_qty=filled, price=_price(o.limit_price, "limit_price", raw, sym),
                       client_order_id=opt_text(o.client_order_id), ts_exchange_ns=ts_ns, ts_recv_ns=ts_recv_ns)


def _error(env: Envelope, ts_recv_ns: int) -> list[PrivateEvent]:
    text = f"{env.message} {env.reason}".strip()[:200]
    low = text.lower()
    if "expired" in low and "auth" not in low:
        kind = PrivateControlKind.SESSION_EXPIRED
    elif "auth" in low or "jwt" in low or "unauthorized" in low:
        kind = PrivateControlKind.AUTH_REJECTED
    else:
        kind = PrivateControlKind.ERROR
    return [PrivateControl(kind=kind, message=text or "error", ts_recv_ns=ts_recv_ns)]


def _numbered(env: Envelope, frame: Any, ts_recv_ns: int) -> list[PrivateEvent]:
    ts = iso_to_ns(env.timestamp)
    if env.channel == "user":
        if ts <= 0:
            raise _fail(f"user message without a readable timestamp {_r(env.timestamp)}", frame)
        out: list[PrivateEvent] = []
        for event in convert(env.events, list[UserEvent], EXCHANGE, frame):
            out += [_order_update(o, ts, frame, ts_recv_ns) for o in event.orders]
        return out
    if env.channel == "subscriptions":
        subs = convert(env.events, list[SubscriptionsEvent], EXCHANGE, frame)
        if any("user" in s.subscriptions for s in subs):
            return [PrivateControl(kind=PrivateControlKind.LOGGED_IN, channel="user",
                                   message="user channel subscribed", ts_recv_ns=ts_recv_ns)]
    return []  # heartbeats (counted by sequence_num), futures_balance_summary, ...


def decode_private(frame: bytes | str, ts_recv_ns: int, conn: _Connection) -> list[PrivateEvent]:
    """Translate one user-host frame (module docstring); the connection's numbering is
    checked only after the frame parsed, so a refused frame changes nothing.

    Raises:
        AdapterError: invalid JSON, or a malformed envelope, order or subscriptions event.
    """
    obj = loads(frame, EXCHANGE)
    if type(obj) is not dict:
        raise _fail("frame is not a JSON object", frame)
    env = convert(obj, Envelope, EXCHANGE, frame)
    if env.type == "error":
        return _error(env, ts_recv_ns)
    if env.channel is None or env.sequence_num is None:
        return []
    if env.sequence_num < 0:
        raise _fail(f"negative sequence_num {env.sequence_num}", frame)
    events = _numbered(env, frame, ts_recv_ns)
    since = conn.last_ts_ns
    notice = conn.seq.check(env.sequence_num)
    if notice is not None and notice.kind is not NoticeKind.CONNECTION_GAP:
        return []  # repeated (already handled) or late (already reported as a gap): dropped
    ts = iso_to_ns(env.timestamp)
    if ts > conn.last_ts_ns:
        conn.last_ts_ns = ts
    if notice is None:
        return events
    gap = PrivateControl(kind=PrivateControlKind.STREAM_GAP, message=notice.message, since_ns=since,
                         ts_recv_ns=ts_recv_ns)
    return [gap, *events]


# ----------------------------------------------------------------------------- REST


def _fill(r: FillRow, raw: Any, ts_recv_ns: int) -> Fill:
    sym = r.product_id
    px = quantity(r.price, "price", EXCHANGE, raw, sym)
    size = quantity(r.size, "size", EXCHANGE, raw, sym)
    if px == 0 or size == 0:
        raise _fail(f"fill with zero price or size ({r.price} x {r.size})", raw, sym)
    if r.size_in_quote:
        try:
            size = size / px
        except InvalidOperation:
            raise _fail(f"size in quote {r.size} at {r.price}", raw, sym) from None
    quote = sym.rpartition("-")[2] or None
    return Fill(symbol=sym, fill_id=r.entry_id, order_id=r.order_id, side=_side(r.side, raw, sym), price=px,
                qty=size, fee=money(r.commission, "commission", EXCHANGE, raw, sym), fee_currency=quote,
                ts_exchange_ns=_time_ns(r.trade_time, "trade_time", raw, sym), ts_recv_ns=ts_recv_ns)


def _rest_order(o: RestOrder, raw: Any, ts_recv_ns: int) -> OrderUpdate:
    sym = o.product_id
    config = next(iter(o.order_configuration.values()), {})
    if type(config) is not dict:
        raise _fail("order_configuration must hold an object", raw, sym)
    filled = quantity(o.filled_size or "0", "filled_size", EXCHANGE, raw, sym)
    size = config.get("base_size")
    qty = quantity(size, "base_size", EXCHANGE, raw, sym) if size is not None else filled
    if filled > qty:
        raise _fail(f"filled size {filled} exceeds the order size {qty}", raw, sym)
    limit = config.get("limit_price", "")
    if type(limit) is not str:
        raise _fail(f"limit_price must be a string, got {_r(limit)}", raw, sym)
    ts = _time_ns(o.last_fill_time or o.created_time, "order", raw, sym)
    return OrderUpdate(symbol=sym, order_id=o.order_id, side=_side(o.side, raw, sym),
                       status=_status(o.status, filled, raw, sym), qty=qty, filled_qty=filled,
                       price=_price(limit, "limit_price", raw, sym), client_order_id=opt_text(o.client_order_id),
                       ts_exchange_ns=ts, ts_recv_ns=ts_recv_ns)


def _fills_call(symbol: str, since_ms: int, until_ms: int, cursor: str | None = None) -> RestCall:
    params: dict[str, Any] = {"product_ids": symbol, "start_sequence_timestamp": iso_ms(since_ms),
                              "end_sequence_timestamp": iso_ms(until_ms), "limit": PAGE_SIZE}
    if cursor:
        params["cursor"] = cursor
    return RestCall(ccxt_id=CCXT_ID, method="v3_private_get_brokerage_orders_historical_fills", params=params)


class CoinbaseAccount(NoPositions, AccountAdapterBase):
    """Coinbase Advanced Trade's :class:`~bookkeeper.ports.AccountAdapter` (see the module
    docstring)."""

    name = EXCHANGE
    ccxt_id = CCXT_ID
    market_types: tuple[str, ...] = ("spot",)
    history = HISTORY
    #: ⚠ no documented lifetime of a user subscription (§8.5: none of a connection either)
    session_lifetime_s: float | None = None
    #: §8.5: no client ping; the ``heartbeats`` channel (one message a second) is the traffic
    #: the driver's idle check watches (no pong: ``ping_message`` is ``None``)
    ping_interval_s: float | None = 10.0
    pong_timeout_s: float | None = 10.0
    #: the accounts' newest ``updated_at`` is the mark (no mark call: AccountAdapterBase)
    mark_source = "the accounts answer"

    def default_private_ws_root(self) -> str:
        """``wss://advanced-trade-ws-user.coinbase.com`` (§8.1)."""
        return WS_USER_ROOT

    def private_ws_url(self, root: str) -> str:
        """The user host as given; the market-data host's root means its user twin (§8.1);
        any other root (a server that serves both streams, the simulator) serves the user
        stream under :data:`WS_USER_PATH`."""
        base = root.rstrip("/")
        host = urlsplit(base).hostname
        if host == USER_HOST:
            return base
        if host == MARKET_HOST:
            return WS_USER_ROOT
        return base + WS_USER_PATH

    def ccxt_config_for(self, base_url: str) -> dict[str, Any]:
        """ccxt's REST root (``urls.api.rest``: public and private v3 share it; the JWT's
        ``uri`` claim names it) pointed at ``base_url``; ``fetchCurrencies`` off (it reads
        v2 endpoints ``load_markets`` does not need)."""
        return {"urls": {"api": {"rest": base_url.rstrip("/")}}, "has": {"fetchCurrencies": False}}

    def login_messages(self, credentials: ApiCredentials, *, now_ms: int, request_id: str) -> list[str]:
        """``subscribe`` to ``heartbeats`` and to ``user``, each with a fresh JWT (§8.1).

        Returns:
            Two text frames; they hold the key name and signed JWTs, never the private key.

        Raises:
            UsageError: the secret is not an EC P-256 PEM key.
        """
        now_s = int(now_ms) // 1000
        frames = []
        for channel in ("heartbeats", "user"):
            jwt = build_jwt(credentials, now_s=now_s, nonce=_nonce(credentials, int(now_ms), request_id, channel))
            frames.append(orjson.dumps({"type": "subscribe", "channel": channel, "jwt": jwt}).decode())
        return frames

    def new_private_decoder(self) -> PrivateDecoder:
        """A fresh decoder for one connection (its ``sequence_num`` check); raises only
        :class:`AdapterError` on malformed frames (``_common.FrameDecoder``)."""
        return FrameDecoder(decode_private, _Connection(), exchange=EXCHANGE)  # type: ignore[arg-type]

    # -- fills history ------------------------------------------------------------------

    def fills_call(self, symbol: str, *, cursor: FillCursor, since_ms: int, until_ms: int) -> RestCall:
        """``orders/historical/fills`` of ``symbol`` in ``[since_ms, until_ms]`` (the venue's
        paging cursor is opaque: a fill id cannot start a page)."""
        start = max(since_ms, 0)
        return _fills_call(symbol, start, max(until_ms, start))

    @guarded_rest(EXCHANGE)
    def parse_fills_page(self, body: Any, *, call: RestCall, symbol: str, ts_recv_ns: int = 0) -> FillsPage:
        """A fills answer (newest first). A non-empty ``cursor`` continues the same range.

        Raises:
            AdapterError: malformed body.
        """
        page = convert(json_body(body, EXCHANGE), FillsBody, EXCHANGE, body, symbol)
        fills = tuple(_fill(r, body, ts_recv_ns) for r in page.fills if r.trade_type == "FILL")
        if page.cursor and page.fills:
            return FillsPage(fills=fills, next_call=RestCall(ccxt_id=call.ccxt_id, method=call.method,
                                                             params={**call.params, "cursor": page.cursor}))
        return FillsPage(fills=fills, next_call=None)

    # -- full sync ----------------------------------------------------------------------

    def balances_call(self) -> RestCall:
        """``GET /api/v3/brokerage/accounts?limit=250``."""
        return RestCall(ccxt_id=CCXT_ID, method="v3_private_get_brokerage_accounts", params={"limit": ACCOUNTS_LIMIT})

    @guarded_rest(EXCHANGE)
    def parse_balances(self, body: Any, *, ts_recv_ns: int = 0) -> BalanceReport:
        """Per currency ``available_balance + hold``; the newest ``updated_at`` as
        ``ts_exchange_ns`` (the consistency mark, module docstring).

        Raises:
            AdapterError: malformed body, or more accounts behind this page.
        """
        page = convert(json_body(body, EXCHANGE), AccountsPage, EXCHANGE, body)
        if page.has_next:
            raise _fail(f"more than {len(page.accounts)} accounts: the set needs paging", body)
        balances: dict[str, Decimal] = {}
        mark = 0
        for a in page.accounts:
            total = money(a.available_balance.value, "available_balance", EXCHANGE, body) + money(
                a.hold.value, "hold", EXCHANGE, body)
            balances[a.currency] = balances.get(a.currency, Decimal(0)) + total
            if a.updated_at:
                mark = max(mark, _time_ns(a.updated_at, "updated_at", body))
        return BalanceReport(balances=balances, ts_exchange_ns=mark, ts_recv_ns=ts_recv_ns)

    def open_orders_call(self) -> RestCall:
        """``GET /api/v3/brokerage/orders/historical/batch?order_status=OPEN``."""
        return RestCall(ccxt_id=CCXT_ID, method="v3_private_get_brokerage_orders_historical_batch",
                        params={"order_status": "OPEN", "limit": OPEN_ORDERS_LIMIT})

    @guarded_rest(EXCHANGE)
    def parse_open_orders(self, body: Any, *, ts_recv_ns: int = 0) -> list[OrderUpdate]:
        """The open orders (``filled_size`` cumulative).

        Raises:
            AdapterError: malformed body, or more orders behind this page.
        """
        page = convert(json_body(body, EXCHANGE), OrdersPage, EXCHANGE, body)
        if page.has_next:
            raise _fail(f"more than {len(page.orders)} open orders: the set needs paging", body)
        return [_rest_order(o, body, ts_recv_ns) for o in page.orders]


COINBASE_ACCOUNT = CoinbaseAccount()
