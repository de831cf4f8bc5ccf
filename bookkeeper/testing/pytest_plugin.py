"""pytest plugin registered by bookkeeper (entry point ``pytest11``).

Fixtures for users' test suites live here (see :mod:`bookkeeper.testing.sim`).
"""
