"""Account recovery planner: replay vs full sync, with both boundaries (history window, page
budget) pinned to the nanosecond / to the fill."""

from __future__ import annotations

import doctest

import pytest

import bookkeeper.account
from bookkeeper.account import (
    NS_PER_S,
    AccountGap,
    FillHistory,
    FillPaging,
    escalate_to_full_sync,
    estimate_fills,
    estimate_pages,
    plan_account_recovery,
)
from bookkeeper.actions import AccountPlanKind, FetchFillsSince, FillCursor, FullSync
from bookkeeper.errors import InvalidEvent
from bookkeeper.ledger import AccountKey

DAY = 86_400 * NS_PER_S
# exchange-protocols.md §3.6 / §2.4: Binance spot GET /api/v3/myTrades: limit <= 1000, fromId
# paging, endTime - startTime <= 24 h, no retention limit documented.
BINANCE_SPOT = FillHistory(page_size=1000, paging=FillPaging.FROM_ID, max_span_ns=DAY)
# §5.6: OKX GET /api/v5/trade/fills-history: the last 3 months (the shortest 3 months, Feb-Apr,
# is 89 days), limit <= 100, begin/end + after/before paging.
OKX_HISTORY = FillHistory(page_size=100, paging=FillPaging.TIME_RANGE, retention_ns=89 * DAY)
# §5.6: OKX GET /api/v5/trade/fills: the last 3 days.
OKX_RECENT = FillHistory(page_size=100, paging=FillPaging.TIME_RANGE, retention_ns=3 * DAY)

BIN = AccountKey(venue="binance", account="main")
OKX = AccountKey(venue="okx", account="main")
NOW = 1_000 * DAY


def gap(account: AccountKey = OKX, *, ended: int = NOW, length: int = 5 * NS_PER_S) -> AccountGap:
    return AccountGap(account=account, started_ns=ended - length, ended_ns=ended)


def test_module_doctests_pass() -> None:
    result = doctest.testmod(bookkeeper.account)
    assert result.failed == 0 and result.attempted > 0


def test_short_gap_replays_from_each_cursor_within_budget() -> None:
    cursors = {"BTC-USDT": FillCursor(ts_ns=NOW - 60 * NS_PER_S, trade_id="42"), "ETH-USDT": FillCursor(ts_ns=NOW - DAY)}
    plan = plan_account_recovery(gap(), cursors=cursors, history=OKX_HISTORY, page_budget=10,
                                 est_fills={"BTC-USDT": 150})
    assert plan.kind is AccountPlanKind.REPLAY
    assert plan.estimated_pages == 3  # BTC: 150 // 100 + 1; ETH: 0 // 100 + 1
    assert plan.actions == (
        FetchFillsSince(venue="okx", account="main", symbol="BTC-USDT", cursor=cursors["BTC-USDT"],
                        since_ns=NOW - 60 * NS_PER_S, until_ns=NOW, max_pages=2 + 7, reason=plan.reason),
        FetchFillsSince(venue="okx", account="main", symbol="ETH-USDT", cursor=cursors["ETH-USDT"],
                        since_ns=NOW - DAY, until_ns=NOW, max_pages=1 + 7, reason=plan.reason),
    )
    assert plan.reason == "private channel gap (5s long): replay ~3 pages within budget 10"
    assert plan.as_record()["kind"] == "replay"


# ----------------------------------------------------------------------------- window boundary
@pytest.mark.parametrize("history", [OKX_HISTORY, OKX_RECENT], ids=["fills-history-3m", "fills-3d"])
def test_window_boundary_last_replay_and_first_full_sync(history: FillHistory) -> None:
    window = history.retention_ns
    assert window is not None
    oldest_replayable = FillCursor(ts_ns=NOW - window, trade_id="1")
    one_ns_older = FillCursor(ts_ns=NOW - window - 1, trade_id="1")
    last = plan_account_recovery(gap(), cursors={"BTC-USDT": oldest_replayable}, history=history, page_budget=5)
    first = plan_account_recovery(gap(), cursors={"BTC-USDT": one_ns_older}, history=history, page_budget=5)
    assert last.kind is AccountPlanKind.REPLAY
    assert first.kind is AccountPlanKind.FULL_SYNC
    assert first.actions == (FullSync(venue="okx", account="main", reason=first.reason),)
    assert f"beyond the venue's {window // NS_PER_S}s history" in first.reason


def test_lookback_counts_against_the_window() -> None:
    cursor = {"BTC-USDT": FillCursor(ts_ns=NOW - OKX_RECENT.retention_ns + 10, trade_id="1")}  # type: ignore[operator]
    assert plan_account_recovery(gap(), cursors=cursor, history=OKX_RECENT, page_budget=5,
                                 lookback_ns=10).kind is AccountPlanKind.REPLAY
    assert plan_account_recovery(gap(), cursors=cursor, history=OKX_RECENT, page_budget=5,
                                 lookback_ns=11).kind is AccountPlanKind.FULL_SYNC


