"""The fused fast path is what replay (and the live driver) actually run for Binance, and it
changes no count: the same captures give the PROVENANCE numbers either way."""

from __future__ import annotations

import pathlib

import pytest

from bookkeeper.adapters import get_adapter
from bookkeeper.io.replay import replay

ROOT = pathlib.Path(__file__).resolve().parents[2] / "fixtures/real"
USDM = [ROOT / "binance_usdm/binance_usdm_btcusdt_2024-08-08.hbt.txt.gz"]


def test_replay_takes_the_fused_path_when_the_accelerator_is_built() -> None:
    adapter = get_adapter("binance_usdm")
    if adapter.fused is None:  # type: ignore[attr-defined]
        pytest.skip("C accelerator not built (or BOOKKEEPER_PURE_PYTHON=1): nothing to wire")
    report = replay(adapter, USDM).as_json()
    assert report["fast_path_frames"] > 5000
    assert (report["deltas_applied"], report["stale_dropped"], report["gaps"]) == (6547, 4, 0)
    assert (report["ticker_checks"], report["ticker_mismatches"]) == (126, 0)


def test_without_the_fused_path_the_counts_are_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    adapter = get_adapter("binance_usdm")
    monkeypatch.setattr(adapter, "fused", None)
    report = replay(adapter, USDM).as_json()
    assert report["fast_path_frames"] == 0
    assert (report["deltas_applied"], report["stale_dropped"], report["gaps"]) == (6547, 4, 0)
    assert (report["ticker_checks"], report["ticker_mismatches"]) == (126, 0)
