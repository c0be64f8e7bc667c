"""harness.shrink: simpler plans one change at a time, judged by a predicate (no harness runs here)."""

from __future__ import annotations

from typing import Any

from harness.plan import Plan, make_plan
from harness.scenario import scenario_from_dict
from harness.shrink import MIN_TASKS, shrink, simpler


def plan_of(**overrides: Any) -> Plan:
    data: dict[str, Any] = {
        "name": "generated",
        "run": {"tasks": 400, "rate": 100.0, "producers": 1, "consumers": 3, "duration_s": 5.0},
        "workload": {"failure_probability": 0.5, "max_retries": 2, "task_ms_mean": 2.0,
                     "priorities": [0.1, 0.2, 0.5, 0.2], "read_count": 7},
        "queue": {"pending_timeout_s": 1.0, "retry_base_delay_s": 0.01},
        "faults": [
            {"kind": "pause", "after_completed": [10], "target": "consumer-1", "duration_s": 1.0},
            {"kind": "kill", "after_completed": [20, 70, 120], "target": "consumer", "duration_s": 0.3},
            {"kind": "flushall", "after_completed": [300], "target": "redis", "duration_s": 0.0},
        ],
        "expect": {"faults_must_hit": False, "loss_allowed_in_redis_fault_windows": True},
    }  # fmt: skip
    data.update(overrides)
    return make_plan(scenario_from_dict(data), seed=5, queue="taskq", redis="local", queue_name="q")


def kinds(plan: Plan) -> list[str]:
    return [f.kind for f in plan.faults]


def test_a_bug_that_needs_one_kill_shrinks_to_that_kill_and_the_plainest_workload() -> None:
    asked: list[Plan] = []

    def fails(plan: Plan) -> bool:
        asked.append(plan)
        return "kill" in kinds(plan)

    shrunk = shrink(plan_of(), fails, budget=None)
    assert kinds(shrunk) == ["kill"]
    run, workload = shrunk.scenario.run, shrunk.scenario.workload
    assert (run.tasks, run.consumers, run.rate) == (MIN_TASKS, 2, 0.0)
    assert (workload.failure_probability, workload.max_retries, workload.read_count) == (0.0, 0, 1)
    assert shrunk.seed == 5 and shrunk.queue_name == "q"
    assert len({p.to_dict().__repr__() for p in asked}) == len(asked), "a plan was asked about twice"


def test_the_budget_bounds_how_many_plans_are_asked_about() -> None:
    asked: list[Plan] = []

    def fails(plan: Plan) -> bool:
        asked.append(plan)
        return True

    shrink(plan_of(), fails, budget=4)
    assert len(asked) == 4


def test_a_plan_with_nothing_left_to_simplify_is_returned_as_it_is() -> None:
    plain = plan_of(
        run={"tasks": MIN_TASKS, "rate": 0.0, "producers": 1, "consumers": 2, "duration_s": 5.0},
        workload={"failure_probability": 0.0, "max_retries": 0, "task_ms_mean": 0.0,
                  "priorities": [0.0, 0.0, 1.0, 0.0], "read_count": 1},
        queue={"pending_timeout_s": 1.0, "retry_base_delay_s": 0.0}, faults=[],
    )  # fmt: skip
    assert list(simpler(plain)) == []
    assert shrink(plain, lambda plan: True, budget=None) is plain


def test_with_fewer_tasks_each_barrier_keeps_its_place_in_the_work() -> None:
    candidates = [p for p in simpler(plan_of()) if p.scenario.run.tasks == MIN_TASKS]
    assert candidates
    # 400 tasks to 50: the pause at 10 and the kill at 20 strike at 1 and 2, the flush at 300 at 37, with
    # a quarter of the work still to come after it.
    barriers = [f.after_completed for f in candidates[0].faults]
    assert barriers[:2] == [1, 2] and barriers[-1] == 300 * MIN_TASKS // 400
