"""Fleet chaos: N ingest processes sharing one Redis against one simulator, with the truth.

``bookkeeper chaos --venue V --seed S --instances N --redis URL --scenario SCENARIO
[--ab-lines] [--duration D] --json``

Theory of operation
-------------------
The parent runs one :class:`~bookkeeper.testing.sim.SimExchange` (the ground truth) and spawns
N real OS processes (:mod:`bookkeeper.apps.fleet_instance`), each one ingest instance with a
:class:`~bookkeeper.io.coord.RedisCoordinator` and a :class:`~bookkeeper.io.journal.RedisJournal`
on ``--redis`` (with ``--ab-lines`` each instance is an :class:`~bookkeeper.io.abfeed.ABFeed`:
two connections per stream). The run's journal streams and budgets are namespaced by a run tag
(``RedisJournal(stream_tag=)``, ``FleetConfig(source_ip=)``), so runs never read each other's
deltas and each run's connect budget starts full; the run's journal streams are deleted at the
end. Nothing else in that Redis is touched.

Each instance reports a throttled share of its served books' updates as ``(symbol, seq,
digest)``; the parent compares each with the digest of the engine's book at that id (the same
check as ``bookkeeper chaos``, :class:`~bookkeeper.apps.chaos.ConsistencyChecker`, without
shipping the levels), and checks that no instance's synced id goes backwards. At the end the
market stops and every instance must hold the current truth (``final_consistent``).

Scenarios (injected during the first ~70 % of ``--duration``, after every instance synced):

- ``mass-disconnect``: the simulator aborts every connection at once (1006), a few times. All
  instances missed the same ids, so one REST snapshot per symbol is taken for the fleet
  (singleflight); instances that reconnect later roll that snapshot forward with the journal.
- ``partial-disconnect``: a seeded random subset of the instances (never all) loses its
  connections at a time; with ``--ab-lines`` only their line A. The others keep journaling, so
  the cut instances replay their gaps from the journal: no REST snapshot.
- ``outage``: the simulator refuses every connection for ~30 % of the run (existing ones are
  cut): breakers open, attempts stay within the shared budget, one snapshot per symbol after.

**Incidents.** Incident *k* is the window from the *k*-th scenario disconnect (or the outage's
start) until the next one, or the end of the run; REST snapshot requests (each instance reports
every one with ``time.monotonic()``, one clock for every process of a host) are attributed to
the incident whose window holds them. Requests before the first incident are the initial sync
(``rest_snapshots_initial``). ``rest_snapshots_max_per_symbol_incident`` is the largest count of
requests for one symbol, fleet-wide, within one incident.

**Budget.** Every connection attempt (initial ones too) takes a token of the venue's shared
connect budget (the adapter's declared per-IP limit). ``reconnect_budget`` is the most that
budget's bucket could grant over the run (its burst plus its refill for the run's length; plus
the same for each instance that fell back to in-process coordination while Redis was down):
``reconnect_attempts_total`` never exceeds it.

Report keys (``--json``): ``instances``, ``scenario``, ``ab_lines``, ``rest_snapshots`` (total REST
snapshot requests), ``rest_snapshots_initial``, ``rest_snapshots_after_first_sync``,
``rest_snapshots_max_per_symbol_incident``, ``incidents``, ``journal_replays``,
``shared_snapshot_uses`` (a peer's snapshot, or one rolled forward with the journal, instead of
a REST request), ``reconnect_attempts_total``, ``reconnect_budget``, ``ab_failovers``,
``ab_holds``, ``served_gaps`` (times an instance's served book was down although it had been
served: both A/B lines lost), ``coordinator_degraded`` plus the ``bookkeeper chaos`` keys (``venue``,
``seed``, ``duration_s``, ``faults_injected``, ``disconnects``, ``reconnects``, ``recoveries``,
``checks``, ``mismatches``, ``seq_rewinds``, ``final_consistent``, ``time_to_consistent_ms``,
``reconnect_attempts_max_per_min``, ``breaker_opened``, ``disconnect_records``,
``driver_failures``).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bookkeeper.apps.chaos import SUPPORTED_VENUES, _capabilities, _summary
from bookkeeper.apps.fleet_instance import book_digest
from bookkeeper.apps.triage import max_per_minute
from bookkeeper.coordination import DEFAULT_BURST_FRACTION, bucket_shape, journaled
from bookkeeper.errors import UsageError
from bookkeeper.testing.sim import FaultKind, SimConfig, SimExchange

__all__ = ["SCENARIOS", "FleetChaosConfig", "check_redis", "fleet_failed", "run_fleet_chaos"]

SCENARIOS: tuple[str, ...] = ("mass-disconnect", "partial-disconnect", "outage")
SAFETY_S = 90.0  # a hung instance fails the run instead of hanging it; never used to wait


@dataclass(slots=True, kw_only=True)
class FleetChaosConfig:
    """One fleet chaos run (see the module docstring).

    Attributes:
        venue: a simulated venue whose ids chain (the journal needs them).
        instances: ingest processes.
        redis_url: the fleet's Redis.
        scenario: one of :data:`SCENARIOS`.
        ab_lines: two connections per stream in every instance.
        seed: seeds the market, the scenario's choices and the instances' jitter.
        duration_s: the run after every instance synced (scenario in its first ~70 %).
        incidents: scenario disconnects (``None``: about one per 1.5 s of the scenario window,
            at least 2).
        sample_interval_s: how often an instance reports each served book for a check.
        midrun: called once, at ~40 % of the run (a test kills Redis there).
        settle_timeout_s: how long the end waits for every book to hold the truth.
    """

    venue: str
    instances: int
    redis_url: str
    scenario: str
    ab_lines: bool = False
    seed: int = 0
    duration_s: float = 20.0
    incidents: int | None = None
    sample_interval_s: float = 0.1
    midrun: Callable[[], Awaitable[None] | None] | None = None
    settle_timeout_s: float = 25.0
    sync_timeout_s: float = 60.0
    tag: str = field(default_factory=lambda: "chaos-" + uuid.uuid4().hex[:8])


def check_redis(url: str, timeout_s: float = 2.0) -> None:
    """Raise :class:`UsageError` unless a Redis answers ``PING`` at ``url``.

    Raises:
        UsageError: redis-py missing, a malformed URL, or no answer within ``timeout_s``.
    """
    try:
        import redis
    except ImportError:
        raise UsageError("argument --redis: needs redis-py: pip install 'bookkeeper[redis]'") from None
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    except ValueError as exc:
        raise UsageError(f"argument --redis: not a Redis URL: {url!r} ({exc})") from None
    try:
        client.ping()
    except (redis.exceptions.RedisError, OSError) as exc:
        raise UsageError(f"argument --redis: no Redis answers at {url} ({type(exc).__name__}: {exc})") from None
    finally:
        client.close()


def check_venue(venue: str) -> None:
    """Raise :class:`UsageError` unless the simulator speaks ``venue`` and its ids chain."""
    if venue not in SUPPORTED_VENUES:
        raise UsageError(f"argument --venue: the simulator speaks {', '.join(SUPPORTED_VENUES)}, not {venue!r}")
    if not journaled(_capabilities(venue).sequence_model):
        raise UsageError(f"argument --instances: {venue} has no chaining sequence ids, so its deltas cannot be "
                         "journaled; a fleet run needs a venue whose ids chain")


class _Instance:
    """One instance process: its JSON lines dispatched as they come (never polled)."""

    def __init__(self, index: int, proc: asyncio.subprocess.Process, run: _Run) -> None:
        self.index = index
        self.proc = proc
        self._run = run
        self.synced = asyncio.Event()
        self.replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.stats: dict[str, Any] | None = None
        self.stderr: deque[str] = deque(maxlen=40)
        self.reader = asyncio.create_task(self._read())
        self.err_reader = asyncio.create_task(self._read_err())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while raw := await self.proc.stdout.readline():
            msg = json.loads(raw)
            ev = msg.get("ev")
            if ev == "sample":
                self._run.check_sample(self.index, msg)
            elif ev == "rest":
                self._run.rest_events.append((msg["t"], msg["sym"]))
            elif ev == "synced":
                self.synced.set()
            elif ev == "stats":
                self.stats = msg
                await self.replies.put(msg)
            else:
                await self.replies.put(msg)
        await self.replies.put({"ev": "exit"})

    async def _read_err(self) -> None:
        assert self.proc.stderr is not None
        while raw := await self.proc.stderr.readline():
            self.stderr.append(raw.decode(errors="replace").rstrip())

    async def ask(self, cmd: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(cmd.encode() + b"\n")
        await self.proc.stdin.drain()
        async with asyncio.timeout(SAFETY_S):
            return await self.replies.get()

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


@dataclass(slots=True)
class _Run:
    """The parent's state: the truth, the checks, the incidents."""

    sim: SimExchange
    venue: str
    checks: int = 0
    mismatches: int = 0
    skipped: int = 0
    seq_rewinds: int = 0
    mismatch_samples: list[str] = field(default_factory=list)
    high: dict[tuple[int, str], int] = field(default_factory=dict)
    rest_events: list[tuple[float, str]] = field(default_factory=list)
    incident_times: list[float] = field(default_factory=list)

    def check_sample(self, index: int, msg: dict[str, Any]) -> None:
        sym, seq = msg["sym"], msg["seq"]
        if seq is None:
            return
        key = (index, sym)
        if seq < self.high.get(key, seq):
            self.seq_rewinds += 1
        self.high[key] = max(seq, self.high.get(key, seq))
        engine = self.sim.engine
        if seq < engine.oldest_seq(sym) or seq > engine.seq(sym):
            self.skipped += 1
            return
        self.checks += 1
        bids, asks = engine.book_at(sym, seq)
        if book_digest(bids, asks) != msg["digest"]:
            self.mismatches += 1
            if len(self.mismatch_samples) < 10:
                self.mismatch_samples.append(f"instance {index} {sym} at seq {seq}: book differs from the truth")


