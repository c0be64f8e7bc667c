"""The mutant zoo (harness/adapters/zoo.py) end to end through the `harness` command: each mutant is
invalid on a short run of the scenario that exposes it, flagged by the checker that names its bug,
with that checker's figure for it above zero (harness.adapters.zoo.EXPOSURES).

The runs use the arguments of the reference queue's own tests (harness.bench.zoo.short_run), so the
reference is judged on the same plans: tests/chaos/test_scenarios.py (test_reference_queue_is_valid:
seed 7, 5 s, every scenario without Redis or network faults) and tests/chaos/test_redis_scenarios.py
(seed 11, 5 s, drain 20 s).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.adapters.zoo import EXPOSURES, ZOO
from harness.bench.zoo import cli_args

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


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
    scenario, name, figure = EXPOSURES[mutant]
    code, verdict, stderr = harness_run(scenario, tmp_path, *cli_args(scenario), "--queue", f"taskq-mutant:{mutant}")
    assert (code, verdict["valid"]) == (1, False), stderr[-3000:]
    checker = next(c for c in verdict["checkers"] if c["name"] == name)
    assert checker["valid"] is False, f"{mutant}: {name} is {checker['valid']}: {checker['figures']}"
    assert checker["figures"][figure] > 0, checker["figures"]
