"""The delta journal's cost on the hot path: synced Binance frames with and without appends.

    python benchmarks/bench_journal.py [--msgs 20000] [--rounds 5] [--seed 7] [--redis URL]

Every variant feeds the SAME seeded stream of combined-stream ``depthUpdate`` frames (drawn from
the real capture's distributions, ``_streams.make_stream``) through the driver's steady state
(``BookSession.apply_frame_fast``, the fused path), in an asyncio loop that yields every 64
frames as a socket reader would:

* ``none``: no journal (the baseline);
* ``memory``: ``MemoryJournal.append_frame`` per frame (decode + store, in-line);
* ``redis``: ``RedisJournal.append_frame`` per frame: the hot path only appends to a bounded
  queue; its flush task decodes, msgpack-encodes and sends ``XADD <u>-0 ... MINID`` in
  pipelined batches (one round trip per batch) while the stream is fed; the round ends when
  everything was sent, so the time includes all of the journal's work;
* ``redis x2``: two journals (two writers) appending the same frames: the second writer's
  copies are refused by id (duplicates), the fleet's usual case.

Printed per variant: the median time per message and its overhead over ``none``; for the Redis
variants also the hot-path-only share (the time spent inside ``append_frame``) and what the
journals counted. Without ``--redis`` a ``redis-server`` on PATH is started on a free loopback
port (``--save '' --appendonly no``) and stopped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _streams import OursHarness, capture_stats, machine_note, make_stream  # noqa: E402

YIELD_EVERY = 64


def start_redis() -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server not found: install it (apt-get install redis-server) or pass --redis URL")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    for line in proc.stdout:
        if b"Ready to accept connections" in line:
            break
    subprocess.Popen(["cat"], stdin=proc.stdout, stdout=subprocess.DEVNULL)
    return proc, f"redis://127.0.0.1:{port}/0"


async def one_round(h: OursHarness, body: bytes, frames: list[bytes], journals: list[object]) -> tuple[int, int]:
    """(total ns, ns inside append_frame) for one pass over ``frames``."""
    from bookkeeper.adapters.binance import parse  # noqa: F401 - the fused path's module

    session, _ = h.new_session(body, frames[0])
    fast = session.apply_frame_fast
    fz = h.fused
    appends = [j.append_frame for j in journals]  # type: ignore[attr-defined]
    sym = session.symbol
    inside = 0
    t0 = time.perf_counter_ns()
    for i, frame in enumerate(frames[1:], 1):
        if not fast(frame, fz):
            raise AssertionError("the fused path declined a steady-state frame")
        if appends:
            a0 = time.perf_counter_ns()
            for append in appends:
                append(sym, frame, 0)
            inside += time.perf_counter_ns() - a0
        if i % YIELD_EVERY == 0:
            await asyncio.sleep(0)
    for j in journals:
        flush = getattr(j, "flush", None)
        if flush is not None:
            await flush()
    return time.perf_counter_ns() - t0, inside


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--msgs", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--redis", default=None, help="redis URL (default: start a local redis-server)")
    args = ap.parse_args()

    from bookkeeper.adapters import get_adapter
    from bookkeeper.io.journal import MemoryJournal, RedisJournal

    proc = None
    url = args.redis
    if url is None:
        proc, url = start_redis()
    try:
        stats = capture_stats()
        body, frames, _ = make_stream(stats, args.msgs + 1, args.seed)
        h = OursHarness()
        adapter = get_adapter("binance")
        print(machine_note())
        print(f"{args.msgs} frames, {args.rounds} rounds, redis {url}")
        results: dict[str, list[tuple[int, int]]] = {}
        counts: dict[str, str] = {}
        for r in range(args.rounds):
            for name in ("none", "memory", "redis", "redis x2"):
                journals: list[object] = []
                if name == "memory":
                    journals = [MemoryJournal(window=args.msgs * 2)]
                elif name.startswith("redis"):
                    n = 2 if name.endswith("x2") else 1
                    journals = [RedisJournal(url, window=args.msgs * 2, stream_tag=f"bench{r}") for _ in range(n)]
                    await journals[0].client.delete(f"bookkeeper:{{binance}}:journal:BTCUSDT:bench{r}")  # type: ignore[attr-defined]
                for j in journals:
                    j.attach(adapter)  # type: ignore[attr-defined]
                results.setdefault(name, []).append(await one_round(h, body, frames, journals))
                sts = [j.stats for j in journals]  # type: ignore[attr-defined]
                counts[name] = ", ".join(f"{k} {sum(getattr(st, k) for st in sts)}"
                                         for k in ("written", "duplicates", "dropped", "failed"))
                for j in journals:
                    close = getattr(j, "close", None)
                    if close is not None:
                        await close()
        base = statistics.median(t for t, _ in results["none"]) / args.msgs
        for name, rounds in results.items():
            per = statistics.median(t for t, _ in rounds) / args.msgs
            hot = statistics.median(i for _, i in rounds) / args.msgs
            line = f"{name:10s} {per / 1000:7.2f} us/msg  overhead {max(per - base, 0) / 1000:6.2f} us/msg"
            if name.startswith("redis"):
                line += f"  (hot path {hot / 1000:.2f} us/msg; {counts[name]})"
            print(line)
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    asyncio.run(main())
