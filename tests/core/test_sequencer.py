"""Sequencer: one table per sequence model (APPLY / STALE / DUPLICATE / GAP, missed)."""

from __future__ import annotations

import pytest

from bookkeeper.capabilities import SequenceModel
from bookkeeper.sequencer import Sequencer, SeqVerdict

A, S, D, G = SeqVerdict.APPLY, SeqVerdict.STALE, SeqVerdict.DUPLICATE, SeqVerdict.GAP
R = SequenceModel.CONTIGUOUS_RANGE
P = SequenceModel.PREV_POINTER
M = SequenceModel.MONOTONIC_ONLY
N = SequenceModel.NONE


def seq_at(model: SequenceModel, local: int | None, last_first: int | None = None) -> Sequencer:
    s = Sequencer(model)
    s.reset(local)
    if last_first is not None:
        s.advance(last_first, local)
    return s


# (local, first, last, prev, verdict, missed-if-gap)
RANGE_TABLE = [
    pytest.param(100, 101, 105, None, A, None, id="exact-next"),
    pytest.param(100, 95, 105, None, A, None, id="overlap-covers-next"),  # Binance first event, KuCoin overlap
    pytest.param(100, 101, 101, None, A, None, id="single-id"),
    pytest.param(100, 90, 99, None, S, None, id="older-stale"),
    pytest.param(100, 95, 100, None, S, None, id="ends-at-local-after-snapshot-stale"),
    pytest.param(100, 102, 110, None, G, 1, id="one-missing"),
    pytest.param(100, 107, 110, None, G, 6, id="docstring-gap"),
    pytest.param(100, None, 101, None, A, None, id="no-first-last-next"),
    pytest.param(100, None, 103, None, G, None, id="no-first-gap-missed-unknown"),
    pytest.param(100, None, None, None, A, None, id="unsequenced-applied"),
    pytest.param(None, 500, 600, None, A, None, id="before-snapshot"),
]


@pytest.mark.parametrize("local,first,last,prev,verdict,missed", RANGE_TABLE)
def test_contiguous_range_table(local, first, last, prev, verdict, missed):
    s = seq_at(R, local)
    assert s.check(first, last, prev) is verdict
    if verdict is G:
        assert s.missed(first, last, prev) == missed


def test_contiguous_range_exact_repeat_of_last_message_is_duplicate():
    s = seq_at(R, 100)
    s.advance(101, 105)
    assert s.local == 105
    assert s.check(101, 105, None) is D
    assert s.check(102, 105, None) is S  # same end, different start: not the same message
    assert s.check(106, 107, None) is A


def test_kucoin_overlap_applies_when_end_is_beyond_local():
    # KuCoin §10.2: start <= local + 1 and end > local.
    s = seq_at(R, 16)
    assert s.check(15, 19, None) is A
    assert s.check(15, 16, None) is S


# (local, first, last, prev, verdict, missed-if-gap)
POINTER_TABLE = [
    pytest.param(10, 11, 15, 10, A, None, id="prev-equals-local"),
    pytest.param(15, 3, 3, 15, A, None, id="okx-reset-seq-below-prev"),
    pytest.param(15, None, 15, 15, D, None, id="okx-heartbeat-seq-eq-prev-eq-local"),
    pytest.param(15, None, 15, 10, D, None, id="repeat-of-last"),
    pytest.param(15, None, 12, 10, S, None, id="older-stale"),
    pytest.param(15, None, 20, 17, G, 2, id="prev-ahead-of-local"),
    pytest.param(15, None, 20, 12, G, None, id="prev-behind-local-gap-missed-unknown"),
    pytest.param(15, None, 20, None, G, None, id="no-prev-newer-is-gap"),
    pytest.param(15, None, None, None, A, None, id="unsequenced-applied"),
    pytest.param(None, 1, 5, 0, A, None, id="before-snapshot"),
]


@pytest.mark.parametrize("local,first,last,prev,verdict,missed", POINTER_TABLE)
def test_prev_pointer_table(local, first, last, prev, verdict, missed):
    s = seq_at(P, local)
    assert s.check(first, last, prev) is verdict
    if verdict is G:
        assert s.missed(first, last, prev) == missed


def test_okx_documented_sequence_resets_and_heartbeats():
    # exchange-protocols.md §5.2: snapshot (-1 -> 10), update (10 -> 15), no-change (15 -> 15),
    # reset (15 -> 3), update (3 -> 5).
    s = seq_at(P, 10)
    steps = [((None, 15, 10), A), ((None, 15, 15), D), ((None, 3, 15), A), ((None, 5, 3), A)]
    for (first, last, prev), verdict in steps:
        assert s.check(first, last, prev) is verdict
        if verdict is A:
            s.advance(first, last)
    assert s.local == 5


def test_binance_futures_pu_chain():
    # §4.2: after the bridge each event's pu must equal the previous event's u.
    s = seq_at(P, 100)
    chain = [(95, 103, 100), (104, 110, 103), (111, 111, 110)]
    for first, last, prev in chain:
        assert s.check(first, last, prev) is A
        s.advance(first, last)
    assert s.local == 111
    assert s.check(120, 125, 115) is G
    assert s.missed(120, 125, 115) == 4
    assert s.check(104, 110, 103) is S
    assert s.check(111, 111, 110) is D


# (local, last, verdict)
MONOTONIC_TABLE = [
    pytest.param(100, 101, A, id="next"),
    pytest.param(100, 150, A, id="skip-is-invisible"),
    pytest.param(100, 100, D, id="same"),
    pytest.param(100, 99, S, id="older"),
    pytest.param(100, None, A, id="unsequenced"),
    pytest.param(None, 5, A, id="before-snapshot"),
]


@pytest.mark.parametrize("local,last,verdict", MONOTONIC_TABLE)
def test_monotonic_table(local, last, verdict):
    s = seq_at(M, local)
    assert s.check(None, last, None) is verdict
    assert s.missed(None, last, None) is None


@pytest.mark.parametrize("args", [(None, None, None), (1, 2, 0), (5, 5, 5), (1, 1, None)])
def test_none_model_always_applies(args):
    s = seq_at(N, 100)
    assert s.check(*args) is A
    assert s.missed(*args) is None


def test_missed_is_unknown_before_first_snapshot():
    s = Sequencer(R)
    assert s.local is None
    assert s.missed(10, 20, None) is None


def test_reset_forgets_last_message_identity():
    s = seq_at(R, 100)
    s.advance(101, 105)
    s.reset(105)
    assert s.check(101, 105, None) is S  # no longer "the same message" after a snapshot
    assert s.model is R


def test_advance_without_last_keeps_local():
    s = seq_at(P, 7)
    s.advance(None, None)
    assert s.local == 7
