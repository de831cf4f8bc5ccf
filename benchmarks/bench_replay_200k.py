"""``bookkeeper replay`` vs ccxt.pro on a ~205k-frame gzipped Binance spot capture, whole process.

    python benchmarks/bench_replay_200k.py [--rounds 5] [--msgs 205220] [--seed 7] [--capture PATH]

Input: a synthetic session in the hftbacktest collector layout (``<recv_ts_ns> <raw json>`` per
line, gzipped), built once from the seeded stream of ``_streams.make_stream`` (levels per
message, bid share, distance from mid and delete share all drawn from the real BTCUSDT capture;
seeded from that capture's REST snapshot): ``--msgs`` combined-stream ``depthUpdate`` frames
(``{"stream":"btcusdt@depth@100ms","data":{...}}``) with the REST snapshot body
(``{"lastUpdateId":...}``) as line 2, received right after the first delta — so the first delta
is buffered and spliced, exactly as live. 205,220 frames + 1 REST line = 205,221 lines. The
file is cached in the temp directory (``--capture`` to put it elsewhere, ``--rebuild`` to
rebuild); building it takes ~30 s.

Jobs, each a fresh process (``sys.executable``), the same file:

* ours: ``bookkeeper replay --venue binance FILE --json`` (the installed console script) — the CLI as a user runs it
  (gzip read, line split, decoder, fused C apply when built, BookSession, REST splice, report).
* ours, pure Python: the same with ``BOOKKEEPER_PURE_PYTHON=1`` (no C accelerator; the fused
  path is then the pure-Python twin, ``adapters/binance/_purefast.py``).
* ccxt: ``python benchmarks/bench_replay_200k.py --ccxt-job FILE`` — the same job done with
  ccxt the way ``bench_replay.py`` does it (its ``CcxtJob``: gzip read line by line, split
  ts/JSON, ccxt's ws JSON parser, ccxt.pro ``binance.handle_message`` per frame into a ccxt
  ``OrderBook``, the REST line through ccxt's own ``fetch_order_book_snapshot`` with the REST
  call stubbed to return the recorded body); it prints the final nonce and the book's size.

Start-up removed: every job is also run on a *tiny* capture (the first delta and the REST
line of the same session, 2 lines) in the same round, and its wall time is subtracted:
``net = wall(FILE) - wall(tiny)``. What is left is the work that grows with the file (reading,
decoding, applying, reporting), without interpreter start-up, imports, ccxt's exchange
construction or the adapter registry. Rounds are interleaved (the order of the three jobs
rotates each round, big and tiny back to back); medians of the net times and the ratio of
medians (ccxt / ours) are printed, with the p25..p75 of the per-round ratios. The same is
printed for the children's CPU time (user + sys, from ``getrusage``), which other jobs on a
shared machine disturb less than wall time; the wall ratio is the figure of record.

Cross-check before timing: ours' JSON report is OK with no problem and its ``last_seq`` equals
ccxt's final ``nonce``; the C and pure-Python reports are identical (but for
``fast_path_frames``, the frames each path's fused call took: the C decoder's subset is narrower
than msgspec's, so on odd inputs the counts may differ; both are printed).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _streams import capture_stats, machine_note, make_stream

MSGS = 205_220
SEED = 7
#: receive time of the first frame: the event time of ``make_stream``'s first frame + 5 ms
T0_NS = 1_723_161_255_308_000_000


def capture_lines(msgs: int = MSGS, seed: int = SEED) -> list[bytes]:
    """The capture's lines (with their newline): frames of the seeded stream stamped with a
    receive time 5 ms after their event time (+ a seeded 0..3 ms jitter, never out of order),
    the REST body 40 ms after the first frame."""
    import random

    body, frames, _ = make_stream(capture_stats(), msgs, seed)
    rng = random.Random(seed)
    lines = []
    for i, frame in enumerate(frames):
        ts = T0_NS + i * 100_000_000 + rng.randrange(3_000_000)
        lines.append(b"%d %s\n" % (ts, frame))
        if i == 0:
            lines.append(b"%d %s\n" % (ts + 40_000_000, body))
    return lines


def write_capture(path: Path, lines: list[bytes]) -> None:
    """Gzip ``lines`` into ``path`` (level 6, one member), atomically."""
    tmp = path.with_name(path.name + ".part")
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    with open(tmp, "wb") as fh:
        fh.writelines(comp.compress(b"".join(lines[i:i + 4096])) for i in range(0, len(lines), 4096))
        fh.write(comp.flush())
    os.replace(tmp, path)


def build(path: Path, tiny: Path, msgs: int, seed: int, rebuild: bool) -> None:
    if path.exists() and tiny.exists() and not rebuild:
        return
    t0 = time.perf_counter()
    lines = capture_lines(msgs, seed)
    write_capture(path, lines)
    write_capture(tiny, lines[:2])
    print(f"built {path} ({len(lines)} lines, {path.stat().st_size / 1e6:.1f} MB gzipped, "
          f"{sum(map(len, lines)) / 1e6:.1f} MB of text) in {time.perf_counter() - t0:.1f} s")


# --------------------------------------------------------------------------- the ccxt job
def ccxt_job(path: str) -> None:
    """The ccxt side, run in its own process: print ``{"nonce": ..., "bids": n, "asks": n}``."""
    import orjson
    from bench_replay import CcxtJob

    ob = CcxtJob().run([path])
    sys.stdout.write(orjson.dumps({"nonce": ob["nonce"], "bids": len(ob["bids"]), "asks": len(ob["asks"])}).decode()
                     + "\n")


# --------------------------------------------------------------------------- timing
def commands(path: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    env = dict(os.environ)
    env.pop("BOOKKEEPER_PURE_PYTHON", None)
    pure = dict(env, BOOKKEEPER_PURE_PYTHON="1")
    # the console script pip installed (what a user's ``bookkeeper`` runs), else the module
    script = Path(sys.executable).with_name("bookkeeper")
    cli = [sys.executable, str(script)] if script.is_file() else [sys.executable, "-m", "bookkeeper.cli"]
    ours = [*cli, "replay", "--venue", "binance", str(path), "--json"]
    return {
        "ours": (ours, env),
        "ours-pure": (ours, pure),
        "ccxt": ([sys.executable, str(Path(__file__).resolve()), "--ccxt-job", str(path)], env),
    }


def _children_cpu_ns() -> int:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return int((ru.ru_utime + ru.ru_stime) * 1e9)


def run(cmd: list[str], env: dict[str, str]) -> tuple[int, int, bytes]:
    """(wall ns, CPU ns, stdout) of one process."""
    c0 = _children_cpu_ns()
    t0 = time.perf_counter_ns()
    out = subprocess.run(cmd, env=env, capture_output=True, check=False)
    wall = time.perf_counter_ns() - t0
    cpu = _children_cpu_ns() - c0
    if out.returncode not in (0, 1):  # 1: a verification failed, still a finished replay
        raise SystemExit(f"{' '.join(cmd)} exited {out.returncode}:\n{out.stderr.decode()[-2000:]}")
    return wall, cpu, out.stdout


def cross_check(path: Path) -> None:
    import orjson

    big = commands(path)
    reports = {}
    for job in ("ours", "ours-pure"):
        reports[job] = orjson.loads(run(*big[job])[2])
    ccxt = orjson.loads(run(*big["ccxt"])[2])
    rep = reports["ours"]
    (sym, inst), = rep["per_instrument"].items()
    assert rep["ok"] and rep["problems"] == [], rep["problems"]
    # each path's fused call may take different frames (C's subset is narrower); everything
    # else is the same report
    assert {**reports["ours-pure"], "fast_path_frames": 0} == {**rep, "fast_path_frames": 0}, \
        "C and pure-Python reports differ"
    print(f"ours: {rep['messages']} messages, {inst['deltas_applied']} deltas applied "
          f"({rep['fast_path_frames']} on the fused path; pure: {reports['ours-pure']['fast_path_frames']}), "
          f"{inst['gaps']} gaps, {sym} {inst['state']} at "
          f"{inst['last_seq']}; ccxt: nonce {ccxt['nonce']}, {ccxt['bids']}+{ccxt['asks']} levels; "
          f"same last id: {inst['last_seq'] == ccxt['nonce']}")
    assert inst["last_seq"] == ccxt["nonce"], "ours and ccxt end on different update ids"


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--msgs", type=int, default=MSGS)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--capture", type=Path, default=None, help="where the capture is (built if missing)")
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--ccxt-job", metavar="FILE", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.ccxt_job:
        ccxt_job(args.ccxt_job)
        return {}
    path = args.capture or Path(tempfile.gettempdir()) / f"bookkeeper-bench-binance-spot-{args.msgs}-s{args.seed}.hbt.txt.gz"
    tiny = path.with_name(path.name.replace(".hbt.", ".tiny.hbt."))
    build(path, tiny, args.msgs, args.seed, args.rebuild)
    print(f"capture: {path} ({path.stat().st_size / 1e6:.1f} MB); start-up reference: {tiny}")
    print(machine_note())
    cross_check(path)

    big, small = commands(path), commands(tiny)
    jobs = list(big)
    net: dict[str, list[int]] = {j: [] for j in jobs}
    cpu: dict[str, list[int]] = {j: [] for j in jobs}
    start: dict[str, list[int]] = {j: [] for j in jobs}
    for r in range(args.rounds):
        order = jobs[r % len(jobs):] + jobs[:r % len(jobs)]
        for job in order:
            wall_big, cpu_big, _ = run(*big[job])
            wall_small, cpu_small, _ = run(*small[job])
            net[job].append(wall_big - wall_small)
            cpu[job].append(cpu_big - cpu_small)
            start[job].append(wall_small)
    med = {j: statistics.median(v) / 1e9 for j, v in net.items()}
    med_cpu = {j: statistics.median(v) / 1e9 for j, v in cpu.items()}
    print()
    print(f"{'job (net of start-up)':22} {'wall s':>8} {'ccxt/this':>10} {'p25..p75':>14}   {'CPU s':>7} "
          f"{'ccxt/this':>10}   {'start-up s':>10}")
    for job in jobs:
        per = sorted(c / o for c, o in zip(net["ccxt"], net[job]))
        print(f"{job:22} {med[job]:8.3f} {med['ccxt'] / med[job]:9.2f}x "
              f"{per[len(per) // 4]:6.2f}..{per[(3 * len(per)) // 4]:.2f}x   {med_cpu[job]:7.3f} "
              f"{med_cpu['ccxt'] / med_cpu[job]:9.2f}x   {statistics.median(start[job]) / 1e9:10.3f}")
    print(f"\n(medians of {args.rounds} interleaved rounds; net = process(capture) - process(2-line capture), "
          f"wall and CPU (user+sys of the child); ratio = ccxt / this; targets: ours >= 6x, ours-pure >= 4x)")
    return {j: med["ccxt"] / med[j] for j in jobs}


if __name__ == "__main__":
    main()
