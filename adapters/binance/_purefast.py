"""The pure-Python twin of ``_fastdepth.c``'s ``binance_depth_apply``: the fused decode +
sequence check + apply of a synced Binance book, for ``BookSession.apply_frame_fast`` when the
C accelerator is not built (or ``BOOKKEEPER_PURE_PYTHON=1``).

Why it exists: without it the pure path pays, per frame, the ``FrameDecoder`` -> ``decode`` ->
``BookDelta`` chain, the connection's event routing, ``on_delta`` -> ``Sequencer.check`` ->
``_apply`` -> ``L2Book.apply_delta`` (which walks every level twice: validation, then the
loop) and ``is_crossed``. Here one function does the same work for the one case that matters
(the synced steady state): the SAME msgspec decoders as ``parse._parse_depth_update_typed`` (so
what is decoded, and what is refused, is identical by construction), the APPLY case of the
sequence rule, then ``apply_delta``'s level loop on the book's own containers, without its
validation pass: the decoders' ``schemas.Px``/``Sz`` bounds (checked in C while decoding) already
guarantee ``0 < price < 1e15`` and ``0 <= size < 1e15`` for every level, which is stricter than
``apply_delta``'s own check, so that check could never fail here. Measured on the 205k-frame
replay bench (benchmarks/RESULTS.md, "[replay-speed], pure-Python part"): most of the pure
path's 269.5k -> 229.8k instructions per frame; what is left is mostly the level loop itself
(C ``bisect`` on Python floats, list shifts) and msgspec's decode.

Contract (the same as the C function's, see its comment in ``_fastdepth.c``): returns
``(first_seq, last_seq)`` when the delta WAS APPLIED, or a small int when NOTHING was touched
and the caller must take the normal path: 1 not ours (not a ``depthUpdate`` the decoders take,
``u < U``, or another symbol), 2 not the APPLY case of ``Sequencer``'s rule, 3 the book is, or
might become, crossed (checked BEFORE anything changes, exactly as C's ``apply_uncrossed``: the
best bid a delta can reach against the best ask it can reach), 4 unexpected state. So the
normal path stays the single source of truth for every other decision (stale, duplicate, gap,
crossed, bad frame), and the books, verdicts and counters are the same with or without this
function (``tests/speedups/test_fastpath.py`` runs both drivers against each other).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import Any

import msgspec

from .schemas import CombinedDepth, DepthUpdate

__all__ = ["COMBINED", "PLAIN", "fused_depth_py"]

#: The depthUpdate decoders (combined-stream envelope, plain frame): ``parse.py``'s normal path
#: uses these very objects, so the fused path decodes -- and refuses -- exactly what it does.
COMBINED = msgspec.json.Decoder(CombinedDepth, strict=False)
PLAIN = msgspec.json.Decoder(DepthUpdate, strict=False)

_INF = float("inf")


def fused_depth_py(frame: bytes, symbol: str, model: int, local: Any, bsizes: dict[float, float],
                   bkeys: list[float], asizes: dict[float, float], akeys: list[float]) -> tuple[int, int] | int:
    """Fused decode + APPLY check + apply for a synced Binance book (see the module docstring).

    Args:
        frame: the raw frame.
        symbol: the session's symbol.
        model: 1 CONTIGUOUS_RANGE (spot), 2 PREV_POINTER (futures).
        local: the sequencer's last applied id.
        bsizes, bkeys, asizes, akeys: the book's containers (``L2Book.apply_frame``).

    Returns:
        ``(U, u)`` when applied; else 1..4 and nothing was touched.

    Raises:
        Nothing of its own (a ``MemoryError`` mid-apply, as anywhere).
    """
    if type(local) is not int or (model != 1 and model != 2):
        return 4
    # parse.decode() sends only frames containing "depthUpdate" to the depth decoders
    if type(frame) is not bytes or b"depthUpdate" not in frame:
        return 1
    try:
        d = COMBINED.decode(frame).data if frame[:9] == b'{"stream"' else PLAIN.decode(frame)
    except Exception:  # noqa: BLE001 - declined, not swallowed: the normal path decodes it again
        # and turns whatever this was (a DecodeError, or a RecursionError from JSON nested a
        # thousand deep) into its AdapterError, exactly as for any frame the fast path never saw
        return 1
    first = d.U
    last = d.u
    if last < first or d.s != symbol:
        return 1
    # The APPLY case of Sequencer._check_range / _check_pointer ONLY (bookkeeper/sequencer.py);
    # change it only in step with them, as the C function.
    if model == 1:
        if not (last > local and first <= local + 1):
            return 2
    elif d.pu != local or last == local:  # a missing pu (None) is never local
        return 2
    bids = d.b
    asks = d.a
    # Crossed? Decided before anything changes (the normal path applies, then recovers, and
    # only it may do that): the best bid / ask the delta can reach, as C's apply_uncrossed.
    hi = bkeys[-1] if bkeys else -_INF
    lo = -akeys[-1] if akeys else _INF
    if hi >= lo:
        return 3
    for p, s in bids:
        if p > hi and s != 0.0:
            hi = p
    for p, s in asks:
        if p < lo and s != 0.0:
            lo = p
    if hi >= lo:
        return 3
    # L2Book.apply_delta's loop (sizes dict + sorted key list; asks keyed by -price so the best
    # is last), one loop per side, no per-level calls but the C dict/bisect ones. A new price is
    # one setdefault: ``s`` was just made by the decoder, so no dict holds it, and setdefault
    # returns it exactly when ``p`` was absent (then inserted, at the end, as ``sizes[p] = s``
    # would); a present price is updated in place. Same dict contents and order as apply_delta.
    for p, s in bids:
        if s == 0.0:
            if bsizes.pop(p, None) is not None:
                del bkeys[bisect_left(bkeys, p)]
        elif bsizes.setdefault(p, s) is s:
            insort(bkeys, p)
        else:
            bsizes[p] = s
    for p, s in asks:
        if s == 0.0:
            if asizes.pop(p, None) is not None:
                del akeys[bisect_left(akeys, -p)]
        elif asizes.setdefault(p, s) is s:
            insort(akeys, -p)
        else:
            asizes[p] = s
    return first, last
