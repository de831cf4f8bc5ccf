"""Keep credentials out of third-party logs.

Our own code never logs a secret (credentials print as a fingerprint), but the libraries we
drive may log what passes through them when their loggers are at DEBUG: ccxt logs request
headers (OKX's ``OK-ACCESS-PASSPHRASE`` is a header), websockets logs the first bytes of every
frame it sends (OKX's login frame carries the passphrase). A :class:`SecretRedactor` attached
to those loggers replaces every occurrence of a secret in a record's final message with
``<redacted>`` before any handler sees it, whatever the level configuration of the user's
program. JWTs (``eyJ...``: Coinbase signs every request and subscribe with a short-lived
one, a bearer credential while it lives) are replaced too, whoever issued them.

>>> import logging
>>> log = logging.getLogger("demo.redact")
>>> redactor = SecretRedactor(["hunter2"])
>>> log.addFilter(redactor)
>>> record = log.makeRecord("demo.redact", logging.INFO, __file__, 1, "pass=%s", ("hunter2",), None)
>>> redactor.filter(record), record.getMessage()
(True, 'pass=<redacted>')
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

__all__ = ["LIBRARY_LOGGERS", "SecretRedactor", "redacting"]

#: the loggers of the libraries that may log request headers or frame text
LIBRARY_LOGGERS: tuple[str, ...] = (
    "ccxt", "ccxt.base.exchange", "websockets", "websockets.client", "websockets.server", "aiohttp.client",
    "bookkeeper.sim",
)


#: a compact JWS (header and claims are base64url JSON objects, so they start with ``eyJ``)
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")


class SecretRedactor(logging.Filter):
    """Replaces each of ``secrets`` in a record's message (and its traceback text) with
    ``<redacted>``; never drops a record."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = tuple(s for s in secrets if s)

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        return _JWT.sub("<redacted-jwt>", text) if "eyJ" in text else text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the logger's problem, not ours
            return True
        clean = self._scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._scrub(record.exc_text)
        return True


@contextmanager
def redacting(secrets: Iterable[str], loggers: Iterable[str] = LIBRARY_LOGGERS) -> Iterator[SecretRedactor]:
    """Attach a :class:`SecretRedactor` for ``secrets`` to ``loggers`` while the block runs."""
    redactor = SecretRedactor(secrets)
    attached = [logging.getLogger(name) for name in loggers]
    for logger in attached:
        logger.addFilter(redactor)
    try:
        yield redactor
    finally:
        for logger in attached:
            logger.removeFilter(redactor)
