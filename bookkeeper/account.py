"""Account recovery: after a private-channel gap, replay the missed fills or full-sync. Pure.

Theory of operation
-------------------
No venue numbers a user's private events gaplessly (exchange-protocols.md §2.4), so every gap
on a private channel (a disconnect, an auth expiry, a restart from the store) is closed from
REST. The driver re-authenticates and resubscribes (buffering what the stream sends), then asks
:func:`plan_account_recovery` which of two ways to take, and runs the plan's actions:

- ``REPLAY``: one :class:`~bookkeeper.actions.FetchFillsSince` per symbol, from the ledger's
  cursor up to the end of the gap, paged. Every fill goes through the ledger, which ignores
  the ones it has (idempotent by fill id).
- ``FULL_SYNC``: one :class:`~bookkeeper.actions.FullSync`: balances, positions and open
  orders become the ledger's baseline and the cursors move to its time.

Replay is chosen only when it provably can close the gap within bounds: every symbol has a
cursor, the oldest fill needed is inside the venue's history window, and the estimated number
of requests fits the page budget. Otherwise a full sync. A replay that ends at its page cap
with history left was estimated short: :func:`escalate_to_full_sync`.

**Window.** A replay reads from ``since = cursor.ts_ns - lookback_ns`` to the gap's end
``until``. It is possible when ``until - since <= retention_ns`` (the venue serves fills that
old; ``None`` = no documented limit). The boundary is inclusive.

**Pages.** A page that returns fewer rows than the page size proves the end of the history,
so ``n`` fills paged by trade id take ``n // page_size + 1`` requests. Paging by time range
(or by id when the cursor has no trade id yet, e.g. just after a full sync), the range is cut
into slices of at most ``max_span_ns`` (Binance spot myTrades: ``endTime - startTime <= 24
h``), each costing a request even when empty: ``max(1, ceil(span / max_span_ns)) + n //
page_size`` (an upper bound: exact when the fills fall in one slice). ``n`` is the caller's
estimate (:func:`estimate_fills` from the ledger's recent fill rate); the budget is for the
whole account (all symbols share the venue's rate limit).

Venue figures (``FillHistory`` values) are declared beside each adapter, e.g. from
exchange-protocols.md: Binance spot ``GET /api/v3/myTrades`` (§3.6, table §2.4): ``limit <=
1000``, ``fromId`` paging, ``endTime - startTime <= 24 h``, no documented retention limit; OKX
``GET /api/v5/trade/fills-history`` (§5.6): last 3 months, ``limit <= 100``, ``begin``/``end``
with ``after``/``before`` paging (``/trade/fills``: last 3 days).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from .actions import AccountPlanKind, FetchFillsSince, FillCursor, FullSync
from .capabilities import FillHistory, FillPaging
from .ledger import AccountKey

__all__ = [
    "AccountGap", "AccountRecoveryPlan", "FillHistory", "FillPaging", "SymbolEstimate", "escalate_to_full_sync",
    "estimate_fills", "estimate_pages", "plan_account_recovery",
]

NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountGap:
    """A time the ledger may have missed private events.

    Attributes:
        account: the account.
        started_ns: the last private event received before it (or the ledger's load time on a
            restart), exchange-clock ns; for the record.
        ended_ns: when the channel was back (resubscribed), exchange-clock ns; the replay's
            upper bound.
    """

    account: AccountKey
    started_ns: int
    ended_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SymbolEstimate:
    """What replaying one symbol would cost.

    Attributes:
        symbol: the instrument.
        cursor: the ledger's cursor (``None``: nothing to replay from).
        since_ns: where the replay starts (cursor time minus the lookback).
        age_ns: ``until - since``: how old the oldest fill needed is.
        est_fills: the caller's estimate of fills to fetch.
        pages: requests estimated (``None`` without a cursor).
        in_window: the venue still serves fills that old.
    """

    symbol: str
    cursor: FillCursor | None
    since_ns: int | None
    age_ns: int | None
    est_fills: int
    pages: int | None
    in_window: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountRecoveryPlan:
    """A decision of :func:`plan_account_recovery`, with its reason (logged, counted, put in
    disconnect records).

    Attributes:
        kind: replay or full sync.
        reason: why this kind (with the figures that decided).
        account: the account.
        actions: what the driver runs, in order.
        estimated_pages: the replay's estimated requests over all symbols (``None`` when a
            symbol has no cursor).
        page_budget: the budget it was held against.
        estimates: per symbol, sorted.
    """

    kind: AccountPlanKind
    reason: str
    account: AccountKey
    actions: tuple[FetchFillsSince | FullSync, ...]
    estimated_pages: int | None
    page_budget: int
    estimates: tuple[SymbolEstimate, ...] = ()

    def as_record(self) -> dict[str, object]:
        """The plan as JSON-ready values for a disconnect record."""
        return {
            "kind": str(self.kind), "reason": self.reason, "venue": self.account.venue,
            "account": self.account.account, "estimated_pages": self.estimated_pages,
            "page_budget": self.page_budget,
            "symbols": [{"symbol": e.symbol, "since_ns": e.since_ns, "age_ns": e.age_ns, "est_fills": e.est_fills,
                         "pages": e.pages, "in_window": e.in_window} for e in self.estimates],
        }


def estimate_fills(recent_fills: int, recent_span_ns: int, span_ns: int) -> int:
    """Fills expected in ``span_ns`` at the rate of ``recent_fills`` per ``recent_span_ns``,
    rounded up (integer arithmetic: no float).

    Args:
        recent_fills: fills observed in a recent window (``PositionLedger.count_fills``).
        recent_span_ns: that window's length (<= 0: the count is taken as is).
        span_ns: the span to estimate for.

    Returns:
        The estimate (>= 0).

    >>> estimate_fills(10, 60 * NS_PER_S, 90 * NS_PER_S)
    15
    >>> estimate_fills(1, 3, 10)
    4
    """
    if recent_fills <= 0 or span_ns <= 0:
        return 0
    if recent_span_ns <= 0:
        return recent_fills
    return -(-recent_fills * span_ns // recent_span_ns)


def estimate_pages(history: FillHistory, *, cursor: FillCursor, until_ns: int, fills: int, lookback_ns: int = 0) -> int:
    """Requests a replay of ``fills`` fills from ``cursor`` to ``until_ns`` takes (module
    docstring, *Pages*).

    Args:
        history: the venue's fills endpoint.
        cursor: where the replay starts.
        until_ns: where it ends.
        fills: estimated fills to fetch.
        lookback_ns: safety margin before the cursor's time (time-range replays).

    Returns:
        The number of requests (>= 1).

    >>> h = FillHistory(page_size=1000, paging=FillPaging.FROM_ID, max_span_ns=86_400 * NS_PER_S)
    >>> estimate_pages(h, cursor=FillCursor(ts_ns=0, trade_id="7"), until_ns=10**15, fills=1000)
    2
    >>> estimate_pages(h, cursor=FillCursor(ts_ns=0), until_ns=2 * 86_400 * NS_PER_S + 1, fills=0)
    3
    """
    extra = max(fills, 0) // history.page_size
    if history.paging is FillPaging.FROM_ID and cursor.trade_id is not None:
        return extra + 1
    span = max(until_ns - (cursor.ts_ns - lookback_ns), 0)
    slices = 1 if history.max_span_ns is None else max(1, -(-span // history.max_span_ns))
    return slices + extra


def plan_account_recovery(
    gap: AccountGap,
    *,
    cursors: Mapping[str, FillCursor | None],
    history: FillHistory,
    page_budget: int,
    est_fills: Mapping[str, int] | None = None,
    lookback_ns: int = 0,
    reason: str = "private channel gap",
    until_ns: int | None = None,
) -> AccountRecoveryPlan:
    """Replay the gap's fills from the cursors, or full-sync (module docstring).

    Args:
        gap: the account and the gap's span.
        cursors: the ledger's cursor per symbol of the account (``PositionLedger.cursors``).
        history: the venue's fills endpoint.
        page_budget: the most requests a replay may take, over all symbols.
        est_fills: estimated missed fills per symbol (missing: 0).
        lookback_ns: safety margin before each cursor's time (time-range replays).
        reason: what caused the recovery (carried into the plan's reason).
        until_ns: where the replay reads up to (default ``gap.ended_ns``; a little past it
            covers a venue clock that runs ahead of ours).

    Returns:
        The plan. REPLAY only when every symbol has a cursor within the venue's window and
        the estimated pages fit the budget; each ``FetchFillsSince`` may use its own
        estimate plus the budget's slack.
    """
    account, until = gap.account, gap.ended_ns if until_ns is None else until_ns
    span_text = f"{reason} ({_seconds(gap.ended_ns - gap.started_ns)} long)"
    estimates: list[SymbolEstimate] = []
    for symbol in sorted(cursors):
        cursor, fills = cursors[symbol], max((est_fills or {}).get(symbol, 0), 0)
        if cursor is None:
            estimates.append(SymbolEstimate(symbol=symbol, cursor=None, since_ns=None, age_ns=None, est_fills=fills,
                                            pages=None, in_window=False))
            continue
        since = cursor.ts_ns - lookback_ns
        age = until - since
        estimates.append(SymbolEstimate(
            symbol=symbol, cursor=cursor, since_ns=since, age_ns=age, est_fills=fills,
            pages=estimate_pages(history, cursor=cursor, until_ns=until, fills=fills, lookback_ns=lookback_ns),
            in_window=history.retention_ns is None or age <= history.retention_ns))

    def full_sync(why: str, pages: int | None) -> AccountRecoveryPlan:
        text = f"{span_text}: {why}"
        return AccountRecoveryPlan(
            kind=AccountPlanKind.FULL_SYNC, reason=text, account=account,
            actions=(FullSync(venue=account.venue, account=account.account, reason=text),),
            estimated_pages=pages, page_budget=page_budget, estimates=tuple(estimates))

    if not estimates:
        return full_sync("no symbol has a cursor to replay from", None)
    missing = [e.symbol for e in estimates if e.cursor is None]
    if missing:
        return full_sync(f"no cursor for {', '.join(missing)} (never synced)", None)
    total = sum(e.pages or 0 for e in estimates)
    for e in estimates:
        if not e.in_window:
            return full_sync(f"{e.symbol}: fills since {_seconds(e.age_ns or 0)} ago are beyond the venue's "
                             f"{_seconds(history.retention_ns or 0)} history", total)
    if total > page_budget:
        return full_sync(f"replay needs ~{total} pages, budget {page_budget}", total)
    slack = page_budget - total
    text = f"{span_text}: replay ~{total} pages within budget {page_budget}"
    actions = tuple(
        FetchFillsSince(venue=account.venue, account=account.account, symbol=e.symbol, cursor=e.cursor,
                        since_ns=e.since_ns, until_ns=until, max_pages=(e.pages or 0) + slack, reason=text)
        for e in estimates if e.cursor is not None and e.since_ns is not None)
    return AccountRecoveryPlan(kind=AccountPlanKind.REPLAY, reason=text, account=account, actions=actions,
                               estimated_pages=total, page_budget=page_budget, estimates=tuple(estimates))


def escalate_to_full_sync(plan: AccountRecoveryPlan, *, reason: str) -> AccountRecoveryPlan:
    """Turn a replay that could not finish (its page cap reached with history left, the
    budget spent) into a full sync, keeping the estimates for the record.

    Args:
        plan: the replay plan.
        reason: what went wrong (``"BTCUSDT: 3 pages used, history left"``).

    Returns:
        A ``FULL_SYNC`` plan whose reason names both.
    """
    text = f"{plan.reason}; escalated: {reason}"
    return replace(plan, kind=AccountPlanKind.FULL_SYNC, reason=text,
                   actions=(FullSync(venue=plan.account.venue, account=plan.account.account, reason=text),))


def _seconds(ns: int) -> str:
    """Exact seconds for reasons (``90000s``, ``86400.000000001s``), no float rounding."""
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    whole, frac = divmod(ns, NS_PER_S)
    return f"{sign}{whole}s" if frac == 0 else f"{sign}{whole}.{frac:09d}".rstrip("0") + "s"
