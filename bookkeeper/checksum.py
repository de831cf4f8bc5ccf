"""Exchange book checksums, bit-exact from the exchange's own level strings.

Theory of operation: a checksum is only as good as its input text. Reformatting floats back
into strings is slow and wrong (``"30000.0"`` vs ``"30000"``), so the book keeps the wire
strings of every level for checksum venues and these functions only join and hash them.

- OKX / Bitget (exchange-protocols.md §5.3, §13.1): top 25 levels interleaved
  ``bid1px:bid1sz:ask1px:ask1sz:...`` (a shorter side just stops contributing), CRC32 read as
  a *signed* int32. OKX pinned the field to 0 on 2026-06-23: ``0`` means "absent".
- Kraken WS v1 and v2 (§7.3, §13.2): top 10 asks low->high then top 10 bids high->low; per
  level, price and qty with ``.`` removed and leading zeros stripped; CRC32 unsigned. v1 takes
  the strings as received; v2 sends JSON numbers, so its adapter formats them with the
  instrument's precision first — after that the rule is the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from zlib import crc32

from ._accel import load
from .capabilities import ChecksumKind
from .types import RawLevel

__all__ = ["okx_checksum", "kraken_checksum", "compute_checksum", "checksum_absent"]

# Optional C accelerator (bookkeeper/_speedups.c), or None; the switch: bookkeeper/_accel.py.
_sp: Any = load("bookkeeper._speedups")


def okx_checksum(bids: Sequence[RawLevel], asks: Sequence[RawLevel]) -> int:
    """CRC32 (signed int32) of the top-25 interleaved levels, best first on each side.

    >>> okx_checksum([("3366.1", "7"), ("3366", "6")], [("3366.8", "9"), ("3368", "8")])
    -1881014294
    """
    if _sp is not None:
        value = _sp.okx_crc(bids, asks)
        if value is not NotImplemented:  # NotImplemented: input outside the C fast path
            return value
    parts: list[str] = []
    nb = min(len(bids), 25)
    na = min(len(asks), 25)
    for i in range(max(nb, na)):
        if i < nb:
            parts.extend(bids[i])
        if i < na:
            parts.extend(asks[i])
    value = crc32(":".join(parts).encode())
    return value - 0x100000000 if value >= 0x80000000 else value


def kraken_checksum(asks: Sequence[RawLevel], bids: Sequence[RawLevel]) -> int:
    """Unsigned CRC32 of the top-10 asks (low->high) then top-10 bids (high->low).

    >>> kraken_checksum([("45285.2", "0.00100000"), ("45286.4", "1.54582015"),
    ...                  ("45286.6", "1.00000000")],
    ...                 [("45283.5", "0.50000000"), ("45283.4", "0.04000000")])
    1982867381
    """
    text = "".join(
        [p.replace(".", "").lstrip("0") + q.replace(".", "").lstrip("0") for p, q in asks[:10]]
        + [p.replace(".", "").lstrip("0") + q.replace(".", "").lstrip("0") for p, q in bids[:10]]
    )
    return crc32(text.encode())


def checksum_absent(kind: ChecksumKind, value: int | None) -> bool:
    """True when a delta carries no usable checksum (OKX sends 0 since 2026-06-23)."""
    if value is None or kind is ChecksumKind.NONE:
        return True
    return kind is ChecksumKind.CRC32_INTERLEAVED_25 and value == 0


def compute_checksum(kind: ChecksumKind, bids: Sequence[RawLevel], asks: Sequence[RawLevel]) -> int:
    """Compute ``kind`` over best-first raw levels of each side."""
    if kind is ChecksumKind.CRC32_INTERLEAVED_25:
        return okx_checksum(bids, asks)
    if kind is ChecksumKind.KRAKEN_CRC32_10:
        return kraken_checksum(asks, bids)
    raise ValueError(f"no checksum algorithm for {kind}")
