"""Coinbase Advanced Trade private side (spot account): the user-order-data WebSocket and the
JWT-signed REST routes (exchange-protocols.md §8.1, §8.2, §8.5, §8.6).

- **Keys** (CDP): the key name ``organizations/{org}/apiKeys/{id}`` and an EC P-256 private
  key in PEM (``-----BEGIN EC PRIVATE KEY-----``), seeded per simulator seed
  (:func:`cdp_credentials`). Every JWT is checked with ``cryptography`` against the key's
  public half (:func:`check_jwt`): header ``alg: ES256``, ``kid`` = the key name, a ``nonce``;
  claims ``sub`` = the key name, ``iss`` ``"cdp"`` (Coinbase's samples) or ``"coinbase-cloud"``
  (ccxt 4.5.90 ``create_auth_token``), ``aud`` if present naming ``retail_rest_api_proxy`` or
  ``cdp_service``, ``nbf`` not in the future (5 s skew), ``exp`` in the future and at most
  2 minutes after ``nbf`` (§8.1), and the ES256 signature (``r || s``, 64 bytes).
- **WebSocket** (§8.1): the user host (``wss://advanced-trade-ws-user.coinbase.com``) is served
  on this server's port under ``/advanced-trade-ws-user``. One channel per ``subscribe``:
  ``heartbeats`` (no JWT needed) and ``user`` (JWT required; ``product_ids`` optional, none =
  every product). Each accepted request is answered with ``subscriptions``
  (``{"heartbeats":["heartbeats"],"user":[..products or none..]}``); a ``user`` subscribe with a
  missing or bad JWT with ``{"type":"error","message":"authentication failure"}`` (⚠ the
  wording is not documented in our copy) and no subscription. Then the ``user`` channel sends
  a ``snapshot`` of the open orders in batches of 50 (one message per batch, at least one),
  then one ``update`` per order change: ``order_id``, ``client_order_id``, ``status``
  (``OPEN``, ``FILLED``, ``CANCELLED``), ``cumulative_quantity``, ``leaves_quantity`` (what was
  left to fill: the remainder of a cancelled order, 0 once filled), ``avg_price``,
  ``total_fees``, ``product_id``, ``order_side``, ``limit_price``, ... **No fill records** on
  the stream (§8.6): fills are only in REST. No balance pushes.
- **``sequence_num``** (§8.2) counts every message of the connection across channels from 0
  (shared with the market-data host: ``coinbase.send_numbered``); an account event is numbered
  when queued, so a ``private_drop`` leaves a hole the client sees. Heartbeats every second,
  the 5 s subscribe deadline and the 60 s idle close as on the market-data host.
- Envelope ``timestamp`` of user-host messages is the account clock; an order update's is the
  change's own time (ms, nine fractional digits), the same instant as the fills' ``trade_time``
  and the accounts' ``updated_at`` it caused.
- ``auth_expiry`` (⚠ Coinbase documents no end of a user subscription): the ``user``
  subscription is dropped with ``{"type":"error","message":"user session expired: subscribe
  again with a new JWT"}``; the socket and the heartbeats stay.
- **REST** (§8.6), ``Authorization: Bearer <jwt>`` whose ``uri`` claim is ``"GET " + host +
  path`` (ccxt strips only ``https://`` from the URL: against this plain-HTTP server its claim
  reads ``"GET http://127.0.0.1:port/api/..."``, also accepted); 401 ``{"error":
  "unauthorized", ...}`` otherwise (⚠ the body of a refused JWT is not in our copy; ccxt maps
  ``unauthorized`` to ``AuthenticationError``).
  ``/api/v3/brokerage/orders/historical/fills`` (``product_id``/``product_ids``,
  ``order_ids``, ``start_sequence_timestamp``/``end_sequence_timestamp`` RFC 3339, ``limit``
  1-1000 default 100, ``cursor``; newest first; ``{"fills", "cursor"}`` with an empty cursor on
  the last page). Fills carry ``entry_id`` (the simulator's fill id, unique), ``trade_id``
  (derived from it), ``order_id``, ``trade_time``, ``price``, ``size``, ``commission`` (in the
  quote currency), ``side``, ``product_id``, ``sequence_timestamp`` (= ``trade_time``).
  ``/api/v3/brokerage/orders/historical/batch`` (``order_status`` repeated, ``product_ids``,
  ``limit`` default 100, ``cursor``; newest first; ``has_next``). ``/api/v3/brokerage/accounts``
  (``limit`` 1-250 default 49, ``cursor``; one row per currency: ``available_balance``,
  ``hold``, ``updated_at`` the wallet's last change). ``/api/v3/brokerage/transaction_summary``
  (the fee tier: what ccxt's ``load_markets`` reads when it has credentials).
- Fees: Advanced Trade's base tier (maker 0.40 %, taker 0.60 %), charged in the quote currency.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import random
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from websockets.datastructures import Headers

from bookkeeper.credentials import ApiCredentials

from ..account import AccountChange, AccountInstrument, AccountProfile, InstrumentKind, OrderChanged, SimOrder
from ..private import PrivateDialect, trimmed
from ..server import ClientConn, RestResult
from .coinbase import AtSession, heartbeat_loop, ns_timestamp, parse_request, send_numbered, watchdog

__all__ = ["COINBASE_ACCOUNT", "CoinbasePrivate", "cdp_credentials", "check_jwt"]

#: where the user host's stream is served on this server (the adapter's ``private_ws_url``)
WS_USER_PATH = "/advanced-trade-ws-user"
PREFIX = "/api/v3/brokerage/"
#: §8.6: the snapshot's batch size
SNAPSHOT_BATCH = 50
#: §8.1: a JWT lives at most 2 minutes
JWT_MAX_LIFETIME_S = 120
JWT_SKEW_S = 5
_ISSUERS = frozenset({"cdp", "coinbase-cloud"})
_AUDIENCES = frozenset({"retail_rest_api_proxy", "cdp_service"})
_AUTH_FAILURE = "authentication failure"
_SESSION_EXPIRED = "user session expired: subscribe again with a new JWT"
_STATUS = {"live": "OPEN", "partially_filled": "OPEN", "filled": "FILLED", "canceled": "CANCELLED"}
#: the order of the P-256 group (private scalars are taken below it)
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def cdp_credentials(rng: random.Random) -> ApiCredentials:
    """A CDP key from the account's seeded key RNG: ``organizations/{uuid}/apiKeys/{uuid}``
    and a P-256 private key in SEC1 PEM (what Coinbase hands out)."""
    org = uuid.UUID(int=rng.getrandbits(128), version=4)
    kid = uuid.UUID(int=rng.getrandbits(128), version=4)
    key = ec.derive_private_key(rng.getrandbits(256) % (_P256_ORDER - 1) + 1, ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption()).decode()
    return ApiCredentials(api_key=f"organizations/{org}/apiKeys/{kid}", secret=pem)


#: §8.6 spot account: BTC-USD and ETH-USD at the market-data host's increments (price 0.01;
#: sizes on a 0.0001 lot here), USD quote
COINBASE_ACCOUNT = AccountProfile(
    venue="coinbase",
    instruments=(
        AccountInstrument(symbol="BTC-USD", kind=InstrumentKind.SPOT, base="BTC", quote="USD", price_decimals=2,
                          lot="0.0001", typical_qty="0.0500", ref_symbol="BTC-USD", ref_price="61837.60",
                          taker_fee="0.006", maker_fee="0.004"),
        AccountInstrument(symbol="ETH-USD", kind=InstrumentKind.SPOT, base="ETH", quote="USD", price_decimals=2,
                          lot="0.0001", typical_qty="0.8000", ref_symbol="ETH-USD", ref_price="3050.12",
                          taker_fee="0.006", maker_fee="0.004"),
    ),
    balances={"USD": "400000", "BTC": "3", "ETH": "40"},
    uid="6f2a4a1e-3c0b-4e55-9f0e-6b3d1c2a9e77",
    uuid_ids=True,
    make_credentials=cdp_credentials,
)


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_jwt(token: Any, *, credentials: ApiCredentials, now_s: float, uris: frozenset[str] | None = None) -> str | None:
    """Why ``token`` is refused for ``credentials`` at ``now_s`` (``None``: accepted); with
    ``uris``, its ``uri`` claim (or one of its ``uris``) must be one of them (module docstring).
    """
    if type(token) is not str or token.count(".") != 2:
        return "not a JWT"
    head_b64, claims_b64, sig_b64 = token.split(".")
    try:
        header = orjson.loads(_b64url_decode(head_b64))
        claims = orjson.loads(_b64url_decode(claims_b64))
        sig = _b64url_decode(sig_b64)
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        return "undecodable JWT"
    if type(header) is not dict or type(claims) is not dict:
        return "undecodable JWT"
    name = credentials.api_key
    if header.get("alg") != "ES256" or header.get("kid") != name or type(header.get("nonce")) is not str:
        return "bad JWT header"
    if claims.get("sub") != name or claims.get("iss") not in _ISSUERS:
        return "bad JWT subject or issuer"
    aud = claims.get("aud")
    if aud is not None and not (type(aud) is list and _AUDIENCES & set(map(str, aud))):
        return "bad JWT audience"
    nbf, exp = claims.get("nbf"), claims.get("exp")
    if type(nbf) is not int or type(exp) is not int:
        return "JWT without nbf/exp"
    if nbf > now_s + JWT_SKEW_S or exp <= now_s or exp - nbf > JWT_MAX_LIFETIME_S:
        return "JWT expired or not yet valid"
    if uris is not None:
        named = [claims["uri"]] if "uri" in claims else claims.get("uris") or []
        # a claim of another type (a list as ``uri``, a number as ``uris``) names no request
        if type(named) is not list or not any(type(u) is str and u in uris for u in named):
            return "JWT uri does not name this request"
    if len(sig) != 64:
        return "bad JWT signature"
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    key = serialization.load_pem_private_key(credentials.reveal_secret().encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    try:
        key.public_key().verify(der, f"{head_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return "bad JWT signature"
    return None


def _num(value: Decimal | None) -> str:
    return trimmed(value)


def _ms_time(ms: int) -> str:
    return ns_timestamp(ms * 1_000_000)


def _parse_time_ms(text: str) -> int | None:
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


def _encode_cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode("|".join(map(str, parts)).encode()).decode()


def _digits(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` also takes ``"²"``, which ``int()`` refuses)."""
    return text.isascii() and text.isdigit()


