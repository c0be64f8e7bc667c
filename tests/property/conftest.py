"""Hypothesis profiles for the property tests, chosen by HYPOTHESIS_PROFILE (default "ci").

"ci" is derandomized with 50 examples: the same examples on every run, fast enough for every commit.
"dev" draws 50 new examples each run, while working on a checker. "nightly" draws 2000: the long search.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}

settings.register_profile("ci", derandomize=True, max_examples=50, database=None, print_blob=True, **_COMMON)
settings.register_profile("dev", max_examples=50, **_COMMON)
settings.register_profile("nightly", max_examples=2000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
