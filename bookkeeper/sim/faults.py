"""Fault plans and per-venue fault state for the simulator.

Theory of operation: a fault is either *immediate* (it acts on the live connections or the
listeners at once: ``abort``, ``stall``, ``close_1000``, ``close_1001``) or *armed* (it waits in a
per-venue budget until the next matching thing passes through the server: a data frame for
``drop``/``duplicate``/``reorder``/``corrupt_checksum``, an HTTP request or WebSocket upgrade for
``http_429``/``http_418``, a REST snapshot for ``stale_snapshot``, an accepted TCP connection
for ``refuse``). ``conn_limit`` sets a per-IP connection cap. A :class:`FaultPlan` schedules
faults by time since start (``at_s``) or by the number of data frames the venue has published
(``after_frames``); scoped controls (``with sim.drop_frames(3):``) arm a budget that the scope
exit disarms. Counters in ``faults_injected`` are incremented only when a fault actually acted
(a frame dropped, a connection aborted, a request answered 429, ...).
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = [
    "DEMO_KINDS", "FAULTS", "FRAME_KINDS", "HTTP_KINDS", "PRIVATE_KINDS", "PUBLIC_KINDS", "FaultBudget", "FaultInfo", "FaultKind", "FaultPlan",
    "FaultScope", "FaultSpec",
]


class FaultKind(enum.StrEnum):
    """The fault names; the string values are the keys of ``faults_injected``."""

    ABORT = "abort"
    STALL = "stall"
    CLOSE_1000 = "close_1000"
    CLOSE_1001 = "close_1001"
    HTTP_429 = "http_429"
    HTTP_418 = "http_418"
    DROP = "drop"
    DUPLICATE = "duplicate"
    REORDER = "reorder"
    STALE_SNAPSHOT = "stale_snapshot"
    CORRUPT_CHECKSUM = "corrupt_checksum"
    REFUSE = "refuse"
    CONN_LIMIT = "conn_limit"
    SERVICE_RESTART = "service_restart"
    RESENT_SNAPSHOT = "resent_snapshot"
    PRIVATE_ABORT = "private_abort"
    PRIVATE_DROP = "private_drop"
    AUTH_EXPIRY = "auth_expiry"
    PRIVATE_HTTP_429 = "private_http_429"


class FaultScope(enum.Enum):
    """Where a fault acts, which decides how ``SimExchange.inject`` applies it."""

    #: at once, on the live connections (``VenueServer.apply_connection_fault``)
    CONNECTION = "connection"
    #: armed for the next data frames a connection's writer sends
    FRAME = "frame"
    #: armed for the next HTTP requests / WebSocket upgrades
    HTTP = "http"
    #: armed for the next REST depth answers (``VenueServer.rest_book``)
    REST = "rest"
    #: armed for the next accepted TCP connections, or (``outage=True``) a closed listener
    ACCEPT = "accept"
    #: a per-IP connection cap (``max``)
    LIMIT = "limit"
    #: at once, on the live private (account) connections (``PrivateDialect.apply_fault``)
    PRIVATE = "private"


@dataclass(frozen=True, slots=True)
class FaultInfo:
    """One fault kind's entry in :data:`FAULTS`."""

    scope: FaultScope
    #: what a real network or venue does that this imitates (CLI help, README)
    summary: str
    #: place in ``bookkeeper demo``'s visible default mix (1 = first; 0 = not in it). The demo's
    #: seeded schedule draws from the mix in this order, so the order is part of its results.
    demo: int = 0
    #: acts only on a venue's private side (account stream, signed REST); never in the demo
    #: mix nor in chaos's public default
    private: bool = False


