"""The ``bookkeeper`` command line.

Exit status: 0 success; 1 verification failed (the report says which check: for ``replay`` a
checksum mismatch, gap, crossed book, parse error, divergence, ticker mismatch, a book not
synced at the end, or input that is not the venue's); 2 usage error or unreadable input (a
clear message on stderr naming the file and line, never a traceback).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import orjson

from . import sim as _sim
from .sim import exchange as _sim_exchange
from .errors import UsageError

if TYPE_CHECKING:
    from .apps.chaos import ChaosConfig
    from .io.metrics import MetricsServer


def _parser() -> argparse.ArgumentParser:
    from bookkeeper.adapters import VENUES

    p = argparse.ArgumentParser(prog="bookkeeper", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("replay", help="verify a recorded session offline",
                       description="Replay recorded exchange frames through the venue adapter and the book "
                                   "state machine; report checksums, gaps, crossed books, parse errors, "
                                   "divergences, ticker mismatches and frames the venue does not recognize.")
    r.add_argument("--venue", required=True, choices=VENUES, metavar="VENUE",
                   help="one of: " + ", ".join(VENUES))
    r.add_argument("files", nargs="+", metavar="FILE", help="recording files of one session (gzip ok; - reads standard input)")
    r.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")

    d = sub.add_parser("demo", help="run the ingest against the embedded simulator with faults",
                       description="Start the local exchange simulator (" + ", ".join(SIM_VENUES) + "), run the real "
                                   "ingest against it while it injects faults, and check every book against "
                                   "the simulator's truth. Runs until Ctrl-C without --duration.")
    d.add_argument("--duration", type=_positive, metavar="S", help="stop after S seconds")
    d.add_argument("--venues", type=_venue_list, default=None, metavar="V1,V2",
                   help="the simulated venues to run, any of: " + ", ".join(SIM_VENUES)
                        + " (default: " + ",".join(DEMO_VENUES) + ")")
    d.add_argument("--seed", type=int, default=0, help="seed of the market and the fault plan (default 0)")
    d.add_argument("--json", action="store_true", help="print exactly one JSON report object on stdout")
    d.add_argument("--records", metavar="PATH", help="also append disconnect records (JSON lines) to PATH")
    d.add_argument("--metrics-port", type=_port, metavar="P",
                   help="serve Prometheus metrics on http://127.0.0.1:P/metrics during the run "
                        "(0 = a free port, printed on stderr)")

    c = sub.add_parser("chaos", help="a seeded random fault plan against one simulated venue",
                       description="Seeded chaos against one simulated venue; exit 0 only when no check "
                                   "mismatched and every book ended consistent.")
    c.add_argument("--venue", required=True, choices=SIM_VENUES, help="one of: " + ", ".join(SIM_VENUES))
    c.add_argument("--seed", type=int, required=True, help="seed of the market and the fault plan")
    c.add_argument("--duration", type=_positive, default=30.0, metavar="S", help="seconds (default 30)")
    c.add_argument("--faults", type=_fault_list, default=None, metavar="KIND,...",
                   help="fault kinds to draw from (default all): " + ", ".join(FAULT_KINDS))
    c.add_argument("--outage", action="store_true",
                   help="refuse every connection for the middle of the run (proves the breaker)")
    c.add_argument("--account", action="store_true",
                   help="also run the venue's account side (" + ", ".join(_sim_exchange.ACCOUNT_VENUES) + "): the simulator's "
                        "ground-truth account, the account ingest, private faults ("
                        + ", ".join(k.value for k in _sim.PRIVATE_KINDS) + "); the report adds the fill, position, "
                        "balance and secret-leak checks")
    c.add_argument("--kill-restart", type=_count, default=0, metavar="K",
                   help="with --account: SIGKILL the account ingest K times at random moments and restart it "
                        "from its store")
    c.add_argument("--account-dir", metavar="DIR",
                   help="with --account: keep the account store, records, plans and logs in DIR "
                        "(default: a temporary folder, removed at the end)")
    c.add_argument("--instances", type=_count, default=None, metavar="N",
                   help="a fleet run: N ingest processes sharing --redis against one simulator (with --redis "
                        "and --scenario); the report adds the fleet keys (README: Many instances)")
    c.add_argument("--redis", metavar="URL", help="with --instances: the fleet's Redis (redis://host:port/db)")
    c.add_argument("--scenario", choices=("mass-disconnect", "partial-disconnect", "outage"),
                   help="with --instances: mass-disconnect (every connection aborted at once), partial-disconnect "
                        "(a random subset at a time), outage (every connection refused for a while)")
    c.add_argument("--ab-lines", action="store_true",
                   help="with --instances: two connections per stream in every instance (A/B lines)")
    c.add_argument("--json", action="store_true", help="print exactly one JSON report object on stdout")
    c.add_argument("--records", metavar="PATH", help="also append disconnect records (JSON lines) to PATH")
    c.add_argument("--metrics-port", type=_port, metavar="P",
                   help="serve Prometheus metrics on http://127.0.0.1:P/metrics during the run "
                        "(0 = a free port, printed on stderr)")

    rec = sub.add_parser("record", help="record a live session for bookkeeper replay",
                         description="Record a live session (WebSocket frames both ways, connection opens and "
                                     "closes, the REST snapshots fetched) in bookkeeper's recording format, which "
                                     "bookkeeper replay reads. Credentials are never written. Runs until Ctrl-C "
                                     "without --duration; progress on stderr.")
    rec.add_argument("--venue", required=True, choices=VENUES, metavar="VENUE", help="one of: " + ", ".join(VENUES))
    rec.add_argument("symbols", nargs="+", metavar="SYMBOL", help="instruments, spelled as the venue does")
    rec.add_argument("--out", required=True, metavar="FILE", help="the recording to write (created or truncated)")
    rec.add_argument("--duration", type=_positive, metavar="S", help="stop after S seconds")
    rec.add_argument("--depth", type=int, default=None, metavar="N", help="subscribed book depth (venues that take one)")
    target = rec.add_mutually_exclusive_group()
    target.add_argument("--sim", action="store_true",
                        help="record from an embedded simulator of the venue on 127.0.0.1 (" + ", ".join(SIM_VENUES)
                             + ") instead of the real exchange")
    target.add_argument("--ws-url", metavar="URL", help="WebSocket root to connect to (default: the venue's own)")
    rec.add_argument("--rest-url", metavar="URL", help="REST root for snapshots (default: the venue's own)")
    rec.add_argument("--seed", type=int, default=0, help="seed of the embedded simulator's market (with --sim)")

    t = sub.add_parser("triage", help="name the likely causes of a disconnect history",
                       description="Read disconnect records (JSON lines, from one or many bot instances) and "
                                   "name the likely causes, each with its evidence and the first safe move. "
                                   "Malformed lines are counted and reported, never fatal.")
    t.add_argument("files", nargs="+", metavar="FILE", help="records files (gzip ok; - reads standard input)")
    t.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    t.add_argument("--plot", metavar="OUT", help="write a PNG timeline of the disconnects and the distributions of "
                                                 "last-message age and uptime (needs matplotlib: "
                                                 "pip install 'bookkeeper[plot]')")

    s = sub.add_parser("sim", help="run the exchange simulator standalone for your own bot",
                       description="Serve a simulated venue on 127.0.0.1 (prints its URLs as one JSON line) "
                                   "until Ctrl-C.")
    s.add_argument("--venue", action="append", choices=SIM_VENUES, metavar="VENUE",
                   help="venue to serve (repeatable; default all): " + ", ".join(SIM_VENUES))
    s.add_argument("--port", type=_port, default=0,
                   help="first port (0 = ephemeral); venue i listens on PORT + i, so all must be <= 65535")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--faults", type=_fault_list, default=None, metavar="KIND,...",
                   help="inject these fault kinds at random (seeded)")
    s.add_argument("--fault-rate", type=_positive, default=0.1, metavar="PER_S")
    return p


#: the simulator's venues and fault kinds, from its registries (``bookkeeper.sim``)
SIM_VENUES: tuple[str, ...] = tuple(_sim.VENUES)
#: the demo's default venues (``--venues`` picks any of SIM_VENUES)
DEMO_VENUES: tuple[str, ...] = tuple(_sim.DEMO_VENUES)
FAULT_KINDS: tuple[str, ...] = tuple(k.value for k in _sim.FAULTS)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return value


_MAX_PORT = 65535


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= _MAX_PORT:
        raise argparse.ArgumentTypeError(f"must be 0..{_MAX_PORT}: {text!r}")
    return value


def _venue_list(text: str) -> tuple[str, ...]:
    venues = tuple(dict.fromkeys(v.strip() for v in text.split(",") if v.strip()))
    bad = [v for v in venues if v not in SIM_VENUES]
    if bad or not venues:
        raise argparse.ArgumentTypeError(f"unknown venue(s) {', '.join(bad) or repr(text)}; "
                                         f"choose from: {', '.join(SIM_VENUES)}")
    return venues


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {value}")
    return value


def _fault_list(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    bad = [k for k in kinds if k not in FAULT_KINDS]
    if bad or not kinds:
        raise argparse.ArgumentTypeError(f"unknown fault kind(s) {', '.join(bad) or text!r}; "
                                         f"known: {', '.join(FAULT_KINDS)}")
    return kinds


def _cmd_replay(args: argparse.Namespace) -> int:
    from bookkeeper.adapters import VENUES, get_adapter

    from .io.replay import format_table, replay, stderr_progress

    progress = None if args.json else stderr_progress()
    others = [get_adapter(v) for v in VENUES if v != args.venue]
    report = replay(get_adapter(args.venue), args.files, progress=progress, alternatives=others)
    if progress is not None:
        sys.stderr.write("\n")
    if args.json:
        sys.stdout.write(orjson.dumps(report.as_json()).decode() + "\n")
    else:
        print(format_table(report))
    problem = report.input_problem
    if problem is not None:
        # stdout may be a JSON pipe: the likely mix-up is also said where a person looks
        print(f"bookkeeper replay: {problem}", file=sys.stderr)
    return 0 if report.ok else 1


def _serve_metrics(cfg: ChaosConfig, port: int | None, title: str) -> MetricsServer | None:
    """Serve the run's metrics (``cfg.metrics``, made here) when ``--metrics-port`` was given;
    the bound port is printed on stderr (0 asks for a free one)."""
    if port is None:
        return None
    from .io.metrics import FeedMetrics

    metrics = FeedMetrics()
    cfg.metrics = metrics
    try:
        server = metrics.serve(port)
    except OSError as exc:
        raise UsageError(f"argument --metrics-port: cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    print(f"{title}: metrics on {server.url}", file=sys.stderr, flush=True)
    return server


def _run_chaos(cfg: ChaosConfig, *, json_out: bool, view_title: str, metrics_port: int | None = None) -> int:
    import asyncio
    import logging
    import signal

    from .apps.chaos import run_chaos, run_failed
    from .apps.view import RecentLog, TerminalView, format_summary

    server = _serve_metrics(cfg, metrics_port, view_title)

    live = sys.stdout.isatty() and not json_out
    root = logging.getLogger("bookkeeper")
    handler: logging.Handler
    if live:
        handler = RecentLog()
        view = TerminalView(log=handler)  # type: ignore[arg-type]
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(logging.WARNING)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        view = None
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False

    async def main() -> dict:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGINT, stop.set)
            loop.add_signal_handler(signal.SIGTERM, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-POSIX
            pass
        if not live and not json_out:
            print(f"{view_title}: running (Ctrl-C to stop early)...", file=sys.stderr)
        return await run_chaos(cfg, view=view, stop=stop)

    try:
        report = asyncio.run(main())
    finally:
        root.removeHandler(handler)
        if server is not None:
            server.close()
    if json_out:
        sys.stdout.write(orjson.dumps(report).decode() + "\n")
    else:
        print(format_summary(report))
    for venue, why in report.get("driver_failures", {}).items():
        print(f"{view_title}: {venue} feed died: {why}", file=sys.stderr)
    if report.get("seq_rewinds"):
        print(f"{view_title}: {report['seq_rewinds']} synced book(s) went back in sequence id: "
              f"{report.get('seq_rewind_samples', [])[:3]}", file=sys.stderr)
    return 1 if run_failed(report) else 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .apps.chaos import DEMO_FAULTS, ChaosConfig
    from .io.records import check_writable

    if args.records is not None:
        check_writable(args.records)  # UsageError (exit 2, one line) before anything starts
    cfg = ChaosConfig(venues=args.venues or DEMO_VENUES, seed=args.seed, duration_s=args.duration,
                      faults=DEMO_FAULTS, fault_rate_per_s=0.6, records_path=args.records, venues_as_list=True)
    return _run_chaos(cfg, json_out=args.json, view_title="bookkeeper demo", metrics_port=args.metrics_port)


def _cmd_chaos(args: argparse.Namespace) -> int:
    from .apps.chaos import ALL_FAULTS, ChaosConfig
    from .io.records import check_writable

    if args.instances is not None or args.redis is not None or args.scenario is not None or args.ab_lines:
        return _cmd_fleet_chaos(args)

    if args.records is not None:
        check_writable(args.records)  # UsageError (exit 2, one line) before anything starts
    from .apps.chaos import ACCOUNT_SIM_VENUES, PRIVATE_FAULTS

    if not args.account:
        if args.kill_restart:
            raise UsageError("argument --kill-restart: needs --account")
        if args.account_dir is not None:
            raise UsageError("argument --account-dir: needs --account")
        private = [k for k in args.faults or () if k in PRIVATE_FAULTS]
        if private:
            raise UsageError(f"argument --faults: {', '.join(private)} act on the account side: add --account")
    elif args.venue not in ACCOUNT_SIM_VENUES:
        raise UsageError(f"argument --account: the simulator runs accounts on {', '.join(ACCOUNT_SIM_VENUES)}, "
                         f"not {args.venue!r}")
    faults = args.faults or (ALL_FAULTS + PRIVATE_FAULTS if args.account else ALL_FAULTS)
    cfg = ChaosConfig(venues=(args.venue,), seed=args.seed, duration_s=args.duration, faults=faults,
                      outage=args.outage, records_path=args.records, account=args.account,
                      kill_restart=args.kill_restart, account_workdir=args.account_dir)
    return _run_chaos(cfg, json_out=args.json, view_title=f"bookkeeper chaos {args.venue}",
                      metrics_port=args.metrics_port)


def _cmd_fleet_chaos(args: argparse.Namespace) -> int:
    """``chaos --instances N --redis URL --scenario S [--ab-lines]`` (bookkeeper.apps.fleet_chaos)."""
    import asyncio
    import logging

    from .apps.fleet_chaos import FleetChaosConfig, check_redis, check_venue, fleet_failed, run_fleet_chaos

    for flag, value in (("--instances", args.instances), ("--redis", args.redis), ("--scenario", args.scenario)):
        if value is None:
            raise UsageError(f"argument {flag}: a fleet run needs --instances, --redis and --scenario")
    if args.instances < 1:
        raise UsageError("argument --instances: at least 1")
    for flag, bad in (("--account", args.account), ("--kill-restart", args.kill_restart),
                      ("--account-dir", args.account_dir is not None), ("--faults", args.faults is not None),
                      ("--outage", args.outage), ("--records", args.records is not None),
                      ("--metrics-port", args.metrics_port is not None)):
        if bad:
            raise UsageError(f"argument {flag}: not with --instances (the scenario decides the faults)")
    check_venue(args.venue)
    check_redis(args.redis)
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    root = logging.getLogger("bookkeeper")
    root.addHandler(handler)
    cfg = FleetChaosConfig(venue=args.venue, instances=args.instances, redis_url=args.redis, scenario=args.scenario,
                           ab_lines=args.ab_lines, seed=args.seed, duration_s=args.duration)
    if not args.json:
        print(f"bookkeeper chaos {args.venue}: {args.instances} instances, {args.scenario}...", file=sys.stderr)
    try:
        report = asyncio.run(run_fleet_chaos(cfg))
    finally:
        root.removeHandler(handler)
    if args.json:
        sys.stdout.write(orjson.dumps(report).decode() + "\n")
    else:
        keys = ("instances", "scenario", "rest_snapshots", "rest_snapshots_max_per_symbol_incident", "journal_replays",
                "shared_snapshot_uses", "reconnect_attempts_total", "reconnect_budget", "ab_failovers", "checks",
                "mismatches", "final_consistent")
        print("\n".join(f"{k}: {report[k]}" for k in keys))
    for index, why in report.get("driver_failures", {}).items():
        print(f"bookkeeper chaos: instance {index} failed: {why}", file=sys.stderr)
    return 1 if fleet_failed(report) else 0


def _cmd_record(args: argparse.Namespace) -> int:
    if args.sim and args.rest_url is not None:
        raise UsageError("argument --rest-url: not allowed with argument --sim")
    if args.sim and args.venue not in SIM_VENUES:
        raise UsageError(f"argument --sim: the simulator speaks {', '.join(SIM_VENUES)}, not {args.venue!r}")
    if args.depth is not None and args.depth <= 0:
        raise UsageError(f"argument --depth: must be > 0: {args.depth}")
    return _run_record(args)


def _run_record(args: argparse.Namespace) -> int:
    """Record until ``--duration`` ends or Ctrl-C; progress (frames recorded) on stderr."""
    import asyncio
    import contextlib
    import signal

    from .errors import InvalidState
    from .io.record import Recorder
    from .io.recording import RecordKind
    from .io.rest import rest_config_for
    from .io.stream import DriverConfig

    rest_config = rest_config_for(args.venue, args.rest_url) if args.rest_url is not None else None
    tty = sys.stderr.isatty()

    def progress(rec: Recorder, final: bool = False) -> None:
        c = rec.sink.counts
        line = (f"bookkeeper record: {rec.sink.frames} frames recorded ({c[RecordKind.RECV]} in, "
                f"{c[RecordKind.SENT]} out), {c[RecordKind.REST]} REST snapshots, {c[RecordKind.OPEN]} connections")
        if tty and not final:
            sys.stderr.write("\r" + line)
        else:
            sys.stderr.write(("\r" if tty else "") + line + (f" -> {args.out}" if final else "") + "\n")
        sys.stderr.flush()

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):  # pragma: no cover - non-POSIX
            loop.add_signal_handler(signal.SIGINT, stop.set)
            loop.add_signal_handler(signal.SIGTERM, stop.set)
        async with contextlib.AsyncExitStack() as stack:
            ws_url, rest_cfg = args.ws_url, rest_config
            if args.sim:
                sim = await stack.enter_async_context(
                    _sim.SimExchange(venues=(args.venue,), symbols={args.venue: args.symbols}, seed=args.seed))
                ws_url, rest_cfg = sim.urls(args.venue)["ws_root"], sim.ccxt_config(args.venue)
            try:
                rec = Recorder(args.venue, args.symbols, args.out, ws_url=ws_url, rest_config=rest_cfg,
                               config=DriverConfig(depth=args.depth))
            except OSError as exc:
                raise UsageError(f"argument --out: cannot write {args.out}: {exc.strerror or exc}") from None
            await rec.start()
            failed = False
            try:
                deadline = None if args.duration is None else loop.time() + args.duration
                while not stop.is_set() and rec.feed.failure is None:
                    left = 1.0 if deadline is None else min(1.0, deadline - loop.time())
                    if left <= 0:
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), left)
                    progress(rec)
            finally:
                try:
                    await rec.close()
                except InvalidState as exc:  # the driver died: the file holds what came before
                    print(f"bookkeeper record: error: {exc}", file=sys.stderr)
                    failed = True
            progress(rec, final=True)
            return 1 if failed else 0
        return 0  # pragma: no cover - the block always returns

    return asyncio.run(main())


def _cmd_triage(args: argparse.Namespace) -> int:
    from .apps.triage import format_report, triage_files

    report = triage_files(args.files)
    if args.plot is not None:
        from .apps.triage_plot import plot_report

        plot_report(report, args.plot)
    if args.json:
        sys.stdout.write(orjson.dumps(report.as_json()).decode() + "\n")
    else:
        print(format_report(report))
        if args.plot is not None:
            print(f"picture: {args.plot}")
    if report.malformed:
        print(f"bookkeeper triage: {report.malformed} malformed line(s) skipped, e.g. "
              f"{report.malformed_samples[0]}", file=sys.stderr)
    return 0


def _cmd_sim(args: argparse.Namespace) -> int:
    import asyncio

    from .testing.sim import FaultPlan, serve

    venues = tuple(dict.fromkeys(args.venue or SIM_VENUES))
    last = args.port + len(venues) - 1
    if args.port and last > _MAX_PORT:
        # serve() puts venue i on port + i: refuse here, not with a traceback from the bind
        raise UsageError(f"argument --port: {len(venues)} venues need ports {args.port}..{last}, "
                         f"beyond {_MAX_PORT}; use a port <= {_MAX_PORT - len(venues) + 1} or 0")
    plan = None
    if args.faults:
        plan = FaultPlan.random(args.seed, args.faults, rate_per_s=args.fault_rate, duration_s=24 * 3600.0,
                                venues=venues)

    def show(line: str) -> None:
        print(line, flush=True)

    try:
        asyncio.run(serve(venues, port=args.port, seed=args.seed, faults=plan, print_urls=show))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        raise UsageError(f"cannot listen: {exc}") from None
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            return _cmd_demo(args)
        if args.command == "chaos":
            return _cmd_chaos(args)
        if args.command == "sim":
            return _cmd_sim(args)
        if args.command == "replay":
            return _cmd_replay(args)
        if args.command == "triage":
            return _cmd_triage(args)
        if args.command == "record":
            return _cmd_record(args)
    except UsageError as exc:
        print(f"bookkeeper {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
