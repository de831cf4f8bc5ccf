"""Base of the venues' private sides: the account WebSocket dialogue and the signed REST routes.

Theory of operation: a :class:`PrivateDialect` belongs to one venue server (it is the
server's ``private`` attribute when the venue's account is enabled) and to one
:class:`~bookkeeper.sim.account.SimAccount`. The server routes to it every WebSocket
connection on :attr:`PrivateDialect.ws_path` (``on_open``/``on_text``/``extra_tasks``) and
every REST request whose path it :meth:`handles_rest` (with the raw query string and the
headers, which signature checks need). The account calls :meth:`publish` with the changes of
each mutation; the dialect turns them into the venue's pushes on the connections whose session
is authenticated and subscribed.

Private event frames (orders/fills) are queued with ``Frame(private=True)``: never ``data``,
so the public frame faults (drop/duplicate/reorder/corrupt) leave them alone, while
``private_drop`` may lose one (the fill stays in REST history). Acks, balance and position
pushes are plain control frames. The public connection faults (abort/stall/close) hit private
connections too, as a real network would; ``private_abort`` and ``auth_expiry`` hit only them
(:meth:`apply_fault`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

import orjson
from websockets.datastructures import Headers

from .account import AccountChange, AccountProfile, SimAccount
from .engine import trim
from .faults import FaultKind
from .server import ClientConn, Frame, RestResult

if TYPE_CHECKING:
    from .server import VenueServer

__all__ = ["PrivateDialect", "DAY_MS", "trimmed"]

DAY_MS = 86_400_000


def trimmed(value: Decimal | None, *, none: str = "0") -> str:
    """A plain decimal without trailing zeros, as OKX, Bybit and Coinbase print amounts (zero,
    also ``-0``, is ``"0"``); ``none`` for no value."""
    if value is None:
        return none
    text = trim(f"{value:f}")
    return "0" if text in ("-0", "") else text


class PrivateDialect:
    """Shared plumbing of the private sides (see the module docstring).

    Subclasses set ``ws_path``, ``profile`` and ``rest_paths`` and implement :meth:`on_text`,
    :meth:`rest`, :meth:`end_session`, and either :meth:`publish` or its two hooks
    (:meth:`receives`, :meth:`push`: each change to each subscribed session, in order).
    """

    ws_path: ClassVar[str] = ""
    #: the venue's account: instruments, starting balances, id bases, fee rules
    profile: ClassVar[AccountProfile]
    rest_paths: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, server: VenueServer, account: SimAccount) -> None:
        self.server = server
        self.account = account
        account.subscribe(self.publish)

    # -- routing --------------------------------------------------------------------------

    def handles_rest(self, path: str) -> bool:
        return path in self.rest_paths

    def private_conns(self) -> list[ClientConn]:
        return [c for c in self.server.conns if c.path == self.ws_path]

    def extra_tasks(self, conn: ClientConn) -> list[asyncio.Task[None]]:
        return []

    def on_open(self, conn: ClientConn) -> None:
        """A private connection opened (no session yet: login/subscribe come as messages)."""

    def on_text(self, conn: ClientConn, text: str) -> None:  # pragma: no cover
        raise NotImplementedError

    def rest(self, path: str, raw_query: str, query: Mapping[str, str], headers: Headers) -> RestResult:  # pragma: no cover
        raise NotImplementedError

    def request(self, method: str, path: str, raw_query: str, query: Mapping[str, str], headers: Headers,
                body: bytes) -> RestResult:
        """One private REST request of any method (the server calls this). GET goes to
        :meth:`rest`; a dialect whose venue takes other methods (its server's ``rest_methods``)
        overrides this."""
        if method != "GET":
            return RestResult(405, {"error": f"{method} not allowed on {path}"})
        return self.rest(path, raw_query, query, headers)

    def check_upgrade(self, query: Mapping[str, str]) -> RestResult | None:
        """The refusal of a private-stream upgrade whose URL the venue rejects (an unknown
        listenKey), ``None`` to accept it (the default: credentials come as messages)."""
        return None

    def publish(self, changes: list[AccountChange]) -> None:
        """Push each change, in order, to every connection whose session :meth:`receives`
        pushes (:meth:`push`); dialects whose pushes are not one per change and session
        override this."""
        targets = [(c, c.session) for c in self.private_conns() if c.session is not None and self.receives(c.session)]
        for change in changes:
            for conn, session in targets:
                self.push(conn, session, change)

    def receives(self, session: Any) -> bool:  # pragma: no cover
        """Whether a connection's session is authenticated and subscribed to something."""
        raise NotImplementedError

    def push(self, conn: ClientConn, session: Any, change: AccountChange) -> None:  # pragma: no cover
        """Send what ``change`` means to ``conn``'s subscriptions (``session``)."""
        raise NotImplementedError

    def end_session(self, conn: ClientConn) -> bool:  # pragma: no cover
        """End ``conn``'s authenticated session the venue's way; False when it had none."""
        raise NotImplementedError

    # -- sending --------------------------------------------------------------------------

    def send_control(self, conn: ClientConn, obj: Any) -> None:
        """An ack/answer/balance/position push (no fault but the connection faults touches it)."""
        conn.send(Frame(orjson.dumps(obj).decode()))
        self.server.sim.notify()

    def send_event(self, conn: ClientConn, obj: Any) -> None:
        """An order/fill push: the frame ``private_drop`` may lose."""
        conn.send(Frame(orjson.dumps(obj).decode(), private=True))
        self.server.sim.notify()

    # -- faults ---------------------------------------------------------------------------

    def apply_fault(self, kind: FaultKind, params: Mapping[str, Any]) -> int:
        """``private_abort`` / ``auth_expiry`` on the live private connections.

        Returns:
            connections affected (0: nothing to act on, so nothing is counted).
        """
        conns = sorted(self.private_conns(), key=lambda c: int(c.conn_id.rsplit("-", 1)[1]))
        if "conn_index" in params:
            conns = conns[int(params["conn_index"]):][:1]
        affected = 0
        for conn in conns:
            if kind is FaultKind.PRIVATE_ABORT:
                conn.ws.transport.abort()  # no close frame: the client sees 1006
                affected += 1
            elif kind is FaultKind.AUTH_EXPIRY:
                affected += self.end_session(conn)
        return affected

    # -- history windows ----------------------------------------------------------------------

    def window_ms(self, real_ms: int | None) -> int | None:
        """The fills-history window: ``SimConfig.account_history_retention_s`` if set, else
        the venue's real window (``None``: no window)."""
        override = self.server.sim.config.account_history_retention_s
        if override is not None:
            return int(override * 1000) if real_ms is None else min(int(override * 1000), real_ms)
        return real_ms

    def oldest_ms(self, real_ms: int | None, *, now_ms: int | None = None) -> int:
        """The oldest fill time the history serves at ``now_ms`` (default: the account clock
        now): :meth:`window_ms` back from it; 0: all of it."""
        window = self.window_ms(real_ms)
        if window is None:
            return 0
        return (self.account.now_ms() if now_ms is None else now_ms) - window
