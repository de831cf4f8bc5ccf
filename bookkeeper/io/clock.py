"""Clocks and sleeps for the drivers.

The drivers never call ``time`` or ``asyncio.sleep`` directly: they receive a :class:`Clock`
and a :data:`Sleep` in their constructor, so tests pass a fake clock and a recording sleep
(style.md §3, "Time is deterministic").

>>> clock = SystemClock()
>>> clock.monotonic_ns() > 0 and clock.time_ns() > 0
True
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "Sleep", "SystemClock", "SYSTEM_CLOCK", "real_sleep"]

#: ``await sleep(delay_s)``; the drivers' only way to wait for time to pass.
Sleep = Callable[[float], Awaitable[None]]


@runtime_checkable
class Clock(Protocol):
    """Two readings: monotonic (for durations and deadlines) and wall (for record ``ts``)."""

    def monotonic_ns(self) -> int:
        """Nanoseconds on a clock that never goes backwards."""
        ...

    def time_ns(self) -> int:
        """Wall-clock nanoseconds since the Unix epoch (UTC)."""
        ...


class SystemClock:
    """The real clocks: :func:`time.monotonic_ns` and :func:`time.time_ns`."""

    __slots__ = ()

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()

    def time_ns(self) -> int:
        return time.time_ns()


SYSTEM_CLOCK = SystemClock()


async def real_sleep(delay_s: float) -> None:
    """:func:`asyncio.sleep`, the production :data:`Sleep`."""
    await asyncio.sleep(delay_s)
