"""Suite-wide settings.

Hypothesis runs derandomized (the same examples on every machine, so CI cannot turn red on
an example a developer never saw) and prints the reproduction blob of any failure. Set
``HYPOTHESIS_PROFILE=explore`` to search with fresh randomness locally.

The long realtime command-line runs start in the background when collection finishes
(``@pytest.mark.background``, tests/_background.py).
"""

from __future__ import annotations

import os

import pytest
from _background import BackgroundResult, BackgroundRuns
from hypothesis import HealthCheck, settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", deadline=None, print_blob=True, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# -- long command-line runs in the background (see tests/_background.py) -------------------
_BACKGROUND = BackgroundRuns()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # tests that wait for the background runs to finish (quiet_background), then those reading
    # one, go last: by then the runs are done, and no other test waits behind them
    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("background") is not None:
            return 2
        return 1 if "quiet_background" in getattr(item, "fixturenames", ()) else 0

    items.sort(key=rank)


def pytest_collection_finish(session: pytest.Session) -> None:
    if not session.config.option.collectonly:
        _BACKGROUND.start(session.items)


def pytest_sessionfinish(session: pytest.Session) -> None:
    _BACKGROUND.close()


@pytest.fixture
def background(request: pytest.FixtureRequest) -> BackgroundResult:
    """The finished run of this test's ``@pytest.mark.background(argv)`` command."""
    return _BACKGROUND.result(request.node.nodeid)


@pytest.fixture
def quiet_background() -> None:
    """Wait until every background run has finished: for tests that load both cores themselves
    (many ingest processes) and assert on timing-sensitive outcomes."""
    _BACKGROUND.wait_idle()
