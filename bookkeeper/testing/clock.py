"""Deterministic time for tests: :class:`FakeClock` and :class:`RecordingSleep`.

Modelled on trio's ``MockClock`` and nautilus' ``TestClock``: time moves only when a test
says so (:meth:`FakeClock.advance`), so nothing in a test ever waits for real time. Drivers
receive a clock and a ``sleep`` callable; tests pass these and assert on recorded delays.

>>> clock = FakeClock()
>>> clock.advance(1.5)
>>> clock.monotonic_ns()
1500000000
>>> sleep = RecordingSleep(clock)
>>> import asyncio; asyncio.run(sleep(0.25))
>>> sleep.delays, clock.monotonic()
([0.25], 1.75)
"""

from __future__ import annotations

__all__ = ["FakeClock", "RecordingSleep"]

_NS_PER_S = 1_000_000_000
#: Default wall-clock origin: 2026-01-01T00:00:00Z, so wall timestamps look plausible.
DEFAULT_WALL_START_NS = 1_767_225_600 * _NS_PER_S


class FakeClock:
    """A clock that only moves when told to.

    Args:
        start_ns: initial monotonic reading.
        wall_start_ns: wall-clock reading when the monotonic clock reads ``start_ns``.
    """

    __slots__ = ("_mono_ns", "_wall_offset_ns")

    def __init__(self, start_ns: int = 0, *, wall_start_ns: int = DEFAULT_WALL_START_NS) -> None:
        if start_ns < 0:
            raise ValueError("start_ns must be >= 0")
        self._mono_ns = start_ns
        self._wall_offset_ns = wall_start_ns - start_ns

    def monotonic_ns(self) -> int:
        """Monotonic time in integer nanoseconds."""
        return self._mono_ns

    def monotonic(self) -> float:
        """Monotonic time in float seconds."""
        return self._mono_ns / _NS_PER_S

    def time_ns(self) -> int:
        """Wall-clock time in integer nanoseconds (moves with :meth:`advance`)."""
        return self._mono_ns + self._wall_offset_ns

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``.

        Raises:
            ValueError: ``seconds`` is negative (time never goes backwards).
        """
        if seconds < 0:
            raise ValueError(f"cannot advance by a negative amount: {seconds!r}")
        self._mono_ns += round(seconds * _NS_PER_S)

    def advance_ns(self, ns: int) -> None:
        """Move time forward by ``ns`` nanoseconds."""
        if ns < 0:
            raise ValueError(f"cannot advance by a negative amount: {ns!r}")
        self._mono_ns += ns

    def __repr__(self) -> str:
        return f"FakeClock(monotonic_ns={self._mono_ns})"


class RecordingSleep:
    """An awaitable ``sleep(delay_s)`` stand-in that records each delay and, when given a
    clock, advances it instead of waiting. Pass it wherever a driver takes ``sleep``.

    Attributes:
        delays: every requested delay, in call order.
    """

    __slots__ = ("delays", "_clock")

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.delays: list[float] = []
        self._clock = clock

    async def __call__(self, delay_s: float) -> None:
        self.delays.append(delay_s)
        if self._clock is not None and delay_s > 0:
            self._clock.advance(delay_s)

    @property
    def total_s(self) -> float:
        """The sum of all recorded delays."""
        return sum(self.delays)

    def __repr__(self) -> str:
        return f"RecordingSleep(delays={self.delays!r})"
