"""Generated fault schedules through the real harness: the reference queue holds on every
drawn plan, and a planted bug is found and shrunk to a plan file that replays it.

Each example is a whole harness run (a redis-server, agent processes, faults), a few
seconds each, so the example counts are a fraction of the profile's: HYPOTHESIS_PROFILE
=nightly runs many more.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings

from harness.plan import Plan
from harness.runner import new_run_folder, run
from harness.search import plans, search

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
# One harness run per 25 examples the profile would give a pure test: ci 2, nightly 80.
RUNS = max(2, settings().max_examples // 25)


@settings(max_examples=RUNS)
@given(plan=plans("taskq"))
def test_reference_queue_holds_on_generated_fault_schedules(
    plan: Plan, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = new_run_folder(tmp_path_factory.mktemp("runs"), plan)
    verdict = run(plan, folder, status=lambda line: None).verdict
    invalid = [c["name"] for c in verdict["checkers"] if c["valid"] is False]
    assert verdict["valid"] is not False, f"invalid: {invalid}; replay with: harness replay {folder}"


def test_a_planted_bug_is_found_shrunk_and_replayed(tmp_path: Path) -> None:
    outcome = search("taskq-mutant:no-delete", max_examples=3, out=tmp_path, status=lambda line: None)
    assert outcome.plan is not None and outcome.plan_file is not None
    shrunk = Plan.load(outcome.plan_file)
    # Leaving acked entries in the stream needs no fault and no size: the minimal plan shows it.
    assert shrunk.faults == ()
    assert shrunk.scenario.run.tasks == 50
    replay = subprocess.run(
        [sys.executable, "-m", "harness", "replay", str(outcome.plan_file), "--out", str(tmp_path / "replays")],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert replay.returncode == 1, replay.stderr[-2000:]
    assert "leaks" in replay.stdout and "INVALID" in replay.stdout
