"""Shrinking a failing plan: simpler plans, one change at a time, most useful first.

Every run of a plan costs seconds, so the search cannot afford a generic shrinker's hundreds of
tries. These candidates know what makes a reproduction short to read: fewer faults first (no
fault at all, then each fault dropped in turn, then each striking once), then fewer tasks and
consumers, then the workload's knobs set to their plainest (no poison tasks, no handler failures,
no retries, tasks that take no time, one priority, one task per read, unpaced load). A candidate
that still fails replaces the plan, and the candidates start again from it; `shrink` stops when none is
left or the budget of runs is spent.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

from harness.plan import Plan, make_plan
from harness.scenario import scenario_from_dict

MIN_TASKS = 50
# The workload and queue knobs, each with its plainest value, in the order they are tried.
PLAIN: tuple[tuple[str, str, Any], ...] = (
    ("workload", "poison_fraction", 0.0),
    ("workload", "failure_probability", 0.0),
    ("workload", "max_retries", 0),
    ("queue", "retry_base_delay_s", 0.0),
    ("workload", "task_ms_mean", 0.0),
    ("workload", "priorities", [0.0, 0.0, 1.0, 0.0]),
    ("workload", "read_count", 1),
    ("run", "rate", 0.0),
)


def shrink(plan: Plan, fails: Callable[[Plan], bool], *, budget: int | None) -> Plan:
    """The simplest plan reached from `plan` that still fails; `fails` is asked at most `budget` times
    about plans it has not seen (it may answer from a cache), or without limit when budget is None."""
    asked = 0
    tried: set[str] = set()
    improved = True
    while improved:
        improved = False
        for candidate in simpler(plan):
            key = _key(candidate)
            if key in tried:
                continue
            if budget is not None and asked >= budget:
                return plan
            tried.add(key)
            asked += 1
            if fails(candidate):
                plan, improved = candidate, True
                break
    return plan


def simpler(plan: Plan) -> Iterator[Plan]:
    """Candidate plans, each one change simpler than `plan`, most useful first."""
    data = plan.scenario.as_dict()
    faults = data["faults"]
    if faults:
        yield _with(plan, data, faults=[])
    for position in reversed(range(len(faults)) if len(faults) > 1 else ()):
        yield _with(plan, data, faults=faults[:position] + faults[position + 1 :])
    for position, fault in enumerate(faults):
        if len(fault["after_completed"]) > 1:  # strikes once instead of several times
            once = {**fault, "after_completed": fault["after_completed"][:1]}
            yield _with(plan, data, faults=[*faults[:position], once, *faults[position + 1 :]])
    tasks = data["run"]["tasks"]
    if tasks is not None and tasks > MIN_TASKS:
        yield _with(plan, data, tasks=MIN_TASKS)
        if tasks > MIN_TASKS + 1:
            yield _with(plan, data, tasks=(tasks + MIN_TASKS) // 2)
    if data["run"]["consumers"] > 2:
        yield _with(plan, data, consumers=2)
    for section, key, plain in PLAIN:
        value = data[section][key]
        if (list(value) if isinstance(value, tuple) else value) != plain:
            yield _with(plan, data, **{key: plain})


def _with(plan: Plan, data: dict[str, Any], **changes: Any) -> Plan:
    changed = copy.deepcopy(data)
    for key, value in changes.items():
        section = "faults" if key == "faults" else next(s for s in ("run", "workload", "queue") if key in changed[s])
        if section == "faults":
            changed["faults"] = value
        else:
            changed[section][key] = value
    # Fewer tasks: each barrier keeps its place in the work (a fault a quarter of the way in stays a quarter
    # of the way in, with the load after it that may be what shows the bug), and none lies past the end.
    tasks, before = changed["run"]["tasks"], data["run"]["tasks"]
    for fault in changed["faults"]:
        if tasks is not None:
            scaled = (n * tasks // before if before and tasks < before else n for n in fault["after_completed"])
            fault["after_completed"] = [min(n, tasks - 1) for n in scaled]
    scenario = scenario_from_dict(changed, "shrunk plan")
    return make_plan(scenario, seed=plan.seed, queue=plan.queue, redis=plan.redis, queue_name=plan.queue_name)


def _key(plan: Plan) -> str:
    return json.dumps(plan.to_dict(), sort_keys=True)