#: The one registry of fault kinds: CLI choices, the chaos and demo schedules and the README
#: list are derived from it. A new kind is an enum member, an entry here and its hook (where
#: its scope acts: ``apply_connection_fault``, the frame writer, the HTTP gate, ``rest_book``).
FAULTS: Mapping[FaultKind, FaultInfo] = MappingProxyType({
    FaultKind.ABORT: FaultInfo(FaultScope.CONNECTION, "TCP abort without a close frame (the client sees 1006)",
                               demo=1),
    FaultKind.STALL: FaultInfo(FaultScope.CONNECTION, "silence: no data, no pongs (``duration_s``)", demo=2),
    FaultKind.CLOSE_1000: FaultInfo(FaultScope.CONNECTION, "clean close with code 1000"),
    FaultKind.CLOSE_1001: FaultInfo(FaultScope.CONNECTION, "server going away, close code 1001", demo=3),
    FaultKind.HTTP_429: FaultInfo(FaultScope.HTTP, "HTTP 429 with Retry-After on a request or upgrade", demo=7),
    FaultKind.HTTP_418: FaultInfo(FaultScope.HTTP, "HTTP 418 (IP ban after ignoring 429s) with Retry-After"),
    FaultKind.DROP: FaultInfo(FaultScope.FRAME, "a data frame never sent", demo=4),
    FaultKind.DUPLICATE: FaultInfo(FaultScope.FRAME, "a data frame sent twice", demo=5),
    FaultKind.REORDER: FaultInfo(FaultScope.FRAME, "a data frame swapped with its successor", demo=6),
    FaultKind.STALE_SNAPSHOT: FaultInfo(FaultScope.REST, "a REST snapshot ``lag`` ids behind the stream", demo=8),
    FaultKind.CORRUPT_CHECKSUM: FaultInfo(FaultScope.FRAME, "a wrong checksum on a checksum-bearing frame",
                                          demo=9),
    FaultKind.REFUSE: FaultInfo(FaultScope.ACCEPT, "connection refused (``outage=True``: listener closed)"),
    FaultKind.CONN_LIMIT: FaultInfo(FaultScope.LIMIT, "per-IP connection cap (``max``)"),
    # taken by the dialects whose venue does this (Bybit: ``venues/bybit.py``); armed elsewhere,
    # they never act (chaos schedules them only where the capabilities say a venue can)
    FaultKind.SERVICE_RESTART: FaultInfo(FaultScope.FRAME, "the venue's book service restarts: a snapshot with "
                                         "its ids restarted (Bybit ``u = 1``), deltas counting on from it"),
    FaultKind.RESENT_SNAPSHOT: FaultInfo(FaultScope.FRAME, "the venue re-sends its snapshot mid-stream (same "
                                         "id, same levels) after a delta"),
    FaultKind.PRIVATE_ABORT: FaultInfo(FaultScope.PRIVATE, "TCP abort of the private (account) connections only (1006)",
                                       private=True),
    FaultKind.PRIVATE_DROP: FaultInfo(FaultScope.FRAME, "a private order/fill frame never sent (REST history has it)",
                                      private=True),
    FaultKind.AUTH_EXPIRY: FaultInfo(FaultScope.PRIVATE, "the venue ends the authenticated session (Binance "
                                     "eventStreamTerminated, OKX 60011 \"Please log in\")", private=True),
    FaultKind.PRIVATE_HTTP_429: FaultInfo(FaultScope.HTTP, "HTTP 429 with Retry-After on private (signed) REST only",
                                          private=True),
})
FRAME_KINDS = frozenset(k for k, info in FAULTS.items() if info.scope is FaultScope.FRAME and not info.private)
HTTP_KINDS = frozenset(k for k, info in FAULTS.items() if info.scope is FaultScope.HTTP and not info.private)
#: kinds acting on the public side (chaos's default mix), in registry order
PUBLIC_KINDS: tuple[FaultKind, ...] = tuple(k for k, info in FAULTS.items() if not info.private)
#: kinds acting only on a venue's private side (accounts), in registry order
PRIVATE_KINDS: tuple[FaultKind, ...] = tuple(k for k, info in FAULTS.items() if info.private)
#: ``bookkeeper demo``'s visible default mix, in its order
DEMO_KINDS: tuple[FaultKind, ...] = tuple(sorted((k for k, info in FAULTS.items() if info.demo),
                                                 key=lambda k: FAULTS[k].demo))


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultSpec:
    """One scheduled fault.

    Exactly one of ``at_s`` (seconds after the simulator started) or ``after_frames`` (once
    the venue has published this many data frames) should be set; neither means "at start".
    ``venue=None`` targets every venue. ``params`` are kind-specific (``count``,
    ``retry_after_s``, ``lag``, ``duration_s``, ``max``, ``scope``, ``outage``).
    """

    kind: FaultKind
    at_s: float | None = None
    after_frames: int | None = None
    venue: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FaultKind(self.kind))


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """An ordered, immutable script of faults.

    >>> plan = FaultPlan.random(7, kinds=["drop", "abort"], rate_per_s=1.0, duration_s=5.0)
    >>> plan == FaultPlan.random(7, kinds=["drop", "abort"], rate_per_s=1.0, duration_s=5.0)
    True
    """

    faults: tuple[FaultSpec, ...] = ()

    @classmethod
    def scripted(cls, faults: Iterable[FaultSpec | tuple[Any, ...]]) -> FaultPlan:
        """Build a plan from specs or ``(at_s, kind[, params])`` tuples."""
        out: list[FaultSpec] = []
        for item in faults:
            if isinstance(item, FaultSpec):
                out.append(item)
            else:
                at_s, kind, *rest = item
                out.append(FaultSpec(kind=FaultKind(kind), at_s=at_s, params=rest[0] if rest else {}))
        return cls(tuple(out))

    @classmethod
    def random(
        cls,
        seed: int,
        kinds: Iterable[FaultKind | str],
        *,
        rate_per_s: float = 0.2,
        duration_s: float = 60.0,
        venues: Iterable[str] | None = None,
        start_s: float = 0.5,
    ) -> FaultPlan:
        """A seeded Poisson schedule of faults drawn uniformly from ``kinds``.

        Args:
            seed: the plan's only randomness; equal arguments give equal plans.
            kinds: fault kinds to draw from.
            rate_per_s: mean faults per second.
            duration_s: schedule faults in ``[start_s, start_s + duration_s)``.
            venues: venues to target (``None`` = every venue).
        """
        rng = random.Random(seed)
        kind_list = [FaultKind(k) for k in kinds]
        venue_list: list[str | None] = list(venues) if venues is not None else [None]
        out: list[FaultSpec] = []
        t = start_s
        while kind_list and rate_per_s > 0:
            t += rng.expovariate(rate_per_s)
            if t >= start_s + duration_s:
                break
            out.append(
                FaultSpec(kind=rng.choice(kind_list), at_s=round(t, 6), venue=rng.choice(venue_list))
            )
        return cls(tuple(out))


