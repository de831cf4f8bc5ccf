"""Raw Binance depthUpdate bytes -> synced book: bookkeeper vs ccxt.pro, side by side.

    python benchmarks/bench_pipeline.py [--msgs 20000] [--rounds 9] [--seed 7]

Both sides consume the SAME seeded stream of combined-stream ``depthUpdate`` frames, drawn
from the distributions of the real capture (see the first printed line). Per message:

* ours:  ``BookSession.apply_frame_fast(frame, fused_depth)`` (the C accelerator's fused decode +
  APPLY check + apply of the synced steady state, no ``BookDelta``; on the pure-Python path its
  pure-Python twin, ``adapters/binance/_purefast.py``), and for every frame it
  declines ``decoder.decode(frame)`` (-> ``BookDelta``) -> ``BookSession.on_delta`` (sequence rule
  + apply to the always-sorted ``L2Book``); variant "(info) ours w/o fused path" is the latter only;
* ccxt:  ccxt's ws parser (``Client.receive``'s ``json_parser.loads``) ->
  ``binance.handle_order_book`` (market lookup, nonce checks, ``handle_order_book_message``
  -> ``handle_deltas`` -> ``OrderBookSide.store``) into ccxt's ``OrderBook``.

Variant "top25": after every message ours reads ``book.top(25)``; ccxt does what
``watch_order_book`` hands the user (``orderbook.limit()``) and slices ``bids[:25]``/``asks[:25]``.

Rounds are interleaved (ours, ccxt, ours, ccxt, ... with the order alternating per round) in
one process; each round starts from a freshly synced book (untimed). We print medians and
the ratio of medians, and cross-check that both sides end with identical books.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _streams import CcxtHarness, OursHarness, capture_stats, machine_note, make_stream, timed  # noqa: E402


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--msgs", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)

    stats = capture_stats()
    print(stats.describe())
    snap_body, frames, _ = make_stream(stats, args.msgs + 1, args.seed)
    first, rest = frames[0], frames[1:]
    nlev = sum(f.count(b'",') for f in rest) // 1  # ["px","sz"] pairs: one '",' inside each pair
    print(f"stream: seed={args.seed}, {len(rest)} msgs, ~{nlev} level updates "
          f"({nlev / len(rest):.1f}/msg), {sum(map(len, rest)) / len(rest):.0f} B/msg")
    print(machine_note())

    ours = OursHarness()
    cc = CcxtHarness()
    print(f"ccxt {cc.version} (ws json parser: {cc.parser_name}); {dt.date.today().isoformat()}")

    # correctness cross-check: both sides end with the same book
    s, d = ours.new_session(snap_body, first)
    ours.feeder(s, d)(rest)
    ob = cc.new_book(snap_body, first)
    cc.feeder(ob)(rest)
    assert [tuple(x) for x in ob["bids"]] == s.book.bids(), "bid books differ"
    assert [tuple(x) for x in ob["asks"]] == s.book.asks(), "ask books differ"
    print(f"cross-check: identical books after the stream ({s.book.bid_count}+{s.book.ask_count} levels), "
          f"ours last_seq={s.last_seq}, ccxt nonce={ob['nonce']}")

    variants = {
        "parse+seq+apply": (lambda: _ours(ours, snap_body, first, 0), lambda: _cc(cc, snap_body, first, 0, False)),
        "  + top-25 read": (lambda: _ours(ours, snap_body, first, 25), lambda: _cc(cc, snap_body, first, 25, False)),
        "ccxt via handle_message": (lambda: _ours(ours, snap_body, first, 0), lambda: _cc(cc, snap_body, first, 0, True)),
        "(info) ours w/o fused path": (lambda: _ours(ours, snap_body, first, 0, False),
                                       lambda: _cc(cc, snap_body, first, 0, False)),
    }
    results: dict[str, tuple[list[int], list[int]]] = {k: ([], []) for k in variants}
    for r in range(args.rounds):
        for name, (mk_ours, mk_cc) in variants.items():
            a = mk_ours()
            b = mk_cc()
            pair = ((0, a), (1, b)) if r % 2 == 0 else ((1, b), (0, a))
            for idx, run in pair:
                results[name][idx].append(timed(lambda: run(rest)))

    n = len(rest)
    print()
    print(f"{'variant':26} {'ours msg/s':>12} {'ccxt msg/s':>12} {'ours us/msg':>12} {'ccxt us/msg':>12} "
          f"{'ratio':>7} {'ratio p25..p75':>16}")
    out: dict[str, float] = {}
    for name, (o, c) in results.items():
        mo, mc = statistics.median(o), statistics.median(c)
        per_round = sorted(cc_ / oo for oo, cc_ in zip(o, c))
        q1 = per_round[len(per_round) // 4]
        q3 = per_round[(3 * len(per_round)) // 4]
        ratio = mc / mo
        out[name.strip()] = ratio
        print(f"{name:26} {n / mo * 1e9:12,.0f} {n / mc * 1e9:12,.0f} {mo / n / 1e3:12.2f} {mc / n / 1e3:12.2f} "
              f"{ratio:6.2f}x {q1:7.2f}..{q3:.2f}x")
    print(f"\n(medians of {args.rounds} interleaved rounds of {n} msgs; ratio = ccxt time / ours time; "
          f"targets: parse+seq+apply >= 5x, with top-25 read >= 3x)")
    return out


def _ours(h: OursHarness, body: bytes, first: bytes, top: int, fused: bool = True):
    s, d = h.new_session(body, first)
    return h.feeder(s, d, top, fused)


def _cc(h: CcxtHarness, body: bytes, first: bytes, top: int, full: bool):
    ob = h.new_book(body, first)
    return h.feeder(ob, top, full)


if __name__ == "__main__":
    main()
