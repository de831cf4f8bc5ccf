"""Progress of a long replay: monotonic, in bytes of the (compressed) input, bounded by the total."""

from __future__ import annotations

import pathlib

from bookkeeper.adapters import get_adapter
from bookkeeper.io.replay import replay

ROOT = pathlib.Path(__file__).resolve().parents[1] / "fixtures/real/binance"


def test_progress_reports_bytes_of_the_gzipped_inputs() -> None:
    files = [ROOT / "binance_spot_btcusdt_2024-08-08.hbt.txt.gz",
             ROOT / "binance_spot_btcusdt_2024-08-09.continuation.hbt.txt.gz"]
    calls: list[tuple[int, int, int]] = []
    report = replay(get_adapter("binance"), files, progress=lambda *a: calls.append(a))
    total = sum(f.stat().st_size for f in files)
    assert len(calls) == 9  # 99,574 records, one call per 10,000
    assert [c[0] for c in calls] == [10_000 * i for i in range(1, 10)]
    assert all(c[2] == total for c in calls)
    done = [c[1] for c in calls]
    assert done == sorted(done) and 0 < done[0] and done[-1] <= total
    assert report.as_json()["deltas_applied"] == 6493
