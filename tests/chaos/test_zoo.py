"""The mutant zoo (harness/adapters/zoo.py) end to end through the `harness` command: each mutant is
invalid on a short run of the scenario that exposes it, flagged by the checker that names its bug,
with that checker's figure for it above zero.

The runs use the arguments of the reference queue's own tests, so the reference is judged on the same
plans: tests/chaos/test_scenarios.py (test_reference_queue_is_valid: seed 7, 5 s, every scenario
without Redis or network faults) and tests/chaos/test_redis_scenarios.py (seed 11, 5 s, drain 20 s).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.adapters.zoo import ZOO

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
WORKER_RUN = ["--duration", "5", "--drain-timeout", "15", "--seed", "7"]  # as tests/chaos/test_scenarios.py
REDIS_RUN = ["--duration", "5", "--drain-timeout", "20", "--seed", "11"]  # as tests/chaos/test_redis_scenarios.py

# mutant -> (scenario that exposes it, run arguments, the checker that names the bug, its figure for it)
EXPOSURES: dict[str, tuple[str, list[str], str, str]] = {
    "early-ack": ("kill_reclaimers", WORKER_RUN, "delivery", "lost"),
    "fail-ack-first": ("retries_and_dlq", WORKER_RUN, "delivery", "lost"),
    "no-reclaim": ("kill_reclaimers", WORKER_RUN, "recovery", "never_redelivered"),
    "reclaim-lock-leak": ("kill_reclaimers", WORKER_RUN, "recovery", "never_redelivered"),
    "count-reset": ("poison_pill", WORKER_RUN, "retry", "delivery_count_resets"),
    "non-strict-priority": ("priority_backlog", WORKER_RUN, "priority", "inversions"),
    "promote-split": ("retries_and_dlq", WORKER_RUN, "delivery", "duplicated_unexplained"),
    "maxlen-trim": ("priority_backlog", WORKER_RUN, "delivery", "lost"),
    "no-group-recreate": ("redis_restart_empty", REDIS_RUN, "leaks", "ready"),
    "group-at-dollar": ("redis_restart_empty", REDIS_RUN, "leaks", "skipped"),
    "no-function-reload": ("redis_restart_empty", REDIS_RUN, "recovery", "never_back_in_service"),
}


def harness_run(scenario: str, out: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", scenario, "--out", str(out), *extra],
        cwd=REPO, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    verdicts = list(out.glob("*/verdict.json"))
    assert len(verdicts) == 1, f"no single verdict.json (exit {done.returncode}): {done.stderr[-2000:]}"
    return done.returncode, json.loads(verdicts[0].read_text()), done.stderr


def test_every_zoo_mutant_has_an_exposure() -> None:
    assert set(EXPOSURES) == set(ZOO)


@pytest.mark.parametrize("mutant", sorted(EXPOSURES))
def test_zoo_mutant_is_caught_by_the_checker_that_names_its_bug(mutant: str, tmp_path: Path) -> None:
    scenario, run_args, name, figure = EXPOSURES[mutant]
    code, verdict, stderr = harness_run(scenario, tmp_path, *run_args, "--queue", f"taskq-mutant:{mutant}")
    assert (code, verdict["valid"]) == (1, False), stderr[-3000:]
    checker = next(c for c in verdict["checkers"] if c["name"] == name)
    assert checker["valid"] is False, f"{mutant}: {name} is {checker['valid']}: {checker['figures']}"
    assert checker["figures"][figure] > 0, checker["figures"]
