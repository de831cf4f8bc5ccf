"""Whole replay job on the real Binance spot capture: bookkeeper vs ccxt.pro, side by side.

    python benchmarks/bench_replay.py [--rounds 7]

Input: the two hftbacktest-format files (``<recv_ts_ns> <json>`` per line, gzipped)
``binance_spot_btcusdt_2024-08-08.hbt.txt.gz`` + ``binance_spot_btcusdt_2024-08-09.continuation
.hbt.txt.gz`` (~99.6k lines: ~6.5k depthUpdate, ~73k bookTicker, ~20k trade, 1 REST snapshot).

* ours: ``bookkeeper.io.replay.replay(get_adapter("binance"), files)`` — the ``bookkeeper
  replay`` job (gzip read, record split, decoder, BookSession per symbol, REST snapshot spliced,
  bookTicker cross-checks, report). If that module is missing, the same job is driven directly.
* ccxt: the same files read the same way (gzip, split ts/JSON), every frame parsed with ccxt's
  ws parser and given to ``binance.handle_message`` (depthUpdate -> ``handle_order_book``,
  bookTicker -> ``handle_bids_asks``, trade -> ``handle_trade``); the REST line goes through
  ccxt's own ``fetch_order_book_snapshot`` (its REST call stubbed to return the recorded body,
  parsed by ``parse_order_book``), which resets the book and unrolls the buffered deltas.

Start-up (imports, constructing the ccxt exchange) is outside the timing. Rounds are
interleaved in one process; medians and the ratio of medians are printed, and the final books
of both sides are asserted identical.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gzip
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _streams import CAPTURE, CCXT_SYMBOL, CONTINUATION, CcxtHarness, machine_note, timed  # noqa: E402

FILES = [str(CAPTURE), str(CONTINUATION)]


def ours_job(adapter, files=FILES):
    try:
        from bookkeeper.io.replay import replay
    except ImportError:  # pragma: no cover - the lead's module not there yet
        return _ours_direct(adapter, files)
    rep = replay(adapter, files)
    return rep


def _ours_direct(adapter, files):
    from bookkeeper.actions import FetchSnapshot
    from bookkeeper.session import BookSession

    decoder = adapter.new_decoder()
    session = None
    epoch = None
    for path in files:
        with gzip.open(path) as fh:
            for line in fh:
                ts, _, frame = line.partition(b" ")
                if frame.startswith(b'{"lastUpdateId"'):
                    snap = adapter.parse_rest_snapshot(frame, symbol=session.symbol, ts_recv_ns=int(ts))
                    session.on_snapshot(snap, epoch=epoch)
                    continue
                for ev in decoder.decode(frame, int(ts)):
                    if session is None and hasattr(ev, "bids"):
                        session = BookSession(ev.symbol, adapter.capabilities)
                    if session is not None:
                        for a in session.handle(ev):
                            if type(a) is FetchSnapshot:
                                epoch = a.epoch
    return session


class CcxtJob:
    def __init__(self) -> None:
        self.h = CcxtHarness()
        self.loop = asyncio.new_event_loop()

    def run(self, files=FILES):
        h = self.h
        ex, client, loads = h.ex, h.client, h.loads
        # what handle_order_book_subscription leaves behind (minus spawning the REST call)
        ex.orderbooks = {}
        ob = ex.order_book({}, 1000)
        ob["nonce"] = None
        ob.cache = []
        ex.orderbooks[CCXT_SYMBOL] = ob
        subscription = {"symbol": CCXT_SYMBOL, "type": "spot", "limit": 1000, "params": {}}
        handle = ex.handle_message
        for path in files:
            with gzip.open(path) as fh:
                for line in fh:
                    ts, _, frame = line.partition(b" ")
                    msg = loads(frame)
                    if "lastUpdateId" in msg:
                        self._snapshot(msg, subscription)
                        continue
                    handle(client, msg)
        return ex.orderbooks[CCXT_SYMBOL]

    def _snapshot(self, body, subscription):
        ex = self.h.ex

        async def rest(symbol, limit=None, params={}):  # noqa: B006 - ccxt's signature
            ob = ex.parse_order_book(body, symbol, ex.safe_integer(body, "T"))
            ob["nonce"] = ex.safe_integer_2(body, "lastUpdateId", "u")
            return ob

        ex.fetch_rest_order_book_safe = rest
        self.loop.run_until_complete(ex.fetch_order_book_snapshot(self.h.client, None, subscription))


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args(argv)
    from bookkeeper.adapters import get_adapter

    adapter = get_adapter("binance")
    cj = CcxtJob()
    try:
        import bookkeeper.io.replay  # noqa: F401

        how = "bookkeeper.io.replay.replay()"
    except ImportError:
        how = "decoder + BookSession driven directly (bookkeeper.io.replay not present)"
    print(f"files: {FILES}")
    print(machine_note())
    print(f"ours: {how}; ccxt {cj.h.version} (ws json parser: {cj.h.parser_name}); {dt.date.today().isoformat()}")

    # correctness: same final book, and what each side did
    rep = ours_job(adapter)
    ob = cj.run()
    if hasattr(rep, "instruments"):
        inst = rep.instruments[0]
        print(f"ours: {rep.messages} messages, {inst.stats['deltas_applied']} deltas applied, "
              f"{inst.stats['gaps']} gaps, {inst.stats['ticker_checks']} ticker checks "
              f"({inst.stats['ticker_mismatches']} mismatches), last_seq {inst.last_seq}")
        # rebuild ours once more, directly, to compare the book itself
    sess = _ours_direct(adapter, FILES)
    assert [tuple(x) for x in ob["bids"]] == sess.book.bids(), "bid books differ"
    assert [tuple(x) for x in ob["asks"]] == sess.book.asks(), "ask books differ"
    print(f"cross-check: identical final books ({sess.book.bid_count}+{sess.book.ask_count} levels); "
          f"ccxt nonce {ob['nonce']} == ours last_seq {sess.last_seq}: {ob['nonce'] == sess.last_seq}")

    o: list[int] = []
    c: list[int] = []
    for r in range(args.rounds):
        if r % 2 == 0:
            o.append(timed(lambda: ours_job(adapter)))
            c.append(timed(cj.run))
        else:
            c.append(timed(cj.run))
            o.append(timed(lambda: ours_job(adapter)))
    mo, mc = statistics.median(o), statistics.median(c)
    per = sorted(b / a for a, b in zip(o, c))
    print()
    print(f"{'job':34} {'ours s':>8} {'ccxt s':>8} {'ratio':>7} {'ratio p25..p75':>16}")
    print(f"{'replay 2 files (~99.6k lines)':34} {mo / 1e9:8.3f} {mc / 1e9:8.3f} {mc / mo:6.2f}x "
          f"{per[len(per) // 4]:7.2f}..{per[(3 * len(per)) // 4]:.2f}x")
    print(f"\n(medians of {args.rounds} interleaved rounds; ratio = ccxt time / ours time; target >= 4x)")
    return mc / mo


if __name__ == "__main__":
    main()