def test_no_retention_limit_replays_any_age_by_trade_id() -> None:
    cursors = {"BTCUSDT": FillCursor(ts_ns=NOW - 400 * DAY, trade_id="77")}
    plan = plan_account_recovery(gap(BIN), cursors=cursors, history=BINANCE_SPOT, page_budget=1)
    assert plan.kind is AccountPlanKind.REPLAY and plan.estimated_pages == 1


# ----------------------------------------------------------------------------- budget boundary
def test_budget_boundary_by_fill_count_paging_by_id() -> None:
    cursors = {"BTCUSDT": FillCursor(ts_ns=NOW - 3600 * NS_PER_S, trade_id="77")}
    # n fills take n // 1000 + 1 requests: 1999 fills fit 2 pages, 2000 need a third
    last = plan_account_recovery(gap(BIN), cursors=cursors, history=BINANCE_SPOT, page_budget=2,
                                 est_fills={"BTCUSDT": 1999})
    first = plan_account_recovery(gap(BIN), cursors=cursors, history=BINANCE_SPOT, page_budget=2,
                                  est_fills={"BTCUSDT": 2000})
    assert (last.kind, last.estimated_pages) == (AccountPlanKind.REPLAY, 2)
    assert (first.kind, first.estimated_pages) == (AccountPlanKind.FULL_SYNC, 3)
    assert first.reason == "private channel gap (5s long): replay needs ~3 pages, budget 2"


def test_budget_boundary_by_time_slices_when_the_cursor_has_no_trade_id() -> None:
    # After a full sync the cursor is a time: myTrades is then asked in 24 h slices
    # (endTime - startTime <= 24 h), one request each even when empty.
    def plan(age: int):
        return plan_account_recovery(gap(BIN), cursors={"BTCUSDT": FillCursor(ts_ns=NOW - age)},
                                     history=BINANCE_SPOT, page_budget=2)
    assert (plan(2 * DAY).kind, plan(2 * DAY).estimated_pages) == (AccountPlanKind.REPLAY, 2)
    assert (plan(2 * DAY + 1).kind, plan(2 * DAY + 1).estimated_pages) == (AccountPlanKind.FULL_SYNC, 3)


def test_budget_is_shared_by_all_symbols() -> None:
    cursors = {s: FillCursor(ts_ns=NOW - NS_PER_S, trade_id="1") for s in ("A", "B", "C")}
    assert plan_account_recovery(gap(), cursors=cursors, history=OKX_HISTORY, page_budget=3).kind is AccountPlanKind.REPLAY
    assert plan_account_recovery(gap(), cursors=cursors, history=OKX_HISTORY, page_budget=2).kind is AccountPlanKind.FULL_SYNC


# ----------------------------------------------------------------------------- other decisions
def test_a_symbol_without_cursor_needs_a_full_sync() -> None:
    plan = plan_account_recovery(gap(), cursors={"A": FillCursor(ts_ns=NOW, trade_id="1"), "B": None},
                                 history=OKX_HISTORY, page_budget=10)
    assert plan.kind is AccountPlanKind.FULL_SYNC and plan.estimated_pages is None
    assert plan.reason.endswith("no cursor for B (never synced)")
    assert plan_account_recovery(gap(), cursors={}, history=OKX_HISTORY, page_budget=10).kind is AccountPlanKind.FULL_SYNC


def test_escalation_keeps_the_estimates_and_both_reasons() -> None:
    cursors = {"A": FillCursor(ts_ns=NOW - NS_PER_S, trade_id="1")}
    plan = plan_account_recovery(gap(), cursors=cursors, history=OKX_HISTORY, page_budget=4)
    escalated = escalate_to_full_sync(plan, reason="A: 4 pages used, history left")
    assert escalated.kind is AccountPlanKind.FULL_SYNC
    assert escalated.reason == plan.reason + "; escalated: A: 4 pages used, history left"
    assert escalated.actions == (FullSync(venue="okx", account="main", reason=escalated.reason),)
    assert escalated.estimates == plan.estimates


def test_estimates() -> None:
    assert estimate_fills(0, NS_PER_S, DAY) == 0
    assert estimate_fills(3, 0, DAY) == 3
    assert estimate_fills(10, 60 * NS_PER_S, 61 * NS_PER_S) == 11  # rounded up
    assert estimate_pages(OKX_HISTORY, cursor=FillCursor(ts_ns=NOW, trade_id="1"), until_ns=NOW - 5, fills=99) == 1
    with pytest.raises(InvalidEvent):
        FillHistory(page_size=0, paging=FillPaging.FROM_ID)