class FaultBudget:
    """Armed fault counts for one venue (the mutable part of fault injection).

    ``None`` as a count means "unlimited until disarmed" (used by scoped controls).
    """

    __slots__ = ("_armed", "params")

    def __init__(self) -> None:
        self._armed: dict[FaultKind, list[int | None]] = {}
        self.params: dict[FaultKind, Mapping[str, Any]] = {}

    def arm(self, kind: FaultKind, count: int | None = 1, params: Mapping[str, Any] | None = None) -> list[int | None]:
        """Arm ``count`` occurrences of ``kind``; returns the cell a scope can disarm."""
        cell: list[int | None] = [count]
        self._armed.setdefault(kind, []).append(cell)
        if params is not None:
            self.params[kind] = params
        return cell

    def disarm(self, kind: FaultKind, cell: list[int | None]) -> None:
        cells = self._armed.get(kind, [])
        for i, c in enumerate(cells):
            if c is cell:
                del cells[i]
                break

    def armed(self, kind: FaultKind) -> bool:
        return any(c[0] is None or c[0] > 0 for c in self._armed.get(kind, []))

    def take(self, kind: FaultKind) -> bool:
        """Consume one armed occurrence of ``kind``; False when none is armed."""
        cells = self._armed.get(kind)
        if not cells:
            return False
        for cell in cells:
            if cell[0] is None:
                return True
            if cell[0] > 0:
                cell[0] -= 1
                if cell[0] == 0:
                    self.disarm(kind, cell)
                return True
        return False