def _incident_plan(cfg: FleetChaosConfig) -> list[float]:
    """Offsets (s) of the scenario disconnects within the run."""
    window = cfg.duration_s * 0.7
    if cfg.scenario == "outage":
        return [cfg.duration_s * 0.2]
    n = cfg.incidents if cfg.incidents is not None else max(2, int(window / 1.5))
    step = window / n
    return [round(0.5 + i * step, 3) for i in range(n)]


async def _cut(sim: SimExchange, venue: str, match: Callable[[dict[str, str]], bool]) -> int:
    """Abort (1006) the simulator's connections whose URL query matches."""
    server = sim.servers[venue]
    ordered = sorted(server.conns, key=lambda c: int(c.conn_id.rsplit("-", 1)[1]))
    hits = [i for i, c in enumerate(ordered) if match(c.query)]
    n = 0
    for i in reversed(hits):  # highest index first: the lower ones keep their place
        n += await sim.inject(FaultKind.ABORT, venue, conn_index=i)
    return n


async def _scenario(cfg: FleetChaosConfig, run: _Run, rng: random.Random, t0: float) -> None:
    sim, venue = run.sim, cfg.venue
    loop = asyncio.get_running_loop()
    for k, at in enumerate(_incident_plan(cfg)):
        delay = t0 + at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        run.incident_times.append(time.monotonic())
        if cfg.scenario == "mass-disconnect":
            await sim.inject(FaultKind.ABORT, venue)
        elif cfg.scenario == "partial-disconnect":
            size = rng.randint(1, max(1, cfg.instances - 1))
            chosen = {str(i) for i in rng.sample(range(cfg.instances), size)}
            if cfg.instances == 1 and not cfg.ab_lines:
                chosen = set()  # one instance alone: a partial cut would be a mass one
            lines = {"a"} if cfg.ab_lines else {"a", "b"}
            await _cut(sim, venue, lambda q: q.get("bookkeeper_instance") in chosen
                       and q.get("bookkeeper_line") in lines)
        else:
            await sim.outage(venue)
            await asyncio.sleep(cfg.duration_s * 0.3)
            await sim.end_outage(venue)


