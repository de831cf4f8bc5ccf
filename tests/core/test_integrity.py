"""Integrity checks on their own: checksum verdicts, crossed evidence, the LOCAL_AHEAD detector."""

from __future__ import annotations

import doctest
import random

import pytest

from bookkeeper import integrity
from bookkeeper.book import L2Book
from bookkeeper.capabilities import ChecksumKind
from bookkeeper.checksum import kraken_checksum, okx_checksum
from bookkeeper.integrity import (
    STALE_RUN_LIMIT,
    ChecksumVerifier,
    StaleRunDetector,
    crossed_evidence,
)


def _raw_book(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> L2Book:
    book = L2Book()
    book.apply_snapshot([(float(p), float(q)) for p, q in bids], [(float(p), float(q)) for p, q in asks], bids, asks)
    return book


# ---------------------------------------------------------------------- checksum
def test_okx_vector_agrees_and_a_wrong_value_is_a_reason_not_an_exception():
    # exchange-protocols.md §13.1 vector 1.
    book = _raw_book([("3366.1", "7"), ("3366", "6")], [("3366.8", "9"), ("3368", "8")])
    ck = ChecksumVerifier(ChecksumKind.CRC32_INTERLEAVED_25)
    assert ck.kind is ChecksumKind.CRC32_INTERLEAVED_25
    assert ck.mismatch(book, -1881014294) is None
    assert ck.mismatch(book, 12345) == "checksum mismatch: venue 12345, local -1881014294"


def test_kraken_checksum_reads_its_levels_asks_first():
    asks = [("45285.2", "0.00100000"), ("45286.4", "1.54582015")]
    bids = [("45283.5", "0.50000000"), ("45283.4", "0.04000000")]
    book = _raw_book(bids, asks)
    assert ChecksumVerifier(ChecksumKind.KRAKEN_CRC32_10).mismatch(book, kraken_checksum(asks, bids)) is None


def test_depth_bounds_the_levels_read():
    book = _raw_book([("3366.1", "7"), ("3366", "6")], [("3366.8", "9"), ("3368", "8")])
    best_only = okx_checksum([("3366.1", "7")], [("3366.8", "9")])
    assert ChecksumVerifier(ChecksumKind.CRC32_INTERLEAVED_25, depth=1).mismatch(book, best_only) is None
    assert ChecksumVerifier(ChecksumKind.CRC32_INTERLEAVED_25).mismatch(book, best_only) is not None


def test_a_level_without_exchange_text_is_a_mismatch_with_evidence():
    book = L2Book()
    book.apply_snapshot([(3366.1, 7.0)], [(3366.8, 9.0)])  # no strings kept
    reason = ChecksumVerifier(ChecksumKind.CRC32_INTERLEAVED_25).mismatch(book, 5)
    assert reason == "checksum mismatch: venue 5, local None no exchange text for level 3366.1"


def test_no_checksum_kind_cannot_be_verified():
    with pytest.raises(ValueError, match="NONE"):
        ChecksumVerifier(ChecksumKind.NONE)


# ---------------------------------------------------------------------- crossed
def test_crossed_evidence_names_both_sides():
    book = L2Book()
    book.apply_snapshot([(101.0, 3.0), (100.0, 1.0)], [(101.0, 1.0)])
    assert book.is_crossed()
    assert crossed_evidence(book) == "bid (101.0, 3.0) >= ask (101.0, 1.0)"


# ---------------------------------------------------------------------- local id ahead
def test_default_limit_is_pinned():
    assert STALE_RUN_LIMIT == 10 and StaleRunDetector().max_stale_run == 10


@pytest.mark.parametrize("bad", [0, -1])
def test_limit_must_be_positive(bad):
    with pytest.raises(ValueError, match="max_stale_run must be >= 1"):
        StaleRunDetector(bad)


def test_a_run_needs_limit_counts_with_nothing_applied_between():
    det = StaleRunDetector(3)
    assert [det.count(5), det.count(5), det.count(5)] == [False, False, True]
    assert [det.count(5), det.count(5), det.count(5)] == [False, False, True]  # starts over


def test_an_applied_delta_restarts_the_run():
    det = StaleRunDetector(3)
    assert [det.count(5), det.count(5), det.count(6), det.count(6), det.count(6)] == [False, False, False, False, True]


def test_limit_one_fires_on_every_count():
    det = StaleRunDetector(1)
    assert [det.count(0), det.count(0), det.count(1)] == [True, True, True]


def test_detector_against_a_reference_model():
    for seed in range(50):
        rng = random.Random(seed)
        limit = rng.randint(1, 5)
        det = StaleRunDetector(limit)
        applied, run = 0, 0
        last_applied = None
        for step in range(200):
            if rng.random() < 0.3:
                applied += 1
                continue
            if last_applied != applied:
                run, last_applied = 0, applied
            run += 1
            fired = run >= limit
            if fired:
                run = 0
            assert det.count(applied) is fired, f"seed={seed} step={step} limit={limit}"


def test_module_doctests():
    result = doctest.testmod(integrity, optionflags=doctest.ELLIPSIS)
    assert (result.failed, result.attempted > 0) == (0, True)
