"""One retry decision for everything the driver retries: reconnects, REST snapshots and
journal reads (websockets' ``process_exception`` is the model: one function decides).

The rule follows the error tree (:mod:`bookkeeper.errors`):

============================  =========  ==================================================
error                         retried?   why
============================  =========  ==================================================
``TransportError``            yes        the network failed (``ConnectionLost``,
(``ConnectionLost``,                     ``RequestTimeout``) or the venue asked us to slow
``RequestTimeout``,                      down (``RateLimited``: its ``retry_after_s`` is the
``RateLimited``)                         floor of the next delay)
``ExchangeRejected``          no         a non-retryable answer (auth, bad symbol): the same
                                         request gets the same answer
``AdapterError``              no         the same bytes translate the same way
anything else                 no         a bug: retrying hides it
============================  =========  ==================================================

A reconnect episode that ends on a non-retryable error (a handshake refused with 401/403)
does not hammer the venue: the episode stops at once and the circuit breaker opens; after
its cool-down one probe tries again (the key may have been fixed, the ban lifted).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from bookkeeper.errors import AdapterError, ExchangeRejected, TransportError
from bookkeeper.policy import BackoffPolicy

from .clock import Sleep

__all__ = ["EXPECTED_FAILURES", "PolicyWait", "is_retryable", "retrying"]

#: the typed failures of the I/O boundary (transports, REST clients, journals, parsers):
#: expected, logged without a traceback; anything else is a bug (logged with one, counted)
EXPECTED_FAILURES: tuple[type[Exception], ...] = (TransportError, ExchangeRejected, AdapterError)


def is_retryable(exc: BaseException) -> bool:
    """Whether trying the same thing again may succeed (see the module docstring).

    Args:
        exc: what the attempt raised.

    Returns:
        True only for :class:`~bookkeeper.errors.TransportError` and its subclasses.

    >>> from bookkeeper.errors import RateLimited
    >>> is_retryable(RateLimited("429", retry_after_s=2.0)), is_retryable(ExchangeRejected("bad key"))
    (True, False)
    """
    return isinstance(exc, TransportError)


class PolicyWait(wait_base):
    """tenacity wait strategy backed by the pure :class:`~bookkeeper.policy.BackoffPolicy`
    (jittered, capped; a ``retry_after_s`` on the failure is the floor)."""

    def __init__(self, policy: BackoffPolicy, rng: random.Random) -> None:
        self._policy = policy
        self._rng = rng

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome is not None else None
        retry_after = getattr(exc, "retry_after_s", None)
        return self._policy.delay_s(retry_state.attempt_number, rand=self._rng.random(), retry_after_s=retry_after)


def retrying(
    policy: BackoffPolicy,
    *,
    rng: random.Random,
    sleep: Sleep,
    max_attempts: int | None = None,
    stop: stop_base | None = None,
    before_sleep: Callable[[RetryCallState], None] | None = None,
) -> AsyncRetrying:
    """A tenacity loop that retries what :func:`is_retryable` allows, with ``policy``'s
    delays, on the injected ``sleep``, re-raising the last failure.

    Args:
        policy: delays and (unless ``max_attempts``) the attempt bound.
        rng: jitter source (seeded by the driver).
        sleep: the injected sleep.
        max_attempts: overrides ``policy.max_attempts``.
        stop: an extra stop condition (or-ed with the attempt bound).
        before_sleep: called before each wait (logging).

    Returns:
        The ``AsyncRetrying`` to iterate (``async for attempt in ...: with attempt: ...``).
    """
    bound = stop_after_attempt(max_attempts if max_attempts is not None else policy.max_attempts)
    kwargs = {} if before_sleep is None else {"before_sleep": before_sleep}
    return AsyncRetrying(
        stop=bound | stop if stop is not None else bound,
        wait=PolicyWait(policy, rng),
        retry=retry_if_exception(is_retryable),
        sleep=sleep,
        reraise=True,
        **kwargs,  # type: ignore[arg-type]
    )
