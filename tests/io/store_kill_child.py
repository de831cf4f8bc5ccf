"""The process ``test_store_kill.py`` kills: applies N seeded fills to a SqliteFillStore file,
resuming from the store's cursors after each restart.

Usage: ``python store_kill_child.py DB_PATH SEED N``. Prints ``resume <fills stored>`` once the
store is loaded, ``ok <batch>`` after each committed batch and ``done`` at the end (stdout,
flushed: the parent waits on these lines, never on time).
"""

from __future__ import annotations

import random
import sys
from decimal import Decimal

from bookkeeper.actions import fill_sort_key
from bookkeeper.events import AccountSnapshot, Fill, PositionReport
from bookkeeper.io.store import DurableLedger, SqliteFillStore
from bookkeeper.ledger import AccountKey, InstrumentKind, InstrumentSpec, PositionLedger
from bookkeeper.types import TradeSide

VENUE = "sim"
ACCOUNT = AccountKey(venue=VENUE, account="kill-test")
SPECS = (
    InstrumentSpec(symbol="BTCUSDT", kind=InstrumentKind.SPOT, base="BTC", quote="USDT"),
    InstrumentSpec(symbol="BTCUSDT-PERP", kind=InstrumentKind.LINEAR, base="BTC", quote="USDT",
                   contract_size=Decimal("0.001")),
)
BASELINE = AccountSnapshot(as_of_ns=0, balances={"USDT": Decimal(100_000), "BTC": Decimal(10)},
                           positions=[PositionReport(symbol="BTCUSDT-PERP", qty=Decimal(0), avg_entry_price=Decimal(0))])


def make_fills(seed: int, n: int) -> list[Fill]:
    """N fills in execution order over two symbols (trade ids ascend per symbol, times ascend
    with ties)."""
    rng = random.Random(seed)
    fills, ts, next_id = [], 0, {spec.symbol: rng.randint(1, 10**6) for spec in SPECS}
    for _ in range(n):
        ts += rng.choice((0, 1, 1, 2)) * 1_000_000
        symbol = rng.choice(SPECS).symbol
        next_id[symbol] += rng.randint(1, 3)
        fills.append(Fill(
            symbol=symbol, fill_id=str(next_id[symbol]), order_id=f"o{rng.randint(1, 50)}",
            side=rng.choice((TradeSide.BUY, TradeSide.SELL)), qty=Decimal(rng.randint(1, 2000)) / 1000,
            price=Decimal(rng.randint(2_900_000, 3_100_000)) / 100, fee=Decimal(rng.randint(0, 900)) / 10_000,
            fee_currency=rng.choice((None, "BNB")), ts_exchange_ns=ts + 1))
    return fills


def make_batches(seed: int, fills: list[Fill]) -> list[list[Fill]]:
    """Contiguous chunks of 1..6 fills, each shuffled (a replayed page arrives in any order)."""
    rng = random.Random(seed ^ 0x5EED)
    batches, i = [], 0
    while i < len(fills):
        size = rng.randint(1, 6)
        batch = fills[i:i + size]
        rng.shuffle(batch)
        batches.append(batch)
        i += size
    return batches


def expected_ledger(seed: int, n: int) -> PositionLedger:
    """What the store must hold once every fill is applied: the baseline plus the N fills."""
    ledger = PositionLedger()
    for spec in SPECS:
        ledger.add_instrument(VENUE, spec)
    ledger.apply_snapshot(ACCOUNT, BASELINE)
    for f in make_fills(seed, n):
        ledger.apply_fill(ACCOUNT, f)
    return ledger


def main(path: str, seed: int, n: int) -> int:
    store = SqliteFillStore(path)
    dl = DurableLedger(store)
    for spec in SPECS:
        dl.add_instrument(VENUE, spec)
    if dl.ledger.baseline(ACCOUNT) is None:
        dl.apply_snapshot(ACCOUNT, BASELINE)
    cursors = dl.ledger.cursors(ACCOUNT)
    print(f"resume {store.fill_count()}", flush=True)
    for i, batch in enumerate(make_batches(seed, make_fills(seed, n))):
        # resume from the cursor: everything after it, and the cursor's own fill again (a
        # deliberate duplicate: replays from a cursor are inclusive)
        todo = []
        for f in batch:
            cursor = cursors[f.symbol]
            if cursor is None or fill_sort_key(f.ts_exchange_ns, f.fill_id) >= cursor.sort_key():
                todo.append(f)
        if todo:
            dl.apply_fills(ACCOUNT, todo)
            print(f"ok {i}", flush=True)
    print("done", flush=True)
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
