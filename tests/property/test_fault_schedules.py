"""Generated fault schedules through the real harness: the reference queue holds on every
drawn plan, and a planted bug is found and shrunk to a plan file that replays it.

Each example is a whole harness run (a redis-server, agent processes, faults), a few
seconds each. Under the `ci` profile only the fixed plans below run: each has faults that
hit (a worker killed while it holds tasks, one paused past its lease while it settles, one
terminated while it fails a task), so CI never spends its runs on the empty plan Hypothesis
draws first. HYPOTHESIS_PROFILE=dev or nightly draw new plans besides.

A verdict of `unknown` passes only where the plan hit nothing: an unknown checker must be one
that reports its faults hit nothing (vacuity with hit=0, recovery with no task held by a
crashed worker). Any other unknown, or any unknown in a fixed plan, fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase, example, given, settings

from harness.plan import Plan, make_plan
from harness.runner import new_run_folder, run
from harness.scenario import scenario_from_dict
from harness.search import plans, search

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
# One harness run per 25 examples the profile would give a pure test: dev 2, nightly 80.
RUNS = max(2, settings().max_examples // 25)


def fixed_plan(seed: int, faults: list[dict[str, Any]], **workload: Any) -> Plan:
    """A plan in the shape harness.search draws, with chosen faults."""
    data = {
        "name": f"fixed-{seed}",
        "run": {"tasks": 400, "rate": 0.0, "producers": 1, "consumers": 3, "duration_s": 5.0, "drain_timeout_s": 15.0},
        "workload": {"task_ms_mean": 2.0, "read_count": 10, **workload},
        "queue": {"pending_timeout_s": 1.0, "retry_base_delay_s": 0.0},
        "faults": faults,
        "expect": {"faults_must_hit": False},
    }  # fmt: skip
    return make_plan(scenario_from_dict(data, "fixed plan"), seed=seed, queue="taskq", redis="local",
                     queue_name=f"fixed-{seed}")  # fmt: skip


FIXED_PLANS = (
    # A crash while holding tasks (redelivery), then a pause past the lease while acks are in flight
    # (the late acks must be refused), with failing handlers and mixed priorities.
    fixed_plan(11, [
        {"kind": "kill", "after_completed": [80], "target": "consumer-0", "duration_s": 0.3, "aim": "holding"},
        {"kind": "pause", "after_completed": [200], "target": "consumer-1", "duration_s": 1.5, "aim": "settling"},
    ], failure_probability=0.2, max_retries=2, priorities=[0.1, 0.2, 0.5, 0.2]),
    # A graceful stop while a fail is in flight, and a kill of another consumer while it holds tasks.
    fixed_plan(12, [
        {"kind": "term", "after_completed": [100], "target": "consumer-2", "duration_s": 0.1, "aim": "failing"},
        {"kind": "kill", "after_completed": [250], "target": "consumer-0", "duration_s": 0.3, "aim": "holding"},
    ], failure_probability=0.5, max_retries=1, priorities=[0.5, 0.0, 0.0, 0.5]),
)  # fmt: skip


def unexplained_unknowns(verdict: dict[str, Any]) -> list[str]:
    """Unknown checkers other than those that report their faults hit nothing."""
    found = []
    for checker in verdict["checkers"]:
        if checker["valid"] is not None:
            continue
        figures = checker["figures"]
        hit_nothing = (checker["name"] == "vacuity" and figures.get("hit") == 0) or (
            checker["name"] == "recovery" and figures.get("held") == 0
        )
        if not hit_nothing:
            found.append(f"{checker['name']} ({checker['note']})")
    return found


def faults_hit(verdict: dict[str, Any]) -> int:
    vacuity = next(c for c in verdict["checkers"] if c["name"] == "vacuity")
    return int(vacuity["figures"].get("hit", 0))


@settings(max_examples=RUNS, phases=(Phase.explicit,) if PROFILE == "ci" else tuple(Phase))
@example(plan=FIXED_PLANS[0])
@example(plan=FIXED_PLANS[1])
@given(plan=plans("taskq"))
def test_reference_queue_holds_on_generated_fault_schedules(
    plan: Plan, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = new_run_folder(tmp_path_factory.mktemp("runs"), plan)
    verdict = run(plan, folder, status=lambda line: None).verdict
    invalid = [c["name"] for c in verdict["checkers"] if c["valid"] is False]
    assert not invalid, f"invalid: {invalid}; replay with: harness replay {folder}"
    unknown = unexplained_unknowns(verdict)
    assert not unknown, f"unknown although the plan hit something: {unknown}; replay with: harness replay {folder}"
    if plan in FIXED_PLANS:  # chosen to hit: a fixed plan that hit nothing tested nothing
        assert faults_hit(verdict) == len(plan.faults), f"faults missed; replay with: harness replay {folder}"
        assert verdict["valid"] is True, f"replay with: harness replay {folder}"


@pytest.mark.timeout(240)  # each run drains for its full timeout: the mutant's entries never leave the stream
def test_a_planted_bug_is_found_shrunk_and_replayed(tmp_path: Path) -> None:
    outcome = search("taskq-mutant:no-delete", max_examples=2, out=tmp_path, status=lambda line: None)
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
