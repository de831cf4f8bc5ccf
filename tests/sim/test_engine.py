"""MarketEngine: determinism, rollback (`book_at`) against a forward reference, invariants."""

from __future__ import annotations

import random

import pytest

from bookkeeper.sim import DEFAULT_SYMBOLS, MarketEngine, kraken_timestamp, seq_from_timestamp
from bookkeeper.sim.engine import fixed, trim
from bookkeeper.types import Side

BTC = DEFAULT_SYMBOLS["binance"][0]
ETH = DEFAULT_SYMBOLS["binance"][1]


def _run(engine: MarketEngine, symbol: str, intervals: int) -> list[tuple[int, tuple]]:
    return [(cs.seq, cs.changes) for _ in range(intervals) for cs in engine.advance(symbol)]


def test_same_seed_gives_same_stream_and_other_seed_differs() -> None:
    a = _run(MarketEngine(5, [BTC]), "BTCUSDT", 300)
    b = _run(MarketEngine(5, [BTC]), "BTCUSDT", 300)
    c = _run(MarketEngine(6, [BTC]), "BTCUSDT", 300)
    assert a == b
    assert a != c
    assert len(a) > 300  # bursts happen: more ids than intervals


def test_symbol_stream_does_not_depend_on_other_symbols() -> None:
    alone = _run(MarketEngine(9, [BTC]), "BTCUSDT", 100)
    together = MarketEngine(9, [BTC, ETH])
    _run(together, "ETHUSDT", 50)
    assert _run(together, "BTCUSDT", 100) == alone


def test_seqs_are_gapless_and_book_never_crosses() -> None:
    engine = MarketEngine(3, [BTC])
    prev = engine.seq("BTCUSDT")
    for _ in range(2000):
        cs = engine.step("BTCUSDT")
        assert cs.seq == prev + 1, f"seed=3 gap after {prev}"
        assert cs.changes, f"seed=3 empty change set at {cs.seq}"
        prev = cs.seq
        engine.check_integrity("BTCUSDT")
    assert 80 <= len(engine.levels("BTCUSDT", Side.BID)) <= 120
    assert 80 <= len(engine.levels("BTCUSDT", Side.ASK)) <= 120


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_book_at_equals_forward_replay(seed: int) -> None:
    engine = MarketEngine(seed, [BTC], history=5000)
    sym = "BTCUSDT"
    spec = engine.spec(sym)
    model = {
        Side.BID: dict(engine.levels(sym, Side.BID)),
        Side.ASK: dict(engine.levels(sym, Side.ASK)),
    }
    snapshots: dict[int, tuple[list, list]] = {}
    rng = random.Random(seed)
    for _ in range(3000):
        cs = engine.step(sym)
        for side, price, qty in cs.changes:
            if qty == 0:
                del model[side][price]
            else:
                model[side][price] = qty
        if rng.random() < 0.02:
            bids = sorted(model[Side.BID].items(), reverse=True)
            asks = sorted(model[Side.ASK].items())
            snapshots[cs.seq] = (
                [(spec.price_float(p), spec.qty_float(q)) for p, q in bids],
                [(spec.price_float(p), spec.qty_float(q)) for p, q in asks],
            )
    assert snapshots, f"seed={seed}"
    for seq, expected in snapshots.items():
        assert engine.book_at(sym, seq) == expected, f"seed={seed} seq={seq}"
    assert engine.book_at(sym, engine.seq(sym)) == engine.book(sym)
    top_bids, top_asks = engine.book_at(sym, engine.seq(sym), depth=10)
    assert (top_bids, top_asks) == (engine.book(sym)[0][:10], engine.book(sym)[1][:10])


def test_book_at_outside_history_raises() -> None:
    engine = MarketEngine(1, [BTC], history=10)
    start = engine.seq("BTCUSDT")
    for _ in range(20):
        engine.step("BTCUSDT")
    assert engine.oldest_seq("BTCUSDT") == start + 10
    engine.book_at("BTCUSDT", start + 10)
    with pytest.raises(ValueError):
        engine.book_at("BTCUSDT", start + 9)
    with pytest.raises(ValueError):
        engine.book_at("BTCUSDT", start + 21)


def test_kraken_timestamp_encodes_seq() -> None:
    assert kraken_timestamp(1_234_567) == "2026-01-01T00:00:01.234567Z"
    assert seq_from_timestamp("2026-01-01T00:00:01.234567Z") == 1_234_567
    assert seq_from_timestamp(kraken_timestamp(98_765_432_101)) == 98_765_432_101


def test_decimal_formatting_per_venue_style() -> None:
    assert fixed(6183763, 2) == "61837.63"
    assert fixed(6183763 * 10**6, 8) == "61837.63000000"  # Binance pads to 8
    assert trim(fixed(618376, 1)) == "61837.6"  # OKX trims
    assert trim(fixed(100000, 8)) == "0.001"
    assert trim(fixed(30000, 0)) == "30000"
