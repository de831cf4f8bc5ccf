"""BookConnection: one WebSocket connection's book logic, with no I/O (sans-I/O).

Theory of operation
-------------------
Like websockets' ``Protocol``, a :class:`BookConnection` is fed what arrived and answers what
to do; it never reads a socket, a clock or a file. Three callers share it: the live driver
(:class:`bookkeeper.io.stream.StreamDriver`), ``bookkeeper replay``
(:func:`bookkeeper.io.replay.replay`) and the adapter tests' recorded-capture helper::

    frame (bytes | str, ts_recv_ns) ──▶ receive_frame() ──▶ Output: per-symbol actions,
                                                               frames to send, book updates,
                                                               data or not, rejections

- **Demultiplexing.** The venue's decoder (a fresh ``adapter.new_decoder()`` per connection)
  turns a frame into events; each book event (delta, snapshot, ticker) goes to its symbol's
  :class:`~bookkeeper.session.BookSession`: the sessions given, or, with a ``factory``, one
  created on first sight (replay). Events of unknown symbols are ignored.
- **The fused fast path.** In the synced steady state the venue's fused decode + apply
  (``adapter.fused``: C, or its pure-Python twin without the accelerator) is tried first
  for the session the previous delta went to; when it applied the frame,
  :meth:`receive_frame` returns ``None`` (no result object on the hot path) and :attr:`last_symbol` names the book that changed.
- **Control frames and notices.** A venue notice meaning "the connection's own sequence
  broke" (``NoticeKind.CONNECTION_GAP`` / ``CONNECTION_OUT_OF_ORDER``) reaches every session's
  ``on_connection_gap``; every notice is offered to ``adapter.reply_to`` (a frame to send
  back, e.g. Deribit's ``test_request`` answer) — no venue rule lives here.
- **Data or not.** :attr:`Output.data` says whether the frame carried market data (book,
  trade, fill): the staleness timer restarts only on data, never on pings, pongs or heartbeats.
- **Bad input.** Any exception while handling a frame is bad input for the symbol being
  handled (``session.on_invalid_input``; if that raises, ``halt``). A decoder's typed
  :class:`~bookkeeper.errors.AdapterError` is *malformed* input (expected); anything else is
  a *fault* (a bug somewhere), and a fault with no symbol known means the connection can no
  longer be trusted (:attr:`Rejected.trusted` is false: the driver drops it; a recording just
  goes on). The rejection carries the exception for the caller to log with its traceback.
- **Open / close.** :meth:`open` starts a fresh decoder and tells every session
  ``StreamOpened``; :meth:`close` tells every session ``StreamClosed``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import methodcaller
from typing import Any

import msgspec

from .actions import Action
from .errors import AdapterError
from .events import (
    BookDelta,
    BookSnapshot,
    BookTicker,
    Fill,
    NoticeKind,
    SnapshotSource,
    StreamClosed,
    StreamOpened,
    Trade,
    VenueNotice,
)
from .ports import Adapter
from .session import BookSession

__all__ = ["CONNECTION_GAPS", "BookConnection", "BookUpdate", "Emitted", "FaultKind", "Output", "Rejected",
           "SessionFactory"]

#: notice kinds meaning "this connection's own sequence broke": every book on it is suspect
CONNECTION_GAPS = frozenset({NoticeKind.CONNECTION_GAP, NoticeKind.CONNECTION_OUT_OF_ORDER})

#: builds the session of a symbol seen for the first time
SessionFactory = Callable[[str], BookSession]

_NONE: tuple[()] = ()
_DATA_TYPES = frozenset({BookDelta, BookSnapshot, BookTicker, Trade, Fill})


class BookUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """A synced book changed: read it with ``feed.book(symbol)``."""

    symbol: str
    seq: int | None
    ts_recv_ns: int
    #: the exchange timestamp of the event that produced this state (0 when unknown); for
    #: venues without ids it is the only way to tell which point of the stream a book is at
    ts_exchange_ns: int = 0


class FaultKind(enum.Enum):
    """Why an input was rejected."""

    #: the decoder raised :class:`~bookkeeper.errors.AdapterError`: a bad or foreign frame
    MALFORMED = "malformed"
    #: anything else raised (decoder, session, fused fast path): a bug somewhere
    FAULT = "fault"


@dataclass(frozen=True, slots=True, kw_only=True)
class Emitted:
    """The actions one session asked for, in the order they came."""

    symbol: str
    actions: list[Action]
    #: they answer a snapshot the venue pushed on the WebSocket (the driver records the plan
    #: and stops a REST fetch in flight once the book is synced)
    ws_snapshot: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected:
    """An input that raised, and what the session was told about it."""

    kind: FaultKind
    #: the book being handled when it raised, else ``None``
    symbol: str | None
    exc: Exception
    #: the text the session got (``str(exc)`` for malformed input, ``"Type: message"`` else)
    reason: str
    #: the session's answer (its next recovery rung, or its halt)
    actions: list[Action]
    #: what the session raised while recovering, then halting (both: ``trusted`` is false)
    errors: tuple[Exception, ...] = ()
    #: false: nothing on this connection can be trusted any more (drop it)
    trusted: bool = True


class Output(msgspec.Struct, frozen=True, kw_only=True):
    """What one frame (or one open / close fan-out) produced. Read-only."""

    #: the decoded events (``None``: the decoder failed or this is a fan-out)
    events: Sequence[object] | None = None
    #: the frame carried market data (book, trade, fill) and restarts the staleness timer
    data: bool = False
    emitted: Sequence[Emitted] = _NONE
    #: synced books this frame changed (only when the connection tracks updates)
    updates: Sequence[BookUpdate] = _NONE
    #: frames to send back (answers to venue notices)
    send: Sequence[str] = _NONE
    notices: Sequence[VenueNotice] = _NONE
    #: how many notices said the connection's own sequence broke
    connection_gaps: int = 0
    rejected: Sequence[Rejected] = _NONE

    @property
    def data_symbols(self) -> list[str]:
        """The symbols whose data (book, trade, fill) this frame carried (known or not)."""
        events = self.events
        return [e.symbol for e in events if type(e) in _DATA_TYPES] if events else []  # type: ignore[attr-defined]


class BookConnection:
    """One WebSocket connection's book logic (sans-I/O).

    Args:
        adapter: the venue adapter (its decoder, ``fused`` fast path and ``reply_to``, where
            it has them).
        sessions: the sessions of the symbols on this connection (the dict is used, not
            copied: the caller's mapping sees sessions the factory adds).
        factory: builds a session for a symbol seen for the first time; ``None``: events of
            symbols not in ``sessions`` are ignored.
        track_updates: build :class:`BookUpdate` values for :attr:`Output.updates` (the live
            driver's ``on_update``); off, nothing is allocated for them.

    >>> from bookkeeper.adapters import get_adapter
    >>> a = get_adapter("binance")
    >>> conn = BookConnection(a, factory=lambda s: BookSession(s, a.capabilities))
    >>> out = conn.receive_frame(b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":5,"u":6,"b":[["10","1"]],"a":[]}', 0)
    >>> out.data, list(conn.sessions), [type(x).__name__ for e in out.emitted for x in e.actions]
    (True, ['BTCUSDT'], ['FetchSnapshot', 'StateChanged'])
    """

    __slots__ = ("_adapter", "_decode", "_factory", "_fast", "_fused", "_reply", "_sessions", "_track")

    def __init__(
        self,
        adapter: Adapter,
        sessions: dict[str, BookSession] | None = None,
        *,
        factory: SessionFactory | None = None,
        track_updates: bool = False,
    ) -> None:
        self._adapter = adapter
        self._sessions: dict[str, BookSession] = sessions if sessions is not None else {}
        self._factory = factory
        #: this connection's decoder's ``decode`` (bound once: it runs on every frame)
        self._decode: Callable[[bytes | str, int], list[Any]] = adapter.new_decoder().decode
        #: the venue's fused decode + apply (C, or its pure-Python twin), or None
        self._fused: Callable[..., object] | None = getattr(adapter, "fused", None)
        #: the session the previous delta went to: tried first on the fast path
        self._fast: BookSession | None = None
        # LiveSpec.reply_to; adapters without a live dialogue have none (nothing to answer)
        self._reply: Callable[[VenueNotice], str | None] | None = getattr(adapter, "reply_to", None)
        self._track = track_updates

    # ------------------------------------------------------------------ observers
    @property
    def sessions(self) -> Mapping[str, BookSession]:
        return self._sessions

    @property
    def last_symbol(self) -> str | None:
        """The book the fast path tries first: the one the previous delta went to (after
        :meth:`receive_frame` returned ``None``, the book that frame changed)."""
        fast = self._fast
        return fast.symbol if fast is not None else None

    @property
    def last_session(self) -> BookSession | None:
        """The session of :attr:`last_symbol`."""
        return self._fast

    def session(self, symbol: str) -> BookSession | None:
        """The session of ``symbol``, created by the factory when there is one.

        Args:
            symbol: the venue's spelling of the instrument.

        Returns:
            The session, or ``None`` (unknown symbol, no factory).
        """
        s = self._sessions.get(symbol)
        if s is None and self._factory is not None:
            s = self._sessions[symbol] = self._factory(symbol)
        return s

    # ------------------------------------------------------------------ lifecycle
    def open(self, opened: StreamOpened) -> Output:
        """A connection opened: a fresh decoder, and ``opened`` for every session.

        Args:
            opened: the event every session gets.

        Returns:
            The sessions' actions and rejections (a session that raised is contained).
        """
        self._decode = self._adapter.new_decoder().decode
        self._fast = None
        return self._fan_out(lambda s: s.handle(opened))

    def close(self, closed: StreamClosed) -> Output:
        """The connection ended: ``closed`` for every session (they leave SYNCED, to resume
        or rebuild on the next connection).

        Args:
            closed: the event every session gets.

        Returns:
            The sessions' actions and rejections.
        """
        self._fast = None
        return self._fan_out(lambda s: s.handle(closed))

    def _fan_out(self, step: Callable[[BookSession], list[Action]]) -> Output:
        emitted: list[Emitted] = []
        rejected: list[Rejected] = []
        self._each_session(step, emitted, rejected)
        return Output(emitted=emitted, rejected=rejected)

    def _each_session(self, step: Callable[[BookSession], list[Action]], emitted: list[Emitted],
                      rejected: list[Rejected]) -> None:
        """``step`` for every session; one that raises is contained and the others go on."""
        for session in list(self._sessions.values()):
            try:
                actions = step(session)
            except Exception as exc:  # noqa: BLE001 - a containment boundary (the caller logs it)
                rejected.append(self.reject(FaultKind.FAULT, session.symbol, exc))
                continue
            if actions:
                emitted.append(Emitted(symbol=session.symbol, actions=actions))

    # ------------------------------------------------------------------ frames
    def receive_frame(self, frame: bytes | str, ts_recv_ns: int) -> Output | None:
        """Handle one frame. Never raises: see :attr:`Output.rejected`.

        Args:
            frame: the frame as received.
            ts_recv_ns: when it was received (wall clock ns).

        Returns:
            ``None`` when the fused fast path applied it to :attr:`last_session` (nothing else
            to do: the book changed, the frame was data), else what it produced.
        """
        fast = self._fast
        if fast is not None:
            # Synced steady state: the venue's fused decode + sequence check + apply for the
            # session the previous delta went to. It only ever answers "applied"; everything
            # else (other symbols, gaps, other messages) goes the normal way.
            try:
                if fast.apply_frame_fast(frame if type(frame) is bytes else frame.encode(),  # type: ignore[union-attr]
                                         self._fused):  # type: ignore[arg-type]
                    return None
            except Exception as exc:  # noqa: BLE001 - bad input for that book (see the module docstring)
                return Output(rejected=[self.reject(FaultKind.FAULT, fast.symbol, exc)])
        try:
            events = self._decode(frame, ts_recv_ns)
        except Exception as exc:  # noqa: BLE001 - bad input, never the caller's death (decode(), inlined)
            return self._undecodable(exc)
        if not events:
            return Output(events=events)
        return self._events(events, ts_recv_ns)

    def decode(self, frame: bytes | str, ts_recv_ns: int) -> list[Any] | Output:
        """The normal path's first step (what :meth:`receive_frame` does after the fast path
        declined): the frame's events, for :meth:`route`. A driver that must act between the
        two (the first data on a probe connection) calls them itself.

        Args:
            frame: the frame as received.
            ts_recv_ns: when it was received.

        Returns:
            The events, or the rejection when the decoder raised.
        """
        try:
            return self._decode(frame, ts_recv_ns)
        except Exception as exc:  # noqa: BLE001 - bad input, never the caller's death
            return self._undecodable(exc)

    def _undecodable(self, exc: Exception) -> Output:
        """The decoder raised: a typed ``AdapterError`` is malformed input, anything else a
        decoder bug; either is bad input for the book it names, if any."""
        sym = getattr(exc, "symbol", None)
        kind = FaultKind.MALFORMED if isinstance(exc, AdapterError) else FaultKind.FAULT
        return Output(rejected=[self.reject(kind, sym if sym in self._sessions else None, exc)])

    @staticmethod
    def carries_data(events: Sequence[object]) -> bool:
        """Whether ``events`` hold market data (book, trade, fill), not only control."""
        return any(type(e) in _DATA_TYPES for e in events)

    def route(self, events: list[Any], ts_recv_ns: int) -> Output:
        """The normal path's second step: ``events`` (one frame's) to their sessions.

        Args:
            events: what :meth:`decode` returned.
            ts_recv_ns: when the frame was received.

        Returns:
            What they produced.
        """
        if not events:
            return Output(events=events)
        return self._events(events, ts_recv_ns)

    def _events(self, events: list[Any], ts_recv_ns: int) -> Output:
        sessions = self._sessions
        track = self._track
        fused = self._fused is not None
        data = False
        emitted: Any = _NONE
        updates: Any = _NONE
        send: Any = _NONE
        notices: Any = _NONE
        rejected: Any = _NONE
        gaps = 0
        current: BookSession | None = None  # the session being fed when something raised
        try:
            for ev in events:
                t = type(ev)
                if t is BookDelta or t is BookSnapshot or t is BookTicker:
                    data = True
                    symbol = ev.symbol
                    session = sessions.get(symbol)
                    if session is None:
                        if self._factory is None:
                            continue
                        session = sessions[symbol] = self._factory(symbol)
                    current = session
                    actions = session.handle(ev)
                    ws = t is BookSnapshot and ev.source is SnapshotSource.WS
                    if actions or ws:
                        if emitted is _NONE:
                            emitted = []
                        emitted.append(Emitted(symbol=symbol, actions=actions, ws_snapshot=ws))
                    if t is BookDelta and fused:
                        self._fast = session
                    if track and t is not BookTicker and session.is_synced:
                        if updates is _NONE:
                            updates = []
                        updates.append(BookUpdate(symbol=symbol, seq=session.last_seq, ts_recv_ns=ts_recv_ns,
                                                  ts_exchange_ns=ev.ts_exchange_ns))
                    current = None
                elif t is Trade or t is Fill:
                    data = True
                elif t is VenueNotice:
                    if notices is _NONE:
                        notices = []
                    notices.append(ev)
                    if ev.kind in CONNECTION_GAPS:
                        gaps += 1
                        if emitted is _NONE:
                            emitted = []
                        if rejected is _NONE:
                            rejected = []
                        reason = f"{ev.kind}: {ev.message}"
                        self._each_session(methodcaller("on_connection_gap", reason), emitted, rejected)
                    reply = self._reply(ev) if self._reply is not None else None
                    if reply:
                        if send is _NONE:
                            send = []
                        send.append(reply)
        except Exception as exc:  # noqa: BLE001 - bad input for the book being handled (module docstring)
            if rejected is _NONE:
                rejected = []
            sym = current.symbol if current is not None else getattr(exc, "symbol", None)
            rejected.append(self.reject(FaultKind.FAULT, sym if sym in sessions else None, exc))
        if emitted is _NONE and updates is _NONE and notices is _NONE and rejected is _NONE:
            return Output(events=events, data=data)  # the usual frame: fewer fields to set
        return Output(events=events, data=data, emitted=emitted, updates=updates, send=send,
                      notices=notices, connection_gaps=gaps, rejected=rejected)

    # ------------------------------------------------------------------ bad input
    def reject(self, kind: FaultKind, symbol: str | None, exc: Exception) -> Rejected:
        """An input for ``symbol`` raised ``exc``: the session is told (:meth:`refuse`).

        Args:
            kind: malformed input (a decoder's ``AdapterError``) or a fault (anything else).
            symbol: the book the input was for, or ``None`` when unknown.
            exc: what was raised.

        Returns:
            The rejection, with the session's answer.
        """
        reason = str(exc) if kind is FaultKind.MALFORMED else f"{type(exc).__name__}: {exc}"
        if kind is FaultKind.MALFORMED and symbol is None:
            # a bad frame naming no book we keep: nothing was lost that we could tell
            return Rejected(kind=kind, symbol=None, exc=exc, reason=reason, actions=[])
        actions, errors, trusted = self.refuse(symbol, reason)
        return Rejected(kind=kind, symbol=symbol, exc=exc, reason=reason, actions=actions, errors=errors,
                        trusted=trusted)

    def refuse(self, symbol: str | None, reason: str, *, epoch: int | None = None) -> tuple[
            list[Action], tuple[Exception, ...], bool]:
        """Something went wrong with an input for ``symbol``: the book must not stay SYNCED on
        the word of a stream that may just have lost a delta.

        The session gets ``on_invalid_input(reason)`` (with ``epoch``, while not synced:
        ``on_snapshot_failed(epoch, reason)``, the next rung); if that raises it is halted;
        if even that raises, or ``symbol`` is ``None``, the connection cannot be trusted.

        Args:
            symbol: the book the input was for, or ``None`` when unknown.
            reason: what went wrong (the session's alert says it).
            epoch: the snapshot request the failed input answered, if any.

        Returns:
            ``(actions, errors, trusted)``: the session's answer, what it raised on the way,
            and false when the connection must be dropped.
        """
        self._fast = None  # the fused path's session may be mid-change: the normal path decides now
        session = self._sessions.get(symbol) if symbol is not None else None
        if session is None:
            return [], (), False
        try:
            if epoch is not None and not session.is_synced:
                return session.on_snapshot_failed(epoch, reason), (), True
            return session.on_invalid_input(reason), (), True
        except Exception as exc:  # noqa: BLE001 - a containment boundary
            first = exc
        try:
            return session.halt(reason), (first,), True
        except Exception as again:  # noqa: BLE001 - a session that cannot even halt: nothing here is trusted
            return [], (first, again), False
