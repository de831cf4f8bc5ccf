"""The account side of a chaos run: the real account ingest against the simulator's
ground-truth account, with private faults and (``--kill-restart K``) SIGKILLs.

Theory of operation
-------------------
The simulator trades on a seeded account (``SimExchange(accounts=(venue,))``): orders, fills
with unique trade ids, balances, derivative positions. The ingest is one
:class:`~bookkeeper.io.account.AccountFeed` writing a SQLite store in the run's work folder.
Without ``kill_restart`` it runs in this process. With ``kill_restart=K`` it runs in a child
process (``python -m bookkeeper.apps.account_chaos worker CONFIG``) that the supervisor kills
with SIGKILL ``K`` times at seeded random moments of the fault window and restarts from its
store; the credentials reach the child through the environment (``BOOKKEEPER_<VENUE>_API_*``),
never through its config file or its command line.

At the end trading stops, the faults stop, and the run waits until the store (read by this
process in one read transaction) matches the truth, then compares, from the store alone:

- ``fills_expected``: truth fills after the ledger's latest baseline (a full sync's ``as_of``;
  fills at or before it are in the baseline's numbers and need not be stored one by one);
  ``fills_recorded``: fills in the store; ``fills_missing``: expected fills not stored;
  ``fills_duplicated``: one truth fill stored more than once (under another id: ids are the
  primary key) plus stored fills the truth does not have; ``fills_mismatched``: stored fills whose
  content differs from the truth;
- ``position_mismatches`` / ``balance_mismatches``: symbols / currencies whose ledger value
  differs from the truth;
- ``secrets_leaked``: occurrences of the API secret (and passphrase) in everything the run
  wrote: the records, the store, the child's output, the captured logs, the report itself.

``account_recoveries`` counts the recovery plans by kind (``replay``, ``full_sync``) over
every process of the run (each plan is appended to a JSON-lines file as it is made).

To make the window boundary reachable in seconds, the simulator serves fills for
``history_window_s`` only and the client is told the same window (``history_override``); the
run includes private blackouts longer than it, so a full sync is forced, and short gaps
inside it, so replays are taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

__all__ = ["FAILURE_KEYS", "AccountChaosConfig", "AccountRun", "compare_to_truth", "main", "matches_truth"]

log = logging.getLogger("bookkeeper.apps.account_chaos")

NS = 1_000_000_000


@dataclass(slots=True, kw_only=True)
class AccountChaosConfig:
    """The account part of a chaos run.

    Attributes:
        venue: a venue with a simulated account (``binance``, ``okx``).
        seed: seeds the kill schedule and the client's jitter.
        kill_restart: SIGKILL the ingest this many times (0: it runs in this process).
        workdir: where the store, records, plans and logs go (a temporary folder when
            ``None``; kept when given).
        history_window_s: the fills history the simulator serves and the client is told.
        reconcile_interval_s: the client's periodic reconciliation.
        page_budget: the client's replay page budget.
        blackout_s: length of each private blackout (longer than the window: full sync).
    """

    venue: str
    seed: int = 0
    kill_restart: int = 0
    workdir: str | None = None
    history_window_s: float = 6.0
    reconcile_interval_s: float = 1.0
    page_budget: int = 20
    blackout_s: float = 8.0


def _policy_args(cfg: AccountChaosConfig) -> dict[str, Any]:
    return {"window_s": cfg.history_window_s, "reconcile_interval_s": cfg.reconcile_interval_s,
            "page_budget": cfg.page_budget}


def _make_feed(conf: Mapping[str, Any], *, environ: Mapping[str, str], on_plan: Any) -> Any:
    """The AccountFeed of a chaos run (the same in this process and in the worker)."""
    from bookkeeper.account_session import AccountPolicy
    from bookkeeper.adapters import get_account_adapter
    from bookkeeper.io.account import AccountFeed
    from bookkeeper.policy import BackoffPolicy, BreakerPolicy

    adapter = get_account_adapter(conf["venue"])
    history = adapter.history
    window_ns = int(conf["policy"]["window_s"] * NS)
    history = replace(history, retention_ns=window_ns if history.retention_ns is None else min(window_ns,
                                                                                                 history.retention_ns))
    policy = AccountPolicy(page_budget=conf["policy"]["page_budget"], lookback_s=1.0,
                           reconcile_interval_s=conf["policy"]["reconcile_interval_s"], history_override=history)
    return AccountFeed(
        conf["venue"], conf["symbols"], account=conf["account"], store=conf["store"], ws_root=conf["ws_root"],
        rest_config=conf["rest_config"], policy=policy, records_path=conf["records"],
        bot_instance_id=conf["instance"], environ=environ, on_plan=on_plan,
        backoff=BackoffPolicy(base_s=0.5, cap_s=4.0, max_attempts=8, first_delay_s=0.3),
        breaker=BreakerPolicy(max_failures=50, window_s=60.0, cooldown_s=2.0),
        rng=random.Random(conf["seed"]), startup_jitter_s=0.2)


def _plan_line(plan: Any) -> str:
    return json.dumps({"kind": str(plan.kind), "reason": plan.reason, "pid": os.getpid(),
                       "ts": time.time()}) + "\n"


class _PlanLog:
    """Appends every recovery plan to a JSON-lines file (flushed per line: a SIGKILL loses
    nothing already decided)."""

    def __init__(self, path: str) -> None:
        self._path = path

    def __call__(self, plan: Any) -> None:
        with open(self._path, "a", encoding="utf-8") as fh:
            fh.write(_plan_line(plan))
            fh.flush()


# ----------------------------------------------------------------------------- the worker
async def _worker(conf_path: str) -> int:
    conf = json.loads(Path(conf_path).read_text())
    feed = _make_feed(conf, environ=os.environ, on_plan=_PlanLog(conf["plans"]))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with feed:
        print(json.dumps({"event": "started", "pid": os.getpid()}), flush=True)
        await stop.wait()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bookkeeper.apps.account_chaos worker CONFIG``: the account ingest of a
    ``--kill-restart`` chaos run (its supervisor starts, kills and restarts it)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] != "worker":
        print("usage: python -m bookkeeper.apps.account_chaos worker CONFIG", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    return asyncio.run(_worker(args[1]))


# ----------------------------------------------------------------------------- the supervisor
class _LogCapture(logging.Handler):
    """Everything this process logs during the run, formatted, appended to a file (scanned for
    secrets at the end)."""

    def __init__(self, path: Path) -> None:
        super().__init__(level=logging.DEBUG)
        self._fh = path.open("a", encoding="utf-8")
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._fh.write(self.format(record) + "\n")
        except Exception:  # logging must never break the run
            self.handleError(record)

    def close(self) -> None:
        self._fh.close()
        super().close()


class AccountRun:
    """The account ingest of one chaos run (see the module docstring).

    Args:
        sim: the running simulator, with the venue's account enabled.
        cfg: what to run.
        window_s: the fault window (kills are scheduled inside it).
    """

    def __init__(self, sim: Any, cfg: AccountChaosConfig, *, window_s: float) -> None:
        self._sim = sim
        self._cfg = cfg
        self._window_s = window_s
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if cfg.workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="bookkeeper-account-chaos-")
            workdir = Path(self._tmp.name)
        else:
            workdir = Path(cfg.workdir)
            workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        account = sim.account(cfg.venue)
        self._truth = account
        self._creds = account.credentials
        venue = cfg.venue
        self._conf = {
            "venue": venue, "symbols": list(account.instruments), "account": "chaos",
            "store": str(workdir / "ledger.sqlite3"), "records": str(workdir / "records.jsonl"),
            "plans": str(workdir / "plans.jsonl"), "ws_root": sim.urls(venue)["ws_root"],
            "rest_config": sim.ccxt_config(venue), "policy": _policy_args(cfg), "seed": cfg.seed,
            "instance": f"chaos-account-{venue}",
        }
        (workdir / "worker.json").write_text(json.dumps(self._conf, indent=2))
        self._feed: Any = None
        self._child: subprocess.Popen[bytes] | None = None
        self._child_out: Any = None
        self._capture: _LogCapture | None = None
        self.restarts = 0
        self.kill_times: list[float] = []
        self._tasks: list[asyncio.Task[Any]] = []

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        self._capture = _LogCapture(self.workdir / "supervisor.log")
        logging.getLogger().addHandler(self._capture)
        if logging.getLogger().level > logging.INFO:
            logging.getLogger().setLevel(logging.INFO)
        if self._cfg.kill_restart:
            self._spawn()
            self._tasks.append(asyncio.create_task(self._killer()))
        else:
            self._feed = self._new_feed()
            await self._feed.start()

    def _new_feed(self) -> Any:
        from bookkeeper.credentials import env_names

        key_var, secret_var, pass_var = env_names(self._cfg.venue)
        env = {key_var: self._creds.api_key, secret_var: self._creds.reveal_secret()}
        if self._creds.passphrase:
            env[pass_var] = self._creds.passphrase
        return _make_feed(self._conf, environ=env, on_plan=_PlanLog(self._conf["plans"]))

    def _spawn(self) -> None:
        from bookkeeper.credentials import env_names

        key_var, secret_var, pass_var = env_names(self._cfg.venue)
        env = dict(os.environ)
        env[key_var] = self._creds.api_key
        env[secret_var] = self._creds.reveal_secret()
        if self._creds.passphrase:
            env[pass_var] = self._creds.passphrase
        if self._child_out is None:
            self._child_out = (self.workdir / "worker.log").open("ab")
        self._child = subprocess.Popen(
            [sys.executable, "-m", "bookkeeper.apps.account_chaos", "worker", str(self.workdir / "worker.json")],
            env=env, stdout=self._child_out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    async def _killer(self) -> None:
        """SIGKILL the worker ``K`` times at seeded moments of the fault window, restarting
        it after a short pause (one pause longer than the history window: a full sync)."""
        rng = random.Random(self._cfg.seed * 7919 + 17)
        k = self._cfg.kill_restart
        start, end = 1.5, max(self._window_s, 2.0)
        moments = sorted(rng.uniform(start, end) for _ in range(k))
        long_one = rng.randrange(k) if k >= 2 else -1
        t0 = time.monotonic()
        for i, at in enumerate(moments):
            delay = t0 + at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            child = self._child
            if child is not None and child.poll() is None:
                child.send_signal(signal.SIGKILL)
                await asyncio.to_thread(child.wait)
                self.kill_times.append(round(time.monotonic() - t0, 3))
            pause = self._cfg.history_window_s + 2.0 if i == long_one else rng.uniform(0.1, 1.0)
            await asyncio.sleep(pause)
            self._spawn()
            self.restarts += 1

    async def blackout(self) -> None:
        """Cut the private side off for longer than the history window (refused upgrades
        after an abort of the private connections), so the next recovery must full-sync."""
        with self._sim.private_refused(self._cfg.venue):
            await self._sim.inject("private_abort", self._cfg.venue)
            await asyncio.sleep(self._cfg.blackout_s)

    async def stop_faults(self) -> None:
        """The fault window is over: let the kill schedule finish (its last restart may still be
        pending: every scheduled kill happens and is followed by its restart), then make sure
        an ingest is running."""
        for task in self._tasks:
            try:
                await asyncio.wait_for(task, self._cfg.history_window_s + 10.0)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if self._cfg.kill_restart and (self._child is None or self._child.poll() is not None):
            self._spawn()
            self.restarts += 1

    async def close(self) -> None:
        """Stop the ingest (SIGTERM, then a clean close) and release the log capture."""
        if self._feed is not None:
            with contextlib.suppress(Exception):
                await self._feed.close()
            self._feed = None
        child = self._child
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.to_thread(child.wait), 15.0)
            except TimeoutError:
                child.kill()
                await asyncio.to_thread(child.wait)
        if self._child_out is not None:
            self._child_out.close()
            self._child_out = None
        if self._capture is not None:
            logging.getLogger().removeHandler(self._capture)
            self._capture.close()
            self._capture = None

    def cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()

    # -- checks ---------------------------------------------------------------------------
    def compare(self) -> dict[str, Any]:
        """The store against the truth now (read in one transaction)."""
        from bookkeeper.io.store import SqliteFillStore
        from bookkeeper.ledger import AccountKey

        key = AccountKey(venue=self._cfg.venue, account="chaos")
        path = self._conf["store"]
        if not Path(path).exists():
            return {"ready": False}
        store = SqliteFillStore(path)
        try:
            ledger = store.load()
        finally:
            store.close()
        return compare_to_truth(ledger, key, self._truth)

    async def settle(self, timeout_s: float) -> dict[str, Any]:
        """Trading stopped: wait (polling the store) until it matches the truth, or time out."""
        deadline = time.monotonic() + timeout_s
        result: dict[str, Any] = {"ready": False}
        while time.monotonic() < deadline:
            result = await asyncio.to_thread(self.compare)
            if matches_truth(result):
                break
            await asyncio.sleep(0.5)
        return result

    def plans(self) -> dict[str, int]:
        counts = {"replay": 0, "full_sync": 0}
        path = Path(self._conf["plans"])
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(ValueError, KeyError):
                    counts[json.loads(line)["kind"]] += 1
        return counts

    def secrets_leaked(self, *extra_texts: str) -> dict[str, Any]:
        """Occurrences of the secret (and passphrase) in every file of the work folder and in
        ``extra_texts`` (the report)."""
        needles = [s.encode() for s in self._creds.secrets()]
        total = 0
        where: dict[str, int] = {}
        for path in sorted(self.workdir.rglob("*")):
            if not path.is_file():
                continue
            data = path.read_bytes()
            n = sum(data.count(needle) for needle in needles)
            if n:
                where[path.name] = n
                total += n
        for i, text in enumerate(extra_texts):
            n = sum(text.encode().count(needle) for needle in needles)
            if n:
                where[f"report#{i}"] = n
                total += n
        return {"count": total, "where": where,
                "files_scanned": sorted(p.name for p in self.workdir.rglob("*") if p.is_file())}

    def records(self) -> list[dict[str, Any]]:
        path = Path(self._conf["records"])
        if not path.exists():
            return []
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out


def compare_to_truth(ledger: Any, key: Any, truth: Any) -> dict[str, Any]:
    """A ledger against the simulator's ground-truth account (the chaos report's fill, position
    and balance figures; ``ready`` is always true). Tests use it too, on a live feed's ledger.

    Args:
        ledger: a :class:`~bookkeeper.ledger.PositionLedger` (loaded from the store, or live).
        key: the account's :class:`~bookkeeper.ledger.AccountKey`.
        truth: the :class:`~bookkeeper.sim.account.SimAccount`.
    """
    baseline = ledger.baseline(key)
    as_of = baseline.as_of_ns if baseline is not None else -1
    recorded = ledger.fills(key)
    by_id = {(f.symbol, f.fill_id): f for f in recorded}
    truth_fills = truth.fills()
    truth_ids = {(f.symbol, f.trade_id): f for f in truth_fills}
    expected = [f for f in truth_fills if f.ts_ms * 1_000_000 > as_of]
    missing = [f for f in expected if (f.symbol, f.trade_id) not in by_id]
    content: Counter[tuple[Any, ...]] = Counter(
        (f.symbol, f.order_id, f.side.value, f.price, f.qty, f.ts_exchange_ns) for f in recorded)
    duplicated = sum(n - 1 for n in content.values() if n > 1)
    unknown = [f for f in recorded if (f.symbol, f.fill_id) not in truth_ids]
    mismatched = 0
    for f in recorded:
        t = truth_ids.get((f.symbol, f.fill_id))
        if t is None:
            continue
        if (f.order_id, f.side.value, f.price, f.qty, f.fee, f.fee_currency, f.ts_exchange_ns) != (
                t.order_id, t.side, t.price, t.qty, t.fee, t.fee_currency, t.ts_ms * 1_000_000):
            mismatched += 1
    balances = ledger.balances(key)
    truth_bal = truth.balances()
    bal_bad = sorted(c for c in set(balances) | set(truth_bal)
                     if balances.get(c, Decimal(0)) != truth_bal.get(c, Decimal(0)))
    positions = {s: p.qty for s, p in ledger.positions(key).items()}
    truth_pos = truth.positions()
    pos_bad = sorted(s for s in set(positions) | set(truth_pos)
                     if positions.get(s, Decimal(0)) != truth_pos.get(s, Decimal(0)))
    return {
        "ready": True,
        "fills_expected": len(expected),
        "fills_recorded": len(recorded),
        "fills_missing": len(missing),
        "fills_duplicated": duplicated + len(unknown),
        "fills_mismatched": mismatched,
        "position_mismatches": len(pos_bad),
        "balance_mismatches": len(bal_bad),
        "truth_fills": len(truth_fills),
        "samples": {
            "missing": [f"{f.symbol}#{f.trade_id}@{f.ts_ms}" for f in missing[:5]],
            "balances": {c: {"ledger": str(balances.get(c, 0)), "truth": str(truth_bal.get(c, 0))}
                         for c in bal_bad[:5]},
            "positions": {s: {"ledger": str(positions.get(s, 0)), "truth": str(truth_pos.get(s, 0))}
                          for s in pos_bad[:5]},
        },
    }


#: the figures of :func:`compare_to_truth` that must all be 0
FAILURE_KEYS: tuple[str, ...] = ("fills_missing", "fills_duplicated", "fills_mismatched", "position_mismatches",
                                 "balance_mismatches")


def matches_truth(result: Mapping[str, Any]) -> bool:
    """Whether a :func:`compare_to_truth` result has nothing missing, duplicated or different."""
    return bool(result.get("ready")) and not any(result[k] for k in FAILURE_KEYS)


def account_report(run: AccountRun, result: Mapping[str, Any], faults: Mapping[str, int]) -> dict[str, Any]:
    """The account keys of the chaos report (secrets are scanned by the caller, over the
    whole report)."""
    records = run.records()
    return {
        "fills_expected": result.get("fills_expected", 0),
        "fills_recorded": result.get("fills_recorded", 0),
        "fills_missing": result.get("fills_missing", 0) if result.get("ready") else result.get("truth_fills", -1),
        "fills_duplicated": result.get("fills_duplicated", 0),
        "fills_mismatched": result.get("fills_mismatched", 0),
        "position_mismatches": result.get("position_mismatches", 0),
        "balance_mismatches": result.get("balance_mismatches", 0),
        "account_recoveries": run.plans(),
        "restarts": run.restarts,
        "kill_times_s": run.kill_times,
        "private_faults_injected": {k: v for k, v in faults.items() if k in _private_kinds()},
        "private_disconnect_records": len(records),
        "account_samples": result.get("samples", {}),
        "account_truth_fills": result.get("truth_fills", 0),
    }


def _private_kinds() -> frozenset[str]:
    from bookkeeper.sim.faults import PRIVATE_KINDS

    return frozenset(k.value for k in PRIVATE_KINDS)


def account_failed(report: Mapping[str, Any]) -> bool:
    """Whether the account part of a report fails the run (issue [account] §6)."""
    return bool(report.get("fills_missing") or report.get("fills_duplicated") or report.get("position_mismatches")
                or report.get("balance_mismatches") or report.get("secrets_leaked"))


if __name__ == "__main__":
    raise SystemExit(main())
