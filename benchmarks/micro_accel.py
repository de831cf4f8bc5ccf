"""Quick micro-check of the C accelerators' hot calls (a minute, not the full benches).

Not one of the RESULTS.md benches (those are ``bench_pipeline.py``, ``bench_book.py`` and
``bench_replay.py``): this times the raw C entry points on a short bench stream so a change to
``bookkeeper/_speedups.c`` or ``adapters/binance/_fastdepth.c`` can be compared before/after
on a busy machine. Per round, fresh containers (setup untimed):

* ``fused``   ``binance_depth_apply`` over the stream (decode + APPLY check + apply, in C)
* ``decode``  ``binance_depth`` (frame -> BookDelta) over the stream
* ``apply``   ``L2Book.apply_delta`` of the pre-decoded deltas (the generic C level loop)
* ``top25``   ``L2Book.top(25)`` on the final book, once per message
* ``okx``     ``top_raw(25)`` + ``okx_checksum`` on a 10k-level book with exchange strings

``--against PATH`` also loads PATH, an older build of ``bookkeeper._speedups`` that still held
the Binance decoder (before the split into ``_fastdepth``), and runs both in the SAME process,
rounds interleaved (order alternating), so machine noise hits both alike; it prints medians and
the median of the per-round ratios (current / old: below 1 is faster)::

    python benchmarks/micro_accel.py --against /tmp/before/_speedups_before.so
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _load_as(path: str, name: str) -> Any:
    """Load the extension at ``path`` as a module object without registering it."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--msgs", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--against", default=None, help="an older _speedups build to compare with")
    args = ap.parse_args(argv)

    import orjson
    from _streams import SYMBOL, capture_stats, make_stream

    import bookkeeper.book as book_mod
    import bookkeeper.checksum as ck_mod
    from bookkeeper.book import L2Book
    from bookkeeper.checksum import okx_checksum
    from bookkeeper.events import BookDelta

    assert book_mod._sp is not None, "C accelerator not built (or BOOKKEEPER_PURE_PYTHON=1)"
    # (book/checksum module, Binance decoder module) per implementation
    impls = {"current": (book_mod._sp, importlib.import_module("bookkeeper.adapters.binance._fastdepth"))}
    if args.against:
        old = _load_as(args.against, "bookkeeper._speedups")
        impls["old"] = (old, old)

    body, frames, last_id = make_stream(capture_stats(), args.msgs, args.seed)
    snap = orjson.loads(body)
    sbids = [(float(p), float(s)) for p, s in snap["bids"]]
    sasks = [(float(p), float(s)) for p, s in snap["asks"]]
    deltas = [impls["current"][1].binance_depth(f, 0, BookDelta) for f in frames]
    assert all(d is not None for d in deltas)
    n = len(frames)

    def fresh() -> L2Book:
        b = L2Book()
        b.apply_snapshot(sbids, sasks)
        return b

    def fused(sp: Any, fd: Any) -> Callable[[], None]:
        b = fresh()
        f = fd.binance_depth_apply

        def run() -> None:
            local = last_id
            for fr in frames:
                local = f(fr, SYMBOL, 1, local, b._bids, b._bkeys, b._asks, b._akeys)[1]
        return run

    def decode(sp: Any, fd: Any) -> Callable[[], None]:
        f = fd.binance_depth

        def run() -> None:
            for fr in frames:
                f(fr, 0, BookDelta)
        return run

    def apply(sp: Any, fd: Any) -> Callable[[], None]:
        b = fresh()

        def run() -> None:
            ap_ = b.apply_delta
            for d in deltas:
                ap_(d.bids, d.asks)
        return run

    top_book = fresh()
    for d in deltas:
        top_book.apply_delta(d.bids, d.asks)

    def top25(sp: Any, fd: Any) -> Callable[[], None]:
        t = top_book.top

        def run() -> None:
            for _ in range(n):
                t(25)
        return run

    raw_book = L2Book()
    rb = [(100000.0 - i * 0.1, 1.0 + i) for i in range(10000)]
    ra = [(100000.05 + i * 0.1, 1.0 + i) for i in range(10000)]
    raw_book.apply_snapshot(rb, ra, [(f"{p:.2f}", f"{s:.1f}") for p, s in rb],
                            [(f"{p:.2f}", f"{s:.1f}") for p, s in ra])

    def okx(sp: Any, fd: Any) -> Callable[[], None]:
        def run() -> None:
            for _ in range(n):
                tb, ta = raw_book.top_raw(25)
                okx_checksum(tb, ta)
        return run

    benches = {"fused": fused, "decode": decode, "apply": apply, "top25": top25, "okx": okx}
    times: dict[tuple[str, str], list[int]] = {(b, i): [] for b in benches for i in impls}
    saved = book_mod._sp, ck_mod._sp
    try:
        for r in range(args.rounds):
            order = list(impls) if r % 2 == 0 else list(reversed(impls))
            for bname, mk in benches.items():
                for iname in order:
                    sp, fd = impls[iname]
                    book_mod._sp = ck_mod._sp = sp
                    run = mk(sp, fd)  # setup, untimed
                    t0 = time.perf_counter_ns()
                    run()
                    times[bname, iname].append(time.perf_counter_ns() - t0)
    finally:
        book_mod._sp, ck_mod._sp = saved

    out: dict[str, float] = {}
    print(f"{n} msgs, {args.rounds} rounds; us/msg, medians")
    for bname in benches:
        cur = times[bname, "current"]
        line = f"{bname:7} current {statistics.median(cur) / n / 1e3:7.3f}"
        out[bname] = statistics.median(cur) / n / 1e3
        if "old" in impls:
            old_t = times[bname, "old"]
            ratios = sorted(c / o for c, o in zip(cur, old_t))
            line += (f"   old {statistics.median(old_t) / n / 1e3:7.3f}   current/old per round: median "
                     f"{statistics.median(ratios):.3f} (p25..p75 {ratios[len(ratios) // 4]:.3f}.."
                     f"{ratios[3 * len(ratios) // 4]:.3f})")
        print(line)
    return out


if __name__ == "__main__":
    main()