async def _spawn(cfg: FleetChaosConfig, run: _Run, index: int) -> _Instance:
    sim = run.sim
    child = {"index": index, "venue": cfg.venue, "symbols": list(sim.servers[cfg.venue].specs),
             "redis": cfg.redis_url, "tag": cfg.tag, "ws_root": sim.urls(cfg.venue)["ws_root"],
             "rest_config": sim.ccxt_config(cfg.venue), "seed": cfg.seed, "ab": cfg.ab_lines,
             "outage": cfg.scenario == "outage", "sample_interval_s": cfg.sample_interval_s,
             "sync_timeout_s": cfg.sync_timeout_s}
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bookkeeper.apps.fleet_instance", json.dumps(child), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, limit=1 << 22)
    return _Instance(index, proc, run)


async def _consistent(run: _Run, instances: list[_Instance], *, count: bool) -> bool:
    """Every instance's every book SYNCED and equal to the current truth (the market paused)."""
    engine = run.sim.engine
    ok = True
    for inst in instances:
        reply = await inst.ask("digest")
        if reply.get("ev") != "digest":
            ok = False  # the instance is gone
            if count:
                run.mismatch_samples.append(f"final: instance {inst.index} did not answer")
            continue
        for sym, b in reply.get("books", {}).items():
            if b["state"] != "synced":
                ok = False
                continue
            bids, asks = engine.book(sym)
            equal = b["digest"] == book_digest(bids, asks) and b["seq"] == engine.seq(sym)
            if count:
                run.checks += 1
                if not equal:
                    run.mismatches += 1
                    run.mismatch_samples.append(f"final: instance {inst.index} {sym} differs from the truth")
            ok = ok and equal
    return ok


