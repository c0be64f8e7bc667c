"""The fault-plan strategies of harness.search, drawn without running anything."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.faults import RECLAIMER
from harness.plan import Plan
from harness.search import REDIS_FAULT_KINDS, plans, scenarios


@settings(max_examples=50)
@given(plans("taskq"))
def test_every_drawn_plan_saves_and_loads_as_replay_reads_it(plan: Plan) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "plan.json"
        plan.save(path)
        assert Plan.load(path).to_dict() == plan.to_dict()


@settings(max_examples=50)
@given(scenarios())
def test_redis_faults_allow_the_loss_they_cause_and_nothing_else_does(data: dict[str, object]) -> None:
    faults = data["faults"]
    assert isinstance(faults, list)
    redis = any(f["kind"] in REDIS_FAULT_KINDS for f in faults)
    expect = data["expect"]
    assert isinstance(expect, dict)
    assert expect["loss_allowed_in_redis_fault_windows"] is redis


@settings(max_examples=50)
@given(scenarios())
def test_faults_find_what_they_aim_at(
    data: dict[str, object],
) -> None:
    faults, run, workload = data["faults"], data["run"], data["workload"]
    assert isinstance(faults, list) and isinstance(run, dict) and isinstance(workload, dict)
    if any(f["kind"] in REDIS_FAULT_KINDS for f in faults):
        assert run["rate"] > 0  # paced: enqueues go on after the fault, where a queue that did not come back shows
    assert workload["task_ms_mean"] >= 3.0  # a kill aimed at a holder finds it holding
    if any(f["aim"] == "failing" for f in faults):  # a kill aimed at a fail finds one, of a task to retry
        assert workload["failure_probability"] > 0 and workload["max_retries"] >= 1


@settings(max_examples=50)
@given(scenarios())
def test_a_kill_of_the_reclaimer_follows_a_kill_of_a_holder(data: dict[str, object]) -> None:
    faults = data["faults"]
    assert isinstance(faults, list)
    for position, fault in enumerate(faults):
        if fault["target"] == RECLAIMER:
            before = faults[position - 1]
            assert before["kind"] == "kill" and before["target"].startswith("consumer-")
            assert fault["after_completed"] == [before["after_completed"][0] + 1]


def test_the_plan_space_holds_every_kind_of_fault_block_and_poison_tasks() -> None:
    drawn = st.lists(scenarios(), min_size=1)
    kinds: set[str] = set()
    targets: set[str] = set()
    poisoned: set[bool] = set()

    @settings(max_examples=100, database=None)
    @given(drawn)
    def collect(batch: list[dict[str, object]]) -> None:
        for data in batch:
            poisoned.add(data["workload"]["poison_fraction"] > 0)  # type: ignore[index]
            for fault in data["faults"]:  # type: ignore[attr-defined]
                kinds.add(fault["kind"])
                targets.add(fault["target"])

    collect()
    assert {"kill", "pause", "term", "flushall", "redis-kill"} <= kinds
    assert RECLAIMER in targets
    assert poisoned == {True, False}  # tasks that kill their worker, in some plans