def _decode_cursor(text: str) -> list[str] | None:
    try:
        return base64.urlsafe_b64decode(text.encode()).decode().split("|")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


class _UserSession(AtSession):
    """A user-host connection: the shared numbering plus the ``user`` subscription."""

    __slots__ = ("user", "products")

    def __init__(self, last_sent: float) -> None:
        super().__init__(last_sent=last_sent)
        self.user = False
        self.products: frozenset[str] | None = None  # None: every product


class CoinbasePrivate(PrivateDialect):
    """Coinbase user stream and JWT-signed REST (see the module docstring)."""

    ws_path = WS_USER_PATH
    profile = COINBASE_ACCOUNT
    rest_paths = frozenset({PREFIX + "orders/historical/fills", PREFIX + "orders/historical/batch",
                            PREFIX + "accounts", PREFIX + "transaction_summary"})

    # -- WebSocket ----------------------------------------------------------------------------

    def _st(self, conn: ClientConn) -> _UserSession:
        st = conn.session
        if not isinstance(st, _UserSession):
            st = conn.session = _UserSession(last_sent=asyncio.get_running_loop().time())
        return st

    def extra_tasks(self, conn: ClientConn) -> list[asyncio.Task[None]]:
        st = self._st(conn)
        return [asyncio.create_task(heartbeat_loop(self.server, conn, st, self._now)),
                asyncio.create_task(watchdog(conn, st))]

    def _now(self) -> str:
        return _ms_time(self.account.now_ms())

    def _send(self, conn: ClientConn, channel: str, events: Any, *, ts_ms: int | None = None,
              private: bool = False) -> None:
        stamp = _ms_time(ts_ms) if ts_ms is not None else self._now()
        send_numbered(self.server, conn, self._st(conn), channel, orjson.dumps(events).decode(), timestamp=stamp,
                      private=private)

    def _error(self, conn: ClientConn, message: str) -> None:
        self.send_control(conn, {"type": "error", "message": message})

    def on_text(self, conn: ClientConn, text: str) -> None:
        request = parse_request(text, ("heartbeats", "user"))
        if isinstance(request, str):
            self._error(conn, request)
            return
        kind, channel, products, msg = request
        st = self._st(conn)
        if channel == "heartbeats":
            st.heartbeats = kind == "subscribe"
        elif kind == "unsubscribe":
            st.user = False
        else:
            why = check_jwt(msg.get("jwt"), credentials=self.account.credentials, now_s=time.time())
            if why is not None:
                self._error(conn, _AUTH_FAILURE)
                return
            st.user = True
            st.products = frozenset(products) or None
        st.subscribed = st.subscribed or kind == "subscribe"
        subs: dict[str, list[str]] = {}
        if st.heartbeats:
            subs["heartbeats"] = ["heartbeats"]
        if st.user:
            subs["user"] = sorted(st.products or ())
        self._send(conn, "subscriptions", [{"subscriptions": subs}])
        if channel == "user" and kind == "subscribe":
            self._snapshot(conn, st)
        self.server.sim.notify()

    def _snapshot(self, conn: ClientConn, st: _UserSession) -> None:
        orders = [self._order_row(o) for o in self.account.open_orders() if self._wanted(st, o.symbol)]
        batches = [orders[i:i + SNAPSHOT_BATCH] for i in range(0, len(orders), SNAPSHOT_BATCH)] or [[]]
        for batch in batches:
            self._send(conn, "user", [{"type": "snapshot", "orders": batch, "positions": {}}])

    @staticmethod
    def _wanted(st: _UserSession, symbol: str) -> bool:
        return st.products is None or symbol in st.products

    def end_session(self, conn: ClientConn) -> bool:
        """``auth_expiry`` (⚠ undocumented): the ``user`` subscription ends with an error."""
        st = conn.session
        if not isinstance(st, _UserSession) or not st.user:
            return False
        st.user = False
        self._error(conn, _SESSION_EXPIRED)
        return True

    # -- pushes ---------------------------------------------------------------------------------

    def publish(self, changes: list[AccountChange]) -> None:
        targets = [(c, c.session) for c in self.private_conns()
                   if isinstance(c.session, _UserSession) and c.session.user]
        if not targets:
            return
        for change in changes:
            if not isinstance(change, OrderChanged):
                continue  # the user channel carries orders only: no fills, no balances (§8.6)
            row = self._order_row(change.order)
            for conn, st in targets:
                if self._wanted(st, change.order.symbol):
                    self._send(conn, "user", [{"type": "update", "orders": [row]}], ts_ms=change.ts_ms, private=True)

    def _order_row(self, o: SimOrder) -> dict[str, Any]:
        fills = [f for f in self.account.fills(o.symbol) if f.order_id == o.order_id]
        fees = sum((f.fee for f in fills), Decimal(0))
        avg = o.filled_quote / o.filled if o.filled else None
        return {
            "order_id": o.order_id, "client_order_id": o.client_order_id, "cumulative_quantity": _num(o.filled),
            "leaves_quantity": _num(o.remaining), "avg_price": _num(avg), "total_fees": _num(fees),
            "status": _STATUS[o.state.value], "product_id": o.symbol, "creation_time": _ms_time(o.created_ms),
            "order_side": o.side.upper(), "order_type": "Limit" if o.order_type == "limit" else "Market",
            "limit_price": _num(o.price) if o.price is not None else "", "cancel_reason": "", "reject_reason": "",
            "number_of_fills": str(len(fills)), "filled_value": _num(o.filled_quote),
            "total_value_after_fees": _num(o.filled_quote + fees if o.side == "buy" else o.filled_quote - fees),
            "product_type": "SPOT", "time_in_force": "GOOD_UNTIL_CANCELLED", "post_only": False,
            "trigger_status": "INVALID_ORDER_TYPE", "retail_portfolio_id": "",
        }

    # -- signed REST --------------------------------------------------------------------------------

    def rest(self, path: str, raw_query: str, query: Mapping[str, str], headers: Headers) -> RestResult:
        auth = headers.get("Authorization", "")
        host = headers.get("Host", "")
        uris = frozenset({f"GET {host}{path}", f"GET http://{host}{path}"})
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
        why = check_jwt(token, credentials=self.account.credentials, now_s=time.time(), uris=uris)
        if why is not None:
            return RestResult(401, {"error": "unauthorized", "error_details": why, "message": "Unauthorized"})
        multi = parse_qs(raw_query)
        route = path.removeprefix(PREFIX)
        if route == "orders/historical/fills":
            return self._fills(query, multi)
        if route == "orders/historical/batch":
            return self._orders(query, multi)
        if route == "transaction_summary":
            return self._transaction_summary()
        return self._accounts(query)

    def _transaction_summary(self) -> RestResult:
        """What ccxt's ``load_markets`` reads with credentials (the fee tier)."""
        inst = next(iter(self.account.instruments.values()))
        volume = sum((f.quote_qty for f in self.account.fills()), Decimal(0))
        fees = sum((f.fee for f in self.account.fills()), Decimal(0))
        return RestResult(200, {
            "total_volume": _num(volume), "total_fees": _num(fees),
            "fee_tier": {"pricing_tier": "Advanced 1", "usd_from": "0", "usd_to": "10000",
                         "taker_fee_rate": inst.taker_fee, "maker_fee_rate": inst.maker_fee, "aop_from": "",
                         "aop_to": ""},
            "margin_rate": None, "goods_and_services_tax": None, "advanced_trade_only_volume": _num(volume),
            "advanced_trade_only_fees": _num(fees), "coinbase_pro_volume": "0", "coinbase_pro_fees": "0",
            "total_balance": "", "has_promo_fee": False})

    @staticmethod
    def _bad(details: str) -> RestResult:
        return RestResult(400, {"error": "INVALID_ARGUMENT", "error_details": details, "message": details})

    @staticmethod
    def _limit(query: Mapping[str, str], default: int, top: int) -> int | None:
        text = query.get("limit", str(default))
        return int(text) if _digits(text) and 1 <= int(text) <= top else None

    def _fills(self, query: Mapping[str, str], multi: Mapping[str, list[str]]) -> RestResult:
        products = set(multi.get("product_ids", []) + multi.get("product_id", []))
        orders = set(multi.get("order_ids", []))
        limit = self._limit(query, 100, 1000)
        if limit is None:
            return self._bad("limit must be 1-1000")
        start = _parse_time_ms(query["start_sequence_timestamp"]) if query.get("start_sequence_timestamp") else 0
        end = _parse_time_ms(query["end_sequence_timestamp"]) if query.get("end_sequence_timestamp") else None
        if start is None or (query.get("end_sequence_timestamp") and end is None):
            return self._bad("start_sequence_timestamp / end_sequence_timestamp must be RFC 3339 times")
        oldest = self.oldest_ms(None)
        rows = [f for f in self.account.fills() if (not products or f.symbol in products)
                and (not orders or f.order_id in orders) and max(start, oldest) <= f.ts_ms
                and (end is None or f.ts_ms <= end)]
        rows.sort(key=lambda f: (f.ts_ms, f.trade_id), reverse=True)  # newest first
        if query.get("cursor"):
            after = _decode_cursor(query["cursor"])
            if after is None or len(after) != 2 or not _digits(after[0]):
                return self._bad("cursor is invalid")
            key = (int(after[0]), after[1])
            rows = [f for f in rows if (f.ts_ms, f.trade_id) < key]
        page = rows[:limit]
        more = len(rows) > limit
        cursor = _encode_cursor(page[-1].ts_ms, page[-1].trade_id) if more else ""
        return RestResult(200, {"fills": [self._fill_row(f) for f in page], "cursor": cursor})

    def _fill_row(self, f: Any) -> dict[str, Any]:
        stamp = _ms_time(f.ts_ms)
        return {
            "entry_id": f.trade_id, "trade_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"coinbase:trade:{f.trade_id}")),
            "order_id": f.order_id, "trade_time": stamp, "trade_type": "FILL", "price": _num(f.price),
            "size": _num(f.qty), "commission": _num(f.fee), "product_id": f.symbol, "sequence_timestamp": stamp,
            "liquidity_indicator": "MAKER" if f.maker else "TAKER", "size_in_quote": False,
            "user_id": self.account.uid, "side": f.side.upper(), "retail_portfolio_id": "",
        }

    def _orders(self, query: Mapping[str, str], multi: Mapping[str, list[str]]) -> RestResult:
        statuses = set(multi.get("order_status", []))
        products = set(multi.get("product_ids", []) + multi.get("product_id", []))
        limit = self._limit(query, 100, 1000)
        if limit is None:
            return self._bad("limit must be 1-1000")
        if statuses - {"OPEN", "FILLED", "CANCELLED", "PENDING", "EXPIRED", "FAILED"}:
            return self._bad(f"unknown order_status {sorted(statuses)}")
        rows = [o for o in self.account.orders()
                if (not statuses or _STATUS[o.state.value] in statuses) and (not products or o.symbol in products)]
        rows.sort(key=lambda o: (o.created_ms, o.order_id), reverse=True)  # newest first
        if query.get("cursor"):
            after = _decode_cursor(query["cursor"])
            if after is None or len(after) != 2 or not _digits(after[0]):
                return self._bad("cursor is invalid")
            key = (int(after[0]), after[1])
            rows = [o for o in rows if (o.created_ms, o.order_id) < key]
        page = rows[:limit]
        more = len(rows) > limit
        cursor = _encode_cursor(page[-1].created_ms, page[-1].order_id) if more else ""
        return RestResult(200, {"orders": [self._rest_order(o) for o in page], "sequence": "0", "has_next": more,
                                "cursor": cursor})

    def _rest_order(self, o: SimOrder) -> dict[str, Any]:
        fills = [f for f in self.account.fills(o.symbol) if f.order_id == o.order_id]
        config = ({"limit_limit_gtc": {"base_size": _num(o.qty), "limit_price": _num(o.price), "post_only": False}}
                  if o.order_type == "limit" else {"market_market_ioc": {"base_size": _num(o.qty)}})
        avg = o.filled_quote / o.filled if o.filled else None
        return {
            "order_id": o.order_id, "product_id": o.symbol, "user_id": self.account.uid,
            "order_configuration": config, "side": o.side.upper(), "client_order_id": o.client_order_id,
            "status": _STATUS[o.state.value], "time_in_force": "GOOD_UNTIL_CANCELLED",
            "created_time": _ms_time(o.created_ms), "completion_percentage": _num(o.filled * 100 / o.qty),
            "filled_size": _num(o.filled), "average_filled_price": _num(avg), "fee": "",
            "number_of_fills": str(len(fills)), "filled_value": _num(o.filled_quote), "pending_cancel": False,
            "size_in_quote": False, "total_fees": _num(sum((f.fee for f in fills), Decimal(0))),
            "size_inclusive_of_fees": False, "total_value_after_fees": _num(o.filled_quote),
            "trigger_status": "INVALID_ORDER_TYPE", "order_type": "LIMIT" if o.order_type == "limit" else "MARKET",
            "reject_reason": "", "settled": not o.is_open, "product_type": "SPOT", "reject_message": "",
            "cancel_message": "", "order_placement_source": "RETAIL_ADVANCED", "outstanding_hold_amount": "0",
            "is_liquidation": False, "last_fill_time": _ms_time(fills[-1].ts_ms) if fills else None,
            "edit_history": [], "leverage": "", "margin_type": "UNKNOWN_MARGIN_TYPE", "retail_portfolio_id": "",
        }

    def _accounts(self, query: Mapping[str, str]) -> RestResult:
        limit = self._limit(query, 49, 250)
        if limit is None:
            return self._bad("limit must be 1-250")
        ccys = sorted(self.account.balances())
        start = 0
        if query.get("cursor"):
            after = _decode_cursor(query["cursor"])
            if after is None or len(after) != 1 or not _digits(after[0]):
                return self._bad("cursor is invalid")
            start = int(after[0])
        page = ccys[start:start + limit]
        more = start + limit < len(ccys)
        return RestResult(200, {"accounts": [self._account_row(c) for c in page], "has_next": more,
                                "cursor": _encode_cursor(start + limit) if more else "", "size": len(page)})

    def _account_row(self, ccy: str) -> dict[str, Any]:
        free, locked, updated = self.account.balance(ccy)
        fiat = ccy in ("USD", "EUR", "GBP")
        created = _ms_time(1_700_000_000_000)
        return {
            "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"coinbase:account:{self.account.uid}:{ccy}")),
            "name": f"{ccy} Wallet", "currency": ccy, "available_balance": {"value": _num(free), "currency": ccy},
            "default": True, "active": True, "created_at": created,
            "updated_at": _ms_time(updated) if updated else created, "deleted_at": None,
            "type": "ACCOUNT_TYPE_FIAT" if fiat else "ACCOUNT_TYPE_CRYPTO", "ready": True,
            "hold": {"value": _num(locked), "currency": ccy}, "retail_portfolio_id": "",
            "platform": "ACCOUNT_PLATFORM_CONSUMER",
        }
