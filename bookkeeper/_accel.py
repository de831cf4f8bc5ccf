"""The one switch for bookkeeper's optional C accelerators.

Theory of operation
-------------------
bookkeeper runs in pure Python everywhere; some hot loops have an optional C twin, built by
``pip install`` when a compiler is present (``setup.py``, ``optional=True``) and tested
against the Python code (``tests/speedups/``):

- ``bookkeeper._speedups``: L2Book's level loops and reads and the top-25 CRC32 checksum (used
  by ``bookkeeper.book`` and ``bookkeeper.checksum``); it also exports the level loop as a C API
  (``bookkeeper/_speedups_capi.h``) for venue decoders;
- a venue's frame decoder beside its adapter (``adapters/<venue>/*.c``, built as
  ``bookkeeper.adapters.<venue>._*``), loaded by that adapter's parse module.

Every user gets its C module from :func:`load` — never by importing it directly — so that
``BOOKKEEPER_PURE_PYTHON=1`` (any value but empty or ``0``) in the environment when bookkeeper
is first imported disables EVERY C path at once: no C module is even imported. The variable is
read here and nowhere else, once, at import: flipping it later has no effect on a running
process (tests swap the module-level handles, e.g. ``bookkeeper.book._sp``, instead).
"""

from __future__ import annotations

import os
from importlib import import_module
from types import ModuleType

__all__ = ["ENV_VAR", "PURE_PYTHON", "load"]

#: The environment variable that forces the pure-Python path.
ENV_VAR = "BOOKKEEPER_PURE_PYTHON"

#: True when :data:`ENV_VAR` was set (to anything but ``""`` or ``"0"``) at import time.
PURE_PYTHON: bool = os.environ.get(ENV_VAR, "") not in ("", "0")


def load(name: str) -> ModuleType | None:
    """The optional C module ``name``, or None when the pure-Python path must run.

    Args:
        name: the module's absolute dotted name, e.g. ``"bookkeeper._speedups"``.

    Returns:
        The imported module; None when :data:`PURE_PYTHON` is set (the module is then not
        imported at all) or when it is not built (no compiler at install time) or cannot be
        loaded (e.g. ``_fastdepth`` without ``_speedups``, whose C API it needs).

    Raises:
        Nothing: every ImportError means "use the pure-Python path".
    """
    if PURE_PYTHON:
        return None
    # import_module, not a static import: the C module has no Python source, so import-linter
    # would attribute a static import to the package itself.
    try:
        return import_module(name)
    except ImportError:
        return None
