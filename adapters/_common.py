"""Helpers shared by the venue adapters (pure, no I/O)."""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec
import orjson

from bookkeeper.errors import AdapterError

_MAX = 1e15  # no real price or size is this large; anything above is a corrupt frame


def loads(frame: bytes | str, exchange: str) -> Any:
    """Parse JSON or raise :class:`AdapterError` with an excerpt."""
    try:
        return orjson.loads(frame)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise AdapterError(f"invalid JSON: {exc}", exchange=exchange, raw=frame) from None


def level(px: Any, sz: Any, exchange: str, raw: Any = b"") -> tuple[float, float]:
    """Validate and convert one ``(price, size)`` pair from strings or numbers.

    Raises:
        AdapterError: not a number, NaN/inf, negative size, non-positive price, or out of range.
    """
    try:
        if isinstance(px, bool) or isinstance(sz, bool):
            raise TypeError("bool")
        p = float(px)
        s = float(sz)
    except (TypeError, ValueError):
        raise AdapterError(f"bad level [{px!r}, {sz!r}]", exchange=exchange, raw=raw) from None
    if not (0.0 < p < _MAX) or not (0.0 <= s < _MAX):
        raise AdapterError(f"level out of range [{px!r}, {sz!r}]", exchange=exchange, raw=raw)
    return p, s


def levels(rows: Any, exchange: str, raw: Any = b"") -> list[tuple[float, float]]:
    """Validate a list of ``[price, size, ...]`` rows."""
    if not isinstance(rows, list):
        raise AdapterError("levels must be a list", exchange=exchange, raw=raw)
    out = []
    for row in rows:
        if not isinstance(row, (list, tuple)) or len(row) < 2:
            raise AdapterError(f"bad level row {row!r}", exchange=exchange, raw=raw)
        out.append(level(row[0], row[1], exchange, raw))
    return out


def raw_levels(rows: list[Any]) -> list[tuple[str, str]]:
    """The exchange's own strings of each row (for checksums)."""
    return [(str(r[0]), str(r[1])) for r in rows]


def decimal_from_wire(text: Any, exchange: str, raw: Any = b"") -> Decimal:
    """Money from the wire string, never via float."""
    try:
        value = Decimal(str(text))
    except (InvalidOperation, ValueError):
        raise AdapterError(f"bad decimal {text!r}", exchange=exchange, raw=raw) from None
    if not value.is_finite():
        raise AdapterError(f"non-finite decimal {text!r}", exchange=exchange, raw=raw)
    return value


def ms_to_ns(ms: Any) -> int:
    """Milliseconds (int, float or numeric string) to integer nanoseconds; 0 when absent."""
    if ms is None:
        return 0
    if isinstance(ms, int) and not isinstance(ms, bool):
        return ms * 1_000_000  # exact: no float round trip
    try:
        v = float(ms)
    except (TypeError, ValueError):
        return 0
    return int(v * 1_000_000) if math.isfinite(v) else 0


def seq_int(value: Any, name: str, exchange: str, raw: Any = b"") -> int:
    """A sequence id that must be an int (not bool, not float, not a string)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise AdapterError(f"{name} must be an integer, got {value!r}", exchange=exchange, raw=raw)
    return value


def typed_decoder(type_: Any) -> msgspec.json.Decoder:
    """A msgspec JSON decoder that converts numeric strings (``strict=False``)."""
    return msgspec.json.Decoder(type_, strict=False)