async def _settle(run: _Run, instances: list[_Instance], timeout_s: float) -> bool:
    sim = run.sim
    sim.pause()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sim.push(updates=1)  # keep deltas flowing: a book waiting for a bridge needs one
        try:
            await sim.wait_sent(run.venue, timeout_s=2.0)
        except TimeoutError:
            pass
        await asyncio.sleep(0.2)  # the instances read what was sent (other processes: nothing to await)
        if await _consistent(run, instances, count=False):
            break
    return await _consistent(run, instances, count=True)


def _budget(cfg: FleetChaosConfig, elapsed_s: float, degraded: int) -> tuple[int | None, dict[str, Any] | None]:
    limit = _capabilities(cfg.venue).connect_limit
    if limit is None:
        return None, None
    capacity, rate = bucket_shape(limit, DEFAULT_BURST_FRACTION)
    one = capacity + rate * elapsed_s
    return int(one * (1 + degraded)), {"count": limit.count, "window_s": limit.window_s, "burst": capacity,
                                       "refill_per_s": rate}


async def _cleanup_redis(cfg: FleetChaosConfig) -> None:
    """Delete this run's journal streams (tagged), nothing else."""
    try:
        import redis.asyncio as aioredis

        r = aioredis.Redis.from_url(cfg.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
        try:
            keys = [k async for k in r.scan_iter(match=f"bookkeeper:{{{cfg.venue}}}:journal:*:{cfg.tag}")]
            if keys:
                await r.delete(*keys)
        finally:
            await r.aclose()
    except Exception:  # noqa: BLE001 - Redis may be gone (a test killed it): nothing to clean then
        pass


async def run_fleet_chaos(cfg: FleetChaosConfig) -> dict[str, Any]:
    """Run one fleet chaos session and return its report (see the module docstring).

    Raises:
        UsageError: an unknown scenario, a venue without chaining ids, fewer than 1 instance.
    """
    if cfg.scenario not in SCENARIOS:
        raise UsageError(f"argument --scenario: one of {', '.join(SCENARIOS)}, not {cfg.scenario!r}")
    if cfg.instances < 1:
        raise UsageError("argument --instances: at least 1")
    check_venue(cfg.venue)
    rng = random.Random(cfg.seed)
    started = time.monotonic()
    sim_cfg = SimConfig(push_interval_s=0.05, binance_ping_interval_s=5.0)
    instances: list[_Instance] = []
    driver_failures: dict[str, str] = {}
    async with SimExchange(venues=(cfg.venue,), seed=cfg.seed, config=sim_cfg) as sim:
        run = _Run(sim=sim, venue=cfg.venue)
        tasks: list[asyncio.Task[Any]] = []
        final = False
        try:
            instances = [await _spawn(cfg, run, i) for i in range(cfg.instances)]
            async with asyncio.timeout(cfg.sync_timeout_s + 30):
                for inst in instances:
                    waiter = asyncio.ensure_future(inst.synced.wait())
                    await asyncio.wait({waiter, inst.reader}, return_when=asyncio.FIRST_COMPLETED)
                    if not inst.synced.is_set():
                        waiter.cancel()
                        raise RuntimeError(f"instance {inst.index} exited before syncing: "
                                           + " | ".join(list(inst.stderr)[-5:]))
            first_sync = time.monotonic()
            loop = asyncio.get_running_loop()
            tasks.append(asyncio.create_task(_scenario(cfg, run, rng, loop.time())))
            if cfg.midrun is not None:
                async def midrun() -> None:
                    await asyncio.sleep(cfg.duration_s * 0.4)
                    out = cfg.midrun()  # type: ignore[misc]
                    if out is not None:
                        await out

                tasks.append(asyncio.create_task(midrun()))
            await asyncio.sleep(cfg.duration_s)
            for t in tasks:
                t.cancel()
            await sim.end_outage(cfg.venue)
            final = await _settle(run, instances, cfg.settle_timeout_s)
        finally:
            for t in tasks:
                t.cancel()
            for inst in instances:
                try:
                    if inst.proc.returncode is None:
                        reply = await inst.ask("stop")
                        while reply.get("ev") not in ("stats", "exit"):
                            reply = await inst.replies.get()
                    async with asyncio.timeout(SAFETY_S):
                        await inst.proc.wait()
                except (TimeoutError, OSError, ConnectionError):
                    inst.kill()
                    await inst.proc.wait()
                await asyncio.gather(inst.reader, inst.err_reader, return_exceptions=True)
                if inst.proc.stdin is not None:
                    inst.proc.stdin.close()  # the pipe's transport, before the loop ends
            await _cleanup_redis(cfg)
        elapsed = time.monotonic() - started
        report = _report(cfg, run, instances, sim, final, first_sync, elapsed)
    for inst in instances:
        if inst.stats is None:
            driver_failures[str(inst.index)] = "no final stats (exit %s): %s" % (
                inst.proc.returncode, " | ".join(list(inst.stderr)[-5:]))
        elif inst.stats.get("failure"):
            driver_failures[str(inst.index)] = inst.stats["failure"]
    report["driver_failures"] = driver_failures
    return report


def _report(cfg: FleetChaosConfig, run: _Run, instances: list[_Instance], sim: SimExchange, final: bool,
            first_sync: float, elapsed: float) -> dict[str, Any]:
    stats: Counter[str] = Counter()
    link: Counter[str] = Counter()
    attempts: list[float] = []
    records: list[dict[str, Any]] = []
    recoveries_ms: list[float] = []
    ab: Counter[str] = Counter()
    degraded = 0
    connections = 0
    breaker = 0
    journal: Counter[str] = Counter()
    for inst in instances:
        s = inst.stats
        if s is None:
            continue
        stats.update(s["stats"])
        link.update(s["link_snapshots"])
        attempts.extend(s["attempts"])
        records.extend(s["records"])
        recoveries_ms.extend(s["recoveries_ms"])
        connections += s["connections"]
        breaker += s["breaker_opens"]
        journal.update(s["journal"])
        degraded += bool(s["coordinator"]["degradations"])
        if s.get("ab"):
            ab.update(s["ab"])
    # REST requests per incident and symbol
    times = run.incident_times
    per_incident: list[Counter[str]] = [Counter() for _ in times]
    initial = 0
    for t, sym in run.rest_events:
        k = max((i for i, t_i in enumerate(times) if t_i <= t), default=None)
        if k is None:
            initial += 1
        else:
            per_incident[k][sym] += 1
    after_first = sum(1 for t, _ in run.rest_events if t > first_sync)
    budget, budget_detail = _budget(cfg, elapsed, degraded)
    established = [r for r in records if r["close_cause"] != "local_shutdown"
                   and (r.get("uptime_seconds", 0) > 0 or r.get("last_message_ago_ms") is not None)]
    return {
        "venue": cfg.venue,
        "seed": cfg.seed,
        "scenario": cfg.scenario,
        "instances": cfg.instances,
        "ab_lines": cfg.ab_lines,
        "duration_s": round(elapsed, 3),
        "faults_injected": {k: v for k, v in sim.faults_injected.items() if v},
        "incidents": len(times),
        "rest_snapshots": len(run.rest_events),
        "rest_snapshots_initial": initial,
        "rest_snapshots_after_first_sync": after_first,
        "rest_snapshots_max_per_symbol_incident": max((max(c.values(), default=0) for c in per_incident), default=0),
        "rest_snapshots_per_incident": [dict(c) for c in per_incident],
        "journal_replays": stats["replays"],
        "shared_snapshot_uses": link["shared"] + link["journal"],
        "shared_snapshot_rolled_forward": link["journal"],
        "reconnect_attempts_total": len(attempts),
        "reconnect_budget": budget,
        "reconnect_budget_limit": budget_detail,
        "ab_failovers": ab["failovers"],
        "ab_holds": ab["holds"],
        "served_gaps": ab["outages"],
        "coordinator_degraded": degraded,
        "disconnects": len(established),
        "reconnects": max(connections - cfg.instances * (2 if cfg.ab_lines else 1), 0),
        "recoveries": {"resume": stats["resumes"], "journal_replay": stats["replays"],
                       "ws_snapshot": stats["resubscribes"], "rest_snapshot": stats["rest_snapshots"],
                       "halt": stats["halts"]},
        "gaps": stats["gaps"],
        "checks": run.checks,
        "mismatches": run.mismatches,
        "skipped_checks": run.skipped,
        "seq_rewinds": run.seq_rewinds,
        "final_consistent": final,
        "time_to_consistent_ms": _summary(recoveries_ms),
        "reconnect_attempts_max_per_min": max_per_minute(attempts),
        "breaker_opened": breaker > 0,
        "disconnect_records": len(records),
        "journal": dict(journal),
        "mismatch_samples": run.mismatch_samples,
        "driver_failures": {},
    }


def fleet_failed(report: dict[str, Any]) -> bool:
    """Whether a fleet report is a failure: a mismatch, a book not consistent at the end, a
    synced id going back, a dead instance, or the connect budget exceeded."""
    budget = report.get("reconnect_budget")
    return bool(report["mismatches"] or not report["final_consistent"] or report.get("seq_rewinds")
                or report.get("driver_failures")
                or (budget is not None and report["reconnect_attempts_total"] > budget))
