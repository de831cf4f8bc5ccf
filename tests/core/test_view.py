"""BookView: the read-only face of a live book (what ``Feed.book`` returns)."""

from __future__ import annotations

import pytest

from bookkeeper.actions import SyncState
from bookkeeper.capabilities import ExchangeCapabilities, SequenceModel, SpliceRule
from bookkeeper.errors import InvalidState
from bookkeeper.events import BookDelta, BookSnapshot, CloseReason, SnapshotSource, StreamClosed
from bookkeeper.session import BookSession
from bookkeeper.view import BookView

CAPS = ExchangeCapabilities(venue="demo", sequence_model=SequenceModel.CONTIGUOUS_RANGE,
                            splice_rule=SpliceRule.RANGE_NEXT, rest_snapshot=True)


def _synced() -> BookSession:
    s = BookSession("BTCUSDT", CAPS)
    s.on_snapshot(BookSnapshot(symbol="BTCUSDT", bids=[(99.0, 1.0), (98.0, 2.0)], asks=[(101.0, 2.0)],
                               seq=7, source=SnapshotSource.WS))
    assert s.state is SyncState.SYNCED
    return s


def test_view_reads_what_the_session_book_holds() -> None:
    s = _synced()
    v = BookView(s)
    assert (v.best_bid(), v.best_ask(), v.seq, len(v)) == ((99.0, 1.0), (101.0, 2.0), 7, 3)
    assert v.top(1) == ([(99.0, 1.0)], [(101.0, 2.0)])
    assert v.bids() == [(99.0, 1.0), (98.0, 2.0)] and v.asks() == [(101.0, 2.0)]
    assert (v.bid_count, v.ask_count, v.is_crossed()) == (2, 1, False)
    s.on_delta(BookDelta(symbol="BTCUSDT", bids=[(100.0, 5.0)], asks=[], first_seq=8, last_seq=8))
    assert v.best_bid() == (100.0, 5.0) and v.seq == 8  # a view follows the live book


def test_view_has_no_mutating_api() -> None:
    public = {n for n in dir(BookView) if not n.startswith("_")}
    assert not {n for n in public if n.startswith(("apply", "clear", "truncate", "reset"))}, public
    with pytest.raises(AttributeError):
        BookView(_synced()).book  # type: ignore[attr-defined]  # the mutable book is not reachable


@pytest.mark.parametrize("read", ["best_bid", "best_ask", "bids", "asks", "is_crossed", "__len__"])
def test_every_read_refuses_once_the_book_left_synced(read: str) -> None:
    s = _synced()
    v = BookView(s)
    s.handle(StreamClosed(reason=CloseReason.ABNORMAL_CLOSURE, code=1006))
    assert v.state is SyncState.RECOVERING and not v.is_synced
    with pytest.raises(InvalidState) as info:
        getattr(v, read)()
    assert info.value.symbol == "BTCUSDT" and info.value.state is SyncState.RECOVERING
    for attr in ("seq", "bid_count", "ask_count"):
        with pytest.raises(InvalidState):
            getattr(v, attr)
    with pytest.raises(InvalidState):
        v.top(5)
