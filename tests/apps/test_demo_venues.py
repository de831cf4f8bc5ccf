"""`bookkeeper demo --venues V1,V2`: any subset of the simulator's venues, same report keys."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import orjson
import pytest
from _background import BackgroundResult
from _background import cli as bg_cli

from bookkeeper import cli
from bookkeeper.sim import DEMO_VENUES, DIALECTS

pytestmark = pytest.mark.timeout(120)


def _configs(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> Any:
    """The ChaosConfig ``bookkeeper demo ARGV`` would run (nothing is run)."""
    seen: list[Any] = []

    def fake_run(cfg: Any, **_: Any) -> int:
        seen.append(cfg)
        return 0

    monkeypatch.setattr(cli, "_run_chaos", fake_run)
    assert cli.main(["demo", *argv]) == 0
    (cfg,) = seen
    return cfg


def test_default_is_the_demo_venues(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's default venues (and so its seeded results) stay those of its first release;
    newer dialects join with --venues."""
    assert _configs(monkeypatch, []).venues == DEMO_VENUES == ("binance", "okx", "kraken")
    assert set(DEMO_VENUES) <= set(DIALECTS)


def test_a_subset_keeps_its_order_without_repeats(monkeypatch: pytest.MonkeyPatch) -> None:
    last, first = list(DIALECTS)[-1], next(iter(DIALECTS))
    cfg = _configs(monkeypatch, ["--venues", f"{last}, {first},{last}"])
    assert cfg.venues == (last, first)
    assert cfg.venues_as_list


@pytest.mark.parametrize("value", ["ftx", "okx,ftx", ","])
def test_unknown_venue_is_a_usage_error_listing_the_choices(value: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "bookkeeper.cli", "demo", "--venues", value, "--duration", "1"],
                          check=False, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert f"choose from: {', '.join(DIALECTS)}" in proc.stderr, proc.stderr


def _demo_args(venues: str) -> list[str]:
    return ["demo", "--venues", venues, "--duration", "2", "--seed", "4", "--json"]


def _demo(venues: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "bookkeeper.cli", *_demo_args(venues)], check=False,
                          capture_output=True, text=True, timeout=100)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report: dict[str, Any] = orjson.loads(proc.stdout)
    return report


def test_one_venue_and_two_venues_report_the_same_keys() -> None:
    one = list(DIALECTS)[1]
    single = _demo(one)
    assert single["venues"] == [one] and "venue" not in single
    assert {b.split(":")[0] for b in single["books"]} == {one}
    assert single["final_consistent"] and single["mismatches"] == 0
    pair = _demo(",".join(list(DIALECTS)[:2]))
    assert pair["venues"] == list(DIALECTS)[:2]
    assert set(single) == set(pair)


@pytest.mark.background(lambda _, venue: bg_cli(*_demo_args(venue)))
@pytest.mark.parametrize("venue", [v for v in DIALECTS if v not in DEMO_VENUES])
def test_each_newer_dialect_runs_alone_in_the_demo(venue: str, background: BackgroundResult) -> None:
    assert background.returncode == 0, background.stdout + background.stderr
    report = background.json_line()
    assert report["venues"] == [venue] and {b.split(":")[0] for b in report["books"]} == {venue}
    assert report["final_consistent"] and report["mismatches"] == 0, report["mismatch_samples"]
    assert all(b["state"] == "synced" for b in report["books"].values()), report["books"]


@pytest.mark.background(lambda _, venues: bg_cli(*_demo_args(",".join(venues))))
@pytest.mark.parametrize("venues", [list(DIALECTS), list(reversed(DIALECTS))], ids=["listed", "reversed"])
def test_every_dialect_at_once_each_with_its_own_symbols(venues: list[str], background: BackgroundResult) -> None:
    """One simulator holds every venue's books by symbol, and Binance spot, USD-M and Bybit all
    spell theirs BTCUSDT: a venue whose defaults are taken serves alternates instead, in any
    order of the venues."""
    assert background.returncode == 0, background.stdout + background.stderr[-3000:]
    report = background.json_line()
    assert report["venues"] == venues
    by_venue: dict[str, set[str]] = {}
    for key in report["books"]:
        venue, symbol = key.split(":", 1)
        by_venue.setdefault(venue, set()).add(symbol)
    assert set(by_venue) == set(DIALECTS) and all(len(s) == 2 for s in by_venue.values()), by_venue
    symbols = [s for s in by_venue.values() for s in s]
    assert len(symbols) == len(set(symbols)), by_venue
    assert report["final_consistent"] and report["mismatches"] == 0, report["mismatch_samples"]
    assert all(b["state"] == "synced" for b in report["books"].values()), report["books"]
