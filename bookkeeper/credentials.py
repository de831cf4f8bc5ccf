"""API credentials that never leak: not in reprs, logs, records, exceptions or reports.

Theory of operation
-------------------
An :class:`ApiCredentials` holds a venue API key, its secret and (OKX) passphrase. Every
textual form of it (``repr``, ``str``, ``format``, pickling refused) shows only a fingerprint
of the key (its first four characters), never the secret or the passphrase, so a credentials
object that ends up in a log line, an exception message, a disconnect record or a JSON report
carries nothing an attacker can use. The secret is read only by the code that signs
(:meth:`ApiCredentials.reveal_secret`, the adapters' login builders, and the ccxt config the
driver builds for REST signing).

Credentials come from explicit configuration or from the environment
(:meth:`ApiCredentials.from_env`: ``BOOKKEEPER_<VENUE>_API_KEY``, ``..._API_SECRET``,
``..._API_PASSPHRASE``). This module reads no environment itself: the caller passes the
mapping (``os.environ`` in the driver), so the core stays free of I/O.

A secret may be a multi-line PEM private key (Coinbase CDP keys: ``-----BEGIN EC PRIVATE
KEY-----``). It is kept as given; from the environment, a PEM written on one line with literal
``\\n`` escapes (how ``.env`` files and CI secret stores usually carry it) is unescaped. Leak
scans (:meth:`ApiCredentials.secrets`) also look for each base64 line of a PEM's body, so a
key logged re-wrapped or escaped is still found.

>>> creds = ApiCredentials(api_key="AKIAEXAMPLE", secret="s3cr3t-value", passphrase="pp")
>>> creds
ApiCredentials(api_key='AKIA…', secret=<redacted>, passphrase=<redacted>)
>>> "s3cr3t" in f"{creds} {creds!r} {[creds]}"
False
>>> ApiCredentials.from_env("okx", {"BOOKKEEPER_OKX_API_KEY": "k", "BOOKKEEPER_OKX_API_SECRET": "s"}).api_key
'k'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from .errors import UsageError

__all__ = ["ApiCredentials", "env_names"]

#: a PEM body line shorter than this is not looked for on its own (the last line of a key can
#: be a few characters: common text would match it)
_PEM_LINE_MIN = 16


def env_names(venue: str) -> tuple[str, str, str]:
    """The environment variables :meth:`ApiCredentials.from_env` reads for ``venue``.

    >>> env_names("binance")
    ('BOOKKEEPER_BINANCE_API_KEY', 'BOOKKEEPER_BINANCE_API_SECRET', 'BOOKKEEPER_BINANCE_API_PASSPHRASE')
    """
    prefix = "BOOKKEEPER_" + "".join(c if c.isalnum() else "_" for c in venue.upper())
    return f"{prefix}_API_KEY", f"{prefix}_API_SECRET", f"{prefix}_API_PASSPHRASE"


class ApiCredentials:
    """A venue API key, secret and optional passphrase (see the module docstring).

    Args:
        api_key: the key id (sent to the venue in clear; shown as a 4-character fingerprint).
        secret: the signing secret (never shown).
        passphrase: OKX's API passphrase (never shown), ``None`` where the venue has none.

    Raises:
        UsageError: an empty key or secret.
    """

    __slots__ = ("_api_key", "_secret", "_passphrase")

    def __init__(self, api_key: str, secret: str, passphrase: str | None = None) -> None:
        if not isinstance(api_key, str) or not api_key or not isinstance(secret, str) or not secret:
            raise UsageError("API credentials need a non-empty key and secret")
        self._api_key = api_key
        self._secret = secret
        self._passphrase = passphrase

    @classmethod
    def from_env(cls, venue: str, environ: Mapping[str, str]) -> ApiCredentials:
        """Read ``venue``'s credentials from ``environ`` (pass ``os.environ``).

        Raises:
            UsageError: the key or the secret variable is missing or empty (the message names
                the variables, never a value).
        """
        key_var, secret_var, pass_var = env_names(venue)
        key, secret = environ.get(key_var, ""), environ.get(secret_var, "")
        if not key or not secret:
            raise UsageError(f"no {venue} API credentials: set {key_var} and {secret_var}", venue=venue)
        if secret.startswith("-----BEGIN") and "\n" not in secret and "\\n" in secret:
            secret = secret.replace("\\n", "\n")  # a one-line PEM with escaped newlines
        return cls(key, secret, environ.get(pass_var) or None)

    @property
    def api_key(self) -> str:
        """The key id (not secret: venues put it in clear in every signed request)."""
        return self._api_key

    @property
    def passphrase(self) -> str | None:
        """The passphrase (OKX), for the signing code only."""
        return self._passphrase

    def reveal_secret(self) -> str:
        """The signing secret, for the code that signs (adapters' login builders, the ccxt
        config). Never log what this returns."""
        return self._secret

    @property
    def fingerprint(self) -> str:
        """What logs and records may show of the key: its first four characters."""
        return self._api_key[:4] + "…"

    def secrets(self) -> tuple[str, ...]:
        """The strings that must never be written anywhere (for leak scans and log
        redaction): the secret, the passphrase, and each long base64 line of a PEM secret's
        body (module docstring).

        >>> pem = "\\n".join(["-----BEGIN EC PRIVATE KEY-----", "MHcCAQEEIAbcdefghijklmnop", "qrst",
        ...                   "-----END EC PRIVATE KEY-----"])
        >>> ApiCredentials("organizations/o/apiKeys/k", pem).secrets()[1:]
        ('MHcCAQEEIAbcdefghijklmnop',)
        """
        out = [s for s in (self._secret, self._passphrase) if s]
        if self._secret.startswith("-----BEGIN"):
            out += [line.strip() for line in self._secret.splitlines()
                    if len(line.strip()) >= _PEM_LINE_MIN and not line.startswith("-----")]
        return tuple(out)

    def ccxt_config(self) -> dict[str, str]:
        """ccxt constructor keys (``apiKey``, ``secret``, ``password``) for REST signing."""
        out = {"apiKey": self._api_key, "secret": self._secret}
        if self._passphrase:
            out["password"] = self._passphrase
        return out

    def __repr__(self) -> str:
        passphrase = ", passphrase=<redacted>" if self._passphrase else ""
        return f"ApiCredentials(api_key={self.fingerprint!r}, secret=<redacted>{passphrase})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ApiCredentials):
            return NotImplemented
        return (self._api_key, self._secret, self._passphrase) == (other._api_key, other._secret, other._passphrase)

    def __hash__(self) -> int:
        return hash(self._api_key)

    def __reduce__(self) -> NoReturn:
        # pickling would write the secret to wherever the pickle goes (a queue, a file)
        raise TypeError("ApiCredentials cannot be pickled")

    def __getstate__(self) -> Any:  # copy.copy/deepcopy go through __reduce_ex__; refuse too
        raise TypeError("ApiCredentials cannot be pickled")
