"""Long mutation-fuzz run of every registered adapter (not part of the test suite).

The CI test (``tests/adapters/test_fuzz.py``) tries 2,000 mutants per adapter; this tries
100,000 (``--frames``) with the same kit and seeds, and prints per-adapter counts::

    python benchmarks/fuzz_long.py                      # 100,000 per adapter, default seed
    python benchmarks/fuzz_long.py --frames 5000 --seed 7 --venue okx --json

Exit status 1 when any adapter let an untyped exception out, a session crashed, a rejected
frame changed a book or the fused fast path disagreed with the decoder. Results are recorded in
``benchmarks/FUZZ.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "adapters"))  # the seed captures map lives with the CI test

from bookkeeper.adapters import VENUES, get_adapter
from test_fuzz import SEED, seed_frames

from bookkeeper.testing.fuzz import fuzz_adapter


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=100_000, help="mutated frames per adapter (default 100000)")
    ap.add_argument("--seed", type=int, default=SEED, help=f"seed (default {SEED}, the CI test's)")
    ap.add_argument("--venue", action="append", choices=VENUES, help="only these venues (repeatable)")
    ap.add_argument("--json", action="store_true", help="one JSON object per adapter, then a summary line")
    args = ap.parse_args(argv)
    venues = args.venue or list(VENUES)
    started = time.perf_counter()
    bad = 0
    rows = []
    for venue in venues:
        t0 = time.perf_counter()
        report = fuzz_adapter(get_adapter(venue), seed_frames(venue), frames=args.frames, seed=args.seed)
        elapsed = time.perf_counter() - t0
        bad += not report.ok
        row = report.as_dict() | {"elapsed_s": round(elapsed, 1)}
        rows.append(row)
        if args.json:
            print(orjson.dumps(row).decode(), flush=True)
        else:
            print(f"{report.summary()}  [{elapsed:.1f}s]", flush=True)
            for f in report.failures:
                print("   ", f.describe())
    total = {"date": dt.date.today().isoformat(), "seed": args.seed, "frames_per_adapter": args.frames,
             "adapters": len(rows), "untyped_exceptions": sum(r["untyped_exceptions"] for r in rows),
             "crashes": sum(r["crashes"] for r in rows),
             "books_changed_on_reject": sum(r["books_changed_on_reject"] for r in rows),
             "fast_path_mismatches": sum(r["fast_path_mismatches"] for r in rows),
             "elapsed_s": round(time.perf_counter() - started, 1), "ok": not bad}
    print(orjson.dumps(total).decode() if args.json else f"total: {total}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
