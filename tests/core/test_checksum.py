"""Checksum vectors of exchange-protocols.md §13, and the OKX "0 means absent" rule."""

from __future__ import annotations

from zlib import crc32

import pytest

from bookkeeper.capabilities import ChecksumKind
from bookkeeper.checksum import checksum_absent, compute_checksum, kraken_checksum, okx_checksum

OKX_V1_BIDS = [("3366.1", "7"), ("3366", "6")]
OKX_V1_ASKS = [("3366.8", "9"), ("3368", "8")]
OKX_V2_BIDS = [("3366.1", "7")]
OKX_V2_ASKS = [("3366.8", "9"), ("3368", "8"), ("3372", "8")]
KRAKEN_ASKS = [("45285.2", "0.00100000"), ("45286.4", "1.54582015"), ("45286.6", "1.00000000")]
KRAKEN_BIDS = [("45283.5", "0.50000000"), ("45283.4", "0.04000000")]


def test_okx_vector_1_is_signed():
    assert okx_checksum(OKX_V1_BIDS, OKX_V1_ASKS) == -1881014294
    assert crc32(b"3366.1:7:3366.8:9:3366:6:3368:8") == 2413953002  # the unsigned value of §13.1


def test_okx_vector_2_one_side_shorter_interleave():
    # The bid side runs out after one level; the asks continue on their own.
    assert okx_checksum(OKX_V2_BIDS, OKX_V2_ASKS) == 831078360
    assert crc32(b"3366.1:7:3366.8:9:3368:8:3372:8") == 831078360


def test_okx_ask_side_shorter_interleave():
    bids = [("10", "1"), ("9", "2"), ("8", "3")]
    asks = [("11", "4")]
    expected = crc32(b"10:1:11:4:9:2:8:3")
    expected = expected - 2**32 if expected >= 2**31 else expected
    assert okx_checksum(bids, asks) == expected


def test_okx_uses_top_25_levels_only():
    bids = [(str(1000 - i), "1") for i in range(30)]
    asks = [(str(2000 + i), "1") for i in range(30)]
    assert okx_checksum(bids, asks) == okx_checksum(bids[:25], asks[:25])
    assert okx_checksum(bids, asks) != okx_checksum(bids[:24], asks[:25])


def test_okx_uses_exact_strings():
    assert okx_checksum([("3366.10", "7")], []) != okx_checksum([("3366.1", "7")], [])


def test_okx_empty_book():
    assert okx_checksum([], []) == 0  # crc32 of b""


def test_kraken_vector():
    assert kraken_checksum(KRAKEN_ASKS, KRAKEN_BIDS) == 1982867381
    assert crc32(b"452852100000452864154582015452866100000000452835500000004528344000000") == 1982867381


def test_kraken_is_unsigned_and_top_10():
    asks = [(f"{100 + i}.5", "0.10000000") for i in range(12)]
    bids = [(f"{99 - i}.5", "0.20000000") for i in range(12)]
    value = kraken_checksum(asks, bids)
    assert value == kraken_checksum(asks[:10], bids[:10])
    assert 0 <= value < 2**32


@pytest.mark.parametrize(
    "kind,bids,asks,expected",
    [
        (ChecksumKind.CRC32_INTERLEAVED_25, OKX_V1_BIDS, OKX_V1_ASKS, -1881014294),
        (ChecksumKind.CRC32_INTERLEAVED_25, OKX_V2_BIDS, OKX_V2_ASKS, 831078360),
        (ChecksumKind.KRAKEN_CRC32_10, KRAKEN_BIDS, KRAKEN_ASKS, 1982867381),
    ],
)
def test_compute_checksum_dispatches_by_kind(kind, bids, asks, expected):
    assert compute_checksum(kind, bids, asks) == expected


def test_compute_checksum_without_algorithm_raises():
    with pytest.raises(ValueError):
        compute_checksum(ChecksumKind.NONE, [], [])


@pytest.mark.parametrize(
    "kind,value,absent",
    [
        (ChecksumKind.CRC32_INTERLEAVED_25, 0, True),  # OKX pinned the field to 0 on 2026-06-23
        (ChecksumKind.CRC32_INTERLEAVED_25, None, True),
        (ChecksumKind.CRC32_INTERLEAVED_25, -1881014294, False),
        (ChecksumKind.KRAKEN_CRC32_10, 0, False),  # a real (if unlikely) Kraken value
        (ChecksumKind.KRAKEN_CRC32_10, None, True),
        (ChecksumKind.NONE, 123, True),
    ],
)
def test_checksum_absent(kind, value, absent):
    assert checksum_absent(kind, value) is absent
