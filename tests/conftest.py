"""Suite-wide settings.

Hypothesis runs derandomized (the same examples on every machine, so CI cannot turn red on
an example a developer never saw) and prints the reproduction blob of any failure. Set
``HYPOTHESIS_PROFILE=explore`` to search with fresh randomness locally.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", deadline=None, print_blob=True, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
