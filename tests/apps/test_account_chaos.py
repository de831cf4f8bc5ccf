"""``bookkeeper chaos --account``: the real account ingest against the simulator's ground-truth
account with private faults, through ``run_chaos`` and through the command line with
``--kill-restart`` (the ingest runs in a worker process that is SIGKILLed and restarted from its
SQLite store). Both runs start in child processes when the suite starts (tests/_background.py).
The bars of issue [account]: 0 fills missing or duplicated, 0 position and balance mismatches,
0 secrets leaked, both recovery kinds used."""

from __future__ import annotations

import json

import pytest
from _background import BackgroundResult, chaos_child, cli

from bookkeeper.apps.chaos import PRIVATE_FAULTS, run_failed

pytestmark = pytest.mark.realtime

ACCOUNT_KEYS = ("fills_expected", "fills_recorded", "fills_missing", "fills_duplicated", "position_mismatches",
                "balance_mismatches", "account_recoveries", "restarts", "secrets_leaked")


def _check(report: dict, *, restarts: int) -> None:
    seed = report["seed"]
    assert set(ACCOUNT_KEYS) <= set(report), f"seed {seed}"
    bad = {k: report[k] for k in ("fills_missing", "fills_duplicated", "fills_mismatched", "position_mismatches",
                                  "balance_mismatches", "secrets_leaked", "mismatches") if report[k]}
    assert not bad, f"seed {seed}: {bad} samples={report.get('account_samples')} leaks={report.get('secrets_leak_sites')}"
    assert report["final_consistent"], f"seed {seed}"
    assert report["fills_recorded"] > 0 and report["fills_expected"] <= report["account_truth_fills"]
    rec = report["account_recoveries"]
    # the first sync and the blackout beyond the history window are full syncs; gaps inside it replay
    assert rec["full_sync"] >= 2 and rec["replay"] >= 1, f"seed {seed}: {rec}"
    assert report["restarts"] == restarts
    assert "ledger.sqlite3" in report["secrets_files_scanned"]
    assert not run_failed(report)


@pytest.mark.background(lambda _, venue, seed: chaos_child(
    venues=[venue], seed=seed, duration_s=14.0, faults=["abort", "drop", *PRIVATE_FAULTS], account=True,
    account_workdir="acct", fault_rate_per_s=0.8), group="account")
@pytest.mark.parametrize(("venue", "seed"), [("okx", 11), ("coinbase", 5), ("binance_usdm", 5), ("bybit", 5),
                                           ("binance", 5)])
def test_account_chaos_in_process_meets_every_bar(venue: str, seed: int, background: BackgroundResult) -> None:
    # run_chaos in a child process (started when the suite starts: tests/_background.py)
    assert background.returncode == 0, background.stderr[-3000:]
    report = background.json_line()
    _check(report, restarts=0)
    injected = report["private_faults_injected"]
    assert set(injected) == set(PRIVATE_FAULTS) and all(n >= 1 for n in injected.values()), (seed, injected)
    assert (background.workdir / "acct" / "plans.jsonl").exists()


@pytest.mark.background(lambda workdir, venue: cli("chaos", "--venue", venue, "--seed", 5, "--duration", 14,
                                                   "--account", "--kill-restart", 2, "--json",
                                                   "--account-dir", workdir / "acct"), group="account")
@pytest.mark.parametrize("venue", ["binance", "bybit", "coinbase", "binance_usdm"])
def test_account_chaos_cli_with_kill_restart(venue: str, background: BackgroundResult) -> None:
    assert background.returncode == 0, background.stdout[-2000:] + background.stderr[-3000:]
    report = json.loads(background.stdout)
    _check(report, restarts=2)
    assert len(report["kill_times_s"]) == 2
    # the worker got its credentials from the environment, never from its config or argv
    conf = json.loads((background.workdir / "acct" / "worker.json").read_text())
    assert not {"secret", "apiKey", "api_key", "password"} & set(conf)


def test_account_flags_are_usage_errors_without_account(capsys: pytest.CaptureFixture[str]) -> None:
    from bookkeeper.cli import main

    for args in (["--kill-restart", "2"], ["--faults", "private_drop"], ["--account-dir", "/tmp/x"]):
        assert main(["chaos", "--venue", "binance", "--seed", "1", "--duration", "1", *args]) == 2, args
        assert "--account" in capsys.readouterr().err, args
    assert main(["chaos", "--venue", "kraken", "--seed", "1", "--account"]) == 2
    assert "accounts on" in capsys.readouterr().err
