"""Helpers shared by the venues' private sides (``adapters/<venue>/private.py``). Pure.

Theory of operation
-------------------
A private side (``ports.AccountAdapter``) translates authenticated-stream frames and the REST
bodies of account recovery into account events. Money must be exact, so every amount is read
from the venue's *string* (never a JSON number, never via float: style.md §2 "Decimal vs
float"), and every wire shape is checked before an event is built: a frame either translates
completely or raises :class:`~bookkeeper.errors.AdapterError`. The per-frame guard is
``_common.FrameDecoder`` (the one place where a stray exception becomes typed); REST parsers
get the same treatment from :func:`guarded_rest`.

Signing uses the stdlib (``hmac``/``hashlib``/``base64``), not ccxt: ccxt's signing is tied to
its REST request pipeline (``sign()`` builds URLs and headers), while a WebSocket login is a
documented one-line HMAC (exchange-protocols.md §3.6, §5.6). Adapters may not import ccxt at
all (style.md §1); ``tests/adapters/test_*_private.py`` check the signatures against ccxt's
own helpers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import wraps
from typing import Any, ClassVar, ParamSpec, TypeVar

import msgspec

from bookkeeper.errors import AdapterError
from bookkeeper.events import OrderStatus, PositionReport
from bookkeeper.ports import RestCall
from bookkeeper.types import TradeSide

from ._common import _excerpt, _r, loads, untyped_error

__all__ = [
    "AccountAdapterBase", "NoPositions", "convert", "guarded_rest", "hmac_sha256_base64", "hmac_sha256_hex",
    "json_body", "ms_ns", "money", "opt_text", "order_status", "quantity", "trade_side",
]

#: A plain decimal numeral as venues write money: sign, digits, optional fraction, optional
#: small exponent, ASCII digits only. ``Decimal()`` itself also takes ``"NaN"``, ``"1_000"``, ``" 1 "``,
#: ``"1e999999"`` and other scripts' digits (``"٣"``); none of them is a price.
_DECIMAL = re.compile(r"-?(?:\d{1,40}(?:\.\d{0,40})?|\.\d{1,40})(?:[eE][-+]?\d{1,2})?", re.ASCII)
#: no real balance, price or quantity is this large: anything above is a corrupt frame
_MONEY_MAX = Decimal(10) ** 24
#: millisecond timestamps: at most 16 digits (the ns value stays well inside int64)
_MS_MAX = 10**16

T = TypeVar("T")
P = ParamSpec("P")


def money(text: Any, what: str, exchange: str, raw: Any, symbol: str | None = None) -> Decimal:
    """An exact amount from the venue's decimal string.

    Args:
        text: the wire value (must be a ``str``).
        what: the field's name, for the error message.
        exchange: the venue, for the error.
        raw: the frame or body, for the error's excerpt.
        symbol: the instrument, when known.

    Returns:
        The amount (may be negative: balances, fees, signed positions).

    Raises:
        AdapterError: not a string, not a plain decimal numeral, or absurdly large.
    """
    if type(text) is not str or _DECIMAL.fullmatch(text) is None:
        raise AdapterError(f"{what} must be a decimal string, got {_r(text)}", exchange=exchange,
                           raw=_excerpt(raw), symbol=symbol)
    value = Decimal(text)
    if abs(value) >= _MONEY_MAX:
        raise AdapterError(f"{what} out of range: {_r(text)}", exchange=exchange, raw=_excerpt(raw), symbol=symbol)
    return value


def quantity(text: Any, what: str, exchange: str, raw: Any, symbol: str | None = None) -> Decimal:
    """A non-negative amount (quantity, price) from the venue's decimal string.

    Raises:
        AdapterError: as :func:`money`, or negative.
    """
    value = money(text, what, exchange, raw, symbol)
    if value < 0:
        raise AdapterError(f"{what} must not be negative, got {_r(text)}", exchange=exchange, raw=_excerpt(raw),
                           symbol=symbol)
    return value


def ms_ns(value: Any, what: str, exchange: str, raw: Any, symbol: str | None = None) -> int:
    """A venue millisecond timestamp (int, or digit string as OKX writes them) in ns; ``0``
    when absent (``None`` or ``""``: OKX leaves ``fillTime`` empty on non-fill reports).

    Raises:
        AdapterError: anything else (negative, a float, more than 16 digits, a bool).
    """
    if value is None or value == "":
        return 0
    if type(value) is str and value.isascii() and value.isdigit() and len(value) <= 16:
        return int(value) * 1_000_000
    if type(value) is int and 0 <= value < _MS_MAX:
        return value * 1_000_000
    raise AdapterError(f"bad {what} timestamp {_r(value)}", exchange=exchange, raw=_excerpt(raw), symbol=symbol)


def opt_text(value: str | None) -> str | None:
    """``None`` for an absent or empty id (venues write ``""`` for "none")."""
    return value or None


def order_status(table: Mapping[str, OrderStatus], value: str, exchange: str, raw: Any,
                 symbol: str | None = None) -> OrderStatus:
    """The :class:`OrderStatus` a venue's state name means.

    Raises:
        AdapterError: a state the table does not know (better one refused frame, which REST
            recovery repairs, than a guessed order state).
    """
    status = table.get(value)
    if status is None:
        raise AdapterError(f"unknown order state {_r(value)}", exchange=exchange, raw=_excerpt(raw), symbol=symbol)
    return status


def trade_side(table: Mapping[str, TradeSide], value: str, exchange: str, raw: Any,
               symbol: str | None = None) -> TradeSide:
    """The :class:`TradeSide` a venue's side name means (``"BUY"``, ``"buy"``, ``"Buy"``...).

    Raises:
        AdapterError: a side the table does not know.
    """
    side = table.get(value)
    if side is None:
        raise AdapterError(f"bad side {_r(value)}", exchange=exchange, raw=_excerpt(raw), symbol=symbol)
    return side


def json_body(body: Any, exchange: str) -> Any:
    """A REST body as parsed JSON: ``bytes``/``str`` are parsed, anything else (ccxt's already
    parsed answer) is returned as it is.

    Raises:
        AdapterError: invalid JSON.
    """
    return loads(body, exchange) if isinstance(body, (bytes, bytearray, str)) else body


def convert(obj: Any, type_: type[T], exchange: str, raw: Any, symbol: str | None = None) -> T:
    """``msgspec.convert`` of an already-parsed JSON value into a wire-shape Struct (strict:
    a number where the venue writes a string is refused, and vice versa).

    Raises:
        AdapterError: the value does not have the shape (the message names the path).
    """
    try:
        return msgspec.convert(obj, type_)
    except msgspec.ValidationError as exc:
        raise AdapterError(f"unexpected shape: {exc}", exchange=exchange, raw=_excerpt(raw), symbol=symbol) from None


def guarded_rest(exchange: str | None = None) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorate a REST-body parsing *method* (``self, body, ...``) so that it raises only
    :class:`AdapterError`: whatever else a malformed body makes it raise is wrapped (the body's
    bounded excerpt attached), as ``_common.FrameDecoder`` does for frames. Without
    ``exchange`` (a method of a base class several venues share) the error names ``self.name``."""

    def wrap(fn: Callable[P, T]) -> Callable[P, T]:
        @wraps(fn)
        def parse(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return fn(*args, **kwargs)
            except AdapterError:
                raise
            except Exception as exc:
                venue = exchange if exchange is not None else args[0].name  # type: ignore[attr-defined]
                raise untyped_error(exc, venue, args[1] if len(args) > 1 else kwargs.get("body")) from exc

        return parse

    return wrap


def hmac_sha256_hex(secret: str, message: str) -> str:
    """``hex(HMAC_SHA256(secret, message))`` (Binance request signatures)."""
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def hmac_sha256_base64(secret: str, message: str) -> str:
    """``base64(HMAC_SHA256(secret, message))`` (OKX ``sign``)."""
    return base64.b64encode(hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()).decode()


class AccountAdapterBase:
    """What the venues' :class:`~bookkeeper.ports.AccountAdapter` classes share: the repr, and
    the simplest dialogue as defaults a venue overrides where it differs (its module docstring
    says why):

    - no subscribe frames and no channels to wait for: the login (or the URL) subscribes, and
      ``LOGGED_IN`` completes the subscription;
    - no app-level ping: the server's protocol pings, which websockets answers, suffice;
    - no account-mark call: the balances answer carries the consistency mark (its
      ``ts_exchange_ns``).
    """

    name: str
    #: the answer :meth:`parse_account_mark`'s refusal names as the mark's carrier
    mark_source: ClassVar[str] = "the balances answer"

    def __repr__(self) -> str:
        return f"<AccountAdapter {self.name!r}>"

    def subscribe_messages(self, *, request_id: str) -> list[str]:
        """``[]``: logging in (or the URL) subscribes."""
        return []

    def subscribe_channels(self) -> frozenset[str]:
        """Empty: ``LOGGED_IN`` completes the subscription."""
        return frozenset()

    def ping_message(self) -> str | None:
        """``None``: no app-level ping (the server's protocol pings, or the venue's own
        heartbeats, are the traffic)."""
        return None

    def account_mark_call(self) -> RestCall | None:
        """``None``: the balances answer carries the consistency mark."""
        return None

    def parse_account_mark(self, body: Any, *, ts_recv_ns: int = 0) -> int:
        """Never called (no mark call).

        Raises:
            AdapterError: always: the mark is ``parse_balances``' ``ts_exchange_ns``.
        """
        raise AdapterError(f"no account mark call: {self.mark_source} carries the mark", exchange=self.name,
                           raw=_excerpt(body))


class NoPositions:
    """A spot account's positions: none (no derivative positions; nothing is ever asked)."""

    def positions_call(self) -> RestCall | None:
        """``None``: a spot account has no derivative positions."""
        return None

    def parse_positions(self, body: Any, *, ts_recv_ns: int = 0) -> list[PositionReport]:
        """``[]``: a spot account has no derivative positions (nothing is ever asked)."""
        return []
