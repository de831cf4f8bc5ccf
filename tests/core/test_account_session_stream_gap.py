"""AccountSession and a sequenced private stream (``PrivateControlKind.STREAM_GAP``), and a venue
that never streams fills (every fill is an order-gap replay). Synchronous, no mocks: the
``Harness`` of test_account_session applies what the session says to a real ledger."""

from __future__ import annotations

from test_account_session import LOGGED_IN, OKXLIKE, SYMS, T0, D, Harness, S, fill, kinds, order

from bookkeeper.account_session import AccountPolicy
from bookkeeper.actions import AccountPlanKind, AccountState, ApplyAccountEvents, FetchFillsSince, FillCursor
from bookkeeper.events import CloseReason, OrderStatus, PrivateControl, PrivateControlKind

MS = 1_000_000


def gap(since_ns: int) -> PrivateControl:
    return PrivateControl(kind=PrivateControlKind.STREAM_GAP, message="sequence_num 7 -> 9", since_ns=since_ns)


def test_stream_gap_while_synced_replays_every_symbol_from_the_last_message_before_it() -> None:
    h = Harness(history=OKXLIKE, policy=AccountPolicy(reconcile_interval_s=None, lookback_s=0.5))
    h.synced_from_scratch()
    h.run(h.s.handle([fill(1, ts=T0 + S)], T0 + S))
    # the frame after the gap names the last message received before it (T0 + 2 s)
    out = h.run(h.s.handle([gap(T0 + 2 * S), order("A", filled="0", ts=T0 + 4 * S, status=OrderStatus.NEW)],
                           T0 + 4 * S))
    assert h.s.state is AccountState.RECOVERING and h.s.stats.stream_gaps == 1
    replays = {a.symbol: a for a in out if isinstance(a, FetchFillsSince)}
    assert set(replays) == set(SYMS)
    # the quiet symbol reads from the gap's start; BTCUSDT's cursor (T0 + 1 s) is before it too
    assert all(a.cursor == FillCursor(ts_ns=T0 + 2 * S) for a in replays.values())
    assert all(a.since_ns == T0 + 2 * S - S // 2 for a in replays.values())  # less the lookback
    assert "stream_gap" in h.s.plans[-1].reason and h.s.plans[-1].kind is AccountPlanKind.REPLAY
    # the order report of the same frame is held, then applied after the replay
    h.s.replayed("BTCUSDT", exhausted=True, pages=1, newest_ns=None, now_ns=T0 + 5 * S)
    out = h.run(h.s.replayed("ETHUSDT", exhausted=True, pages=1, newest_ns=None, now_ns=T0 + 5 * S))
    assert kinds(out) == [ApplyAccountEvents] and h.s.state is AccountState.SYNCED


def test_stream_gap_during_a_recovery_replays_again_once_it_is_done() -> None:
    h = Harness(history=OKXLIKE, policy=AccountPolicy(reconcile_interval_s=None, lookback_s=0.0))
    h.synced_from_scratch()
    h.s.closed(T0 + S, CloseReason.ABNORMAL_CLOSURE)
    h.s.opened(T0 + 2 * S)
    h.s.handle([LOGGED_IN], T0 + 2 * S)
    assert h.s.state is AccountState.RECOVERING
    assert h.s.handle([gap(T0 + 3 * S)], T0 + 3 * S) == []  # held events are now incomplete
    h.s.replayed("BTCUSDT", exhausted=True, pages=1, newest_ns=None, now_ns=T0 + 4 * S)
    out = h.run(h.s.replayed("ETHUSDT", exhausted=True, pages=1, newest_ns=None, now_ns=T0 + 4 * S))
    # synced for a moment, then at once a replay from the gap's start
    assert h.s.state is AccountState.RECOVERING
    replays = [a for a in out if isinstance(a, FetchFillsSince)]
    assert {a.symbol for a in replays} == set(SYMS) and all(a.since_ns == T0 + 3 * S for a in replays)
    assert h.s.stats.stream_gaps == 1 and "lost during the last recovery" in h.s.plans[-1].reason


def test_a_stream_gap_and_an_order_gap_in_one_recovery_replay_from_the_earlier_start() -> None:
    h = Harness(history=OKXLIKE, policy=AccountPolicy(reconcile_interval_s=None, lookback_s=0.0,
                                                      order_gap_lookback_s=1.0))
    h.synced_from_scratch()
    h.s.closed(T0 + 5 * S, CloseReason.ABNORMAL_CLOSURE)
    h.s.opened(T0 + 6 * S)
    h.s.handle([LOGGED_IN], T0 + 6 * S)
    # held: an order report claiming a fill no one delivered (order gap from T0 + 3 s, its
    # report's time less the lookback), then the stream's own numbering skipped at T0 + 7 s
    assert h.s.handle([order("A", filled="1", ts=T0 + 4 * S)], T0 + 6 * S) == []
    assert h.s.handle([gap(T0 + 7 * S)], T0 + 7 * S) == []
    h.s.replayed("BTCUSDT", exhausted=True, pages=1, newest_ns=None, now_ns=T0 + 8 * S)
    out = h.run(h.s.replayed("ETHUSDT", exhausted=True, pages=1, newest_ns=None, now_ns=T0 + 8 * S))
    replays = [a for a in out if isinstance(a, FetchFillsSince)]
    # one replay of every symbol, from the earlier of the two starts: the order's gap is covered
    assert {a.symbol for a in replays} == set(SYMS) and all(a.since_ns == T0 + 3 * S for a in replays), replays
    assert h.s.stats.order_gaps == 1 and h.s.stats.stream_gaps == 1


def test_stream_gap_before_a_plan_or_while_disconnected_needs_nothing_of_its_own() -> None:
    h = Harness(history=OKXLIKE)
    h.s.opened(T0)
    assert h.s.handle([gap(T0)], T0) == []  # AUTHENTICATING: the plan made once subscribed covers it
    h.s.closed(T0 + S, CloseReason.ABNORMAL_CLOSURE)
    assert h.s.handle([gap(T0)], T0 + S) == []
    assert h.s.stats.stream_gaps == 1


def test_a_venue_without_fill_pushes_replays_each_new_cumulative_quantity_once() -> None:
    # Coinbase's user channel: order reports only; every fill is fetched by an order-gap replay
    h = Harness(history=OKXLIKE, policy=AccountPolicy(reconcile_interval_s=None, lookback_s=0.0))
    h.synced_from_scratch()
    h.run(h.s.handle([order("A", filled="0", ts=T0 + S, status=OrderStatus.NEW)], T0 + S))
    for n, filled in ((1, "1"), (2, "2")):
        ts = T0 + (1 + n) * S
        out = h.run(h.s.handle([order("A", filled=filled, ts=ts)], ts))
        (replay,) = [a for a in out if isinstance(a, FetchFillsSince)]
        assert replay.symbol == "BTCUSDT" and replay.cursor.ts_ns == ts - S  # from the previous report
        h.ledger.apply_fill(h.s.account, fill(n, ts=ts, order="A"))  # what the replay found
        h.run(h.s.replayed("BTCUSDT", exhausted=True, pages=1, newest_ns=ts, now_ns=ts + MS))
        assert h.s.state is AccountState.SYNCED
    assert h.s.stats.order_gaps == 2
    # the same quantity again (a duplicate report) or one the replay could not find: no loop
    h.run(h.s.handle([order("A", filled="2", ts=T0 + 4 * S)], T0 + 4 * S))
    out = h.run(h.s.handle([order("A", filled="3", ts=T0 + 5 * S)], T0 + 5 * S))
    h.run(h.s.replayed("BTCUSDT", exhausted=True, pages=1, newest_ns=None, now_ns=T0 + 5 * S + MS))
    assert h.s.stats.order_gaps == 3
    out = h.run(h.s.handle([order("A", filled="3", ts=T0 + 6 * S)], T0 + 6 * S))
    assert kinds(out) == [ApplyAccountEvents] and h.s.stats.order_gaps == 3


def test_an_order_report_held_during_a_recovery_is_checked_when_applied() -> None:
    h = Harness(history=OKXLIKE, policy=AccountPolicy(reconcile_interval_s=None, lookback_s=0.0))
    h.synced_from_scratch()
    h.run(h.s.handle([order("B", filled="0", ts=T0 + S, status=OrderStatus.NEW, symbol="ETHUSDT")], T0 + S))
    h.s.closed(T0 + 2 * S, CloseReason.ABNORMAL_CLOSURE)
    h.s.opened(T0 + 3 * S)
    h.s.handle([LOGGED_IN], T0 + 3 * S)
    # while the replay runs, B reports a fill the replay (already read) did not see
    h.s.handle([order("B", filled="1", ts=T0 + 4 * S, symbol="ETHUSDT")], T0 + 4 * S)
    h.s.replayed("BTCUSDT", exhausted=True, pages=1, newest_ns=None, now_ns=T0 + 5 * S)
    out = h.run(h.s.replayed("ETHUSDT", exhausted=True, pages=1, newest_ns=None, now_ns=T0 + 5 * S))
    assert [type(a) for a in out if not hasattr(a, "old")][:1] == [ApplyAccountEvents]
    (replay,) = [a for a in out if isinstance(a, FetchFillsSince)]
    assert replay.symbol == "ETHUSDT" and h.s.stats.order_gaps == 1 and h.s.state is AccountState.RECOVERING


def test_an_order_report_from_before_the_baseline_is_not_an_order_gap() -> None:
    h = Harness(history=OKXLIKE)
    h.run(h.s.opened(T0))
    h.run(h.s.handle([LOGGED_IN], T0))
    # a report held during the full sync, older than its as_of: its fills are in the baseline
    h.s.handle([order("C", filled="2", ts=T0 + S, status=OrderStatus.FILLED)], T0 + S)
    out = h.full_sync(T0 + 2 * S, balances={"USDT": D("800")})
    assert h.s.state is AccountState.SYNCED and h.s.stats.order_gaps == 0
    assert [a for a in out if isinstance(a, FetchFillsSince)] == []


def test_a_held_fill_the_replay_also_fetched_counts_once_towards_its_order() -> None:
    # the replay read fill 1 over REST, and the stream's copy of it was held: the order's count
    # must stay 1, so its next report (2 filled, fill 2 lost) is an order gap
    h = Harness(history=OKXLIKE, policy=AccountPolicy(reconcile_interval_s=None, lookback_s=0.0))
    h.synced_from_scratch()
    h.run(h.s.handle([order("A", filled="0", ts=T0 + S, status=OrderStatus.NEW)], T0 + S))
    h.s.closed(T0 + 2 * S, CloseReason.ABNORMAL_CLOSURE)
    h.s.opened(T0 + 3 * S)
    h.s.handle([LOGGED_IN], T0 + 3 * S)
    f1 = fill(1, ts=T0 + 4 * S, order="A")
    assert h.s.handle([f1, order("A", filled="1", ts=T0 + 4 * S)], T0 + 4 * S) == []  # held
    h.ledger.apply_fill(h.s.account, f1)  # what the replay found
    h.s.replayed("BTCUSDT", exhausted=True, pages=1, newest_ns=T0 + 4 * S, now_ns=T0 + 5 * S)
    h.run(h.s.replayed("ETHUSDT", exhausted=True, pages=1, newest_ns=None, now_ns=T0 + 5 * S))
    assert h.s.state is AccountState.SYNCED and h.s.stats.order_gaps == 0
    out = h.run(h.s.handle([order("A", filled="2", ts=T0 + 6 * S)], T0 + 6 * S))
    (replay,) = [a for a in out if isinstance(a, FetchFillsSince)]
    assert replay.symbol == "BTCUSDT" and h.s.stats.order_gaps == 1


def test_a_fill_the_stream_sends_twice_counts_once_towards_its_order() -> None:
    h = Harness(history=OKXLIKE, policy=AccountPolicy(reconcile_interval_s=None, lookback_s=0.0))
    h.synced_from_scratch()
    f1 = fill(1, ts=T0 + S, order="A")
    h.run(h.s.handle([f1, order("A", filled="1", ts=T0 + S)], T0 + S))
    h.run(h.s.handle([f1], T0 + 2 * S))  # re-sent: the ledger ignores it, and so must the count
    out = h.run(h.s.handle([order("A", filled="2", ts=T0 + 3 * S)], T0 + 3 * S))
    assert [a.symbol for a in out if isinstance(a, FetchFillsSince)] == ["BTCUSDT"]


def test_a_stream_gap_of_unknown_start_replays_from_the_newest_event_seen_not_from_now() -> None:
    h = Harness(history=OKXLIKE, policy=AccountPolicy(reconcile_interval_s=None, lookback_s=0.0))
    h.synced_from_scratch()
    h.run(h.s.handle([fill(1, ts=T0 + S)], T0 + S))
    out = h.run(h.s.handle([gap(0)], T0 + 9 * S))  # since_ns 0: the venue could not say
    replays = {a.symbol: a for a in out if isinstance(a, FetchFillsSince)}
    assert set(replays) == set(SYMS) and replays["ETHUSDT"].cursor == FillCursor(ts_ns=T0 + S)
