"""The kit for your own queue: run scenarios from Python and read their verdicts (Chaos, Verdict), throwaway
redis-servers for tests, adapter skeletons (`harness new adapter`), and the conformance suite
(`harness check-adapter`). The pytest plugin (harness.pytest_plugin) is a thin layer over it.
"""

from __future__ import annotations

from harness.kit.chaos import Chaos, with_overrides
from harness.kit.servers import throwaway_redis
from harness.kit.verdict import CheckerVerdict, Verdict

__all__ = ["Chaos", "CheckerVerdict", "Verdict", "throwaway_redis", "with_overrides"]
