"""Generated fault schedules: Hypothesis draws small plans, the harness runs and judges
each, and the first plan that fails is shrunk (harness.shrink: simpler plans, one change
at a time, within a budget of runs) to a short reproduction saved as a plan file
(`harness replay FILE` runs it again).

Plans are built to give the same verdict when run again: a fixed number of tasks,
handler failures drawn from the seed, and faults triggered by progress (after so
many completions) rather than by wall-clock time.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from harness.faults import RECLAIMER
from harness.plan import Plan, make_plan
from harness.runner import new_run_folder, run
from harness.scenario import scenario_from_dict
from harness.shrink import shrink

WORKER_FAULT_KINDS = ("kill", "pause", "term")
REDIS_FAULT_KINDS = ("flushall", "redis-kill")
WORKER_AIMS = ("holding", "settling", "failing")
# A paced plan offers its tasks over this long, whatever their number: a fault in the first half of
# the work leaves seconds of load after it (how a queue serves after a fault is half of the story).
LOAD_S = 4.0
POISON_FRACTION = 0.005


def _barrier(draw: st.DrawFn, tasks: int) -> int:
    """A completion count in the first half of the work: later, the queue may have run dry."""
    return draw(st.integers(0, max(0, tasks // 2)))


@st.composite
def worker_faults(draw: st.DrawFn, tasks: int, consumers: int) -> list[dict[str, Any]]:
    """One kind of fault on consumers, one to three times, once so many tasks completed."""
    kind = draw(st.sampled_from(WORKER_FAULT_KINDS))
    first, spacing = _barrier(draw, tasks), max(1, tasks // 8)
    barriers = [min(tasks - 1, first + n * spacing) for n in range(draw(st.integers(1, 3)))]
    return [{
        "kind": kind,
        "after_completed": barriers,
        # "consumer": a victim drawn for each strike.
        "target": draw(st.sampled_from(["consumer", *(f"consumer-{n}" for n in range(consumers))])),
        # A pause longer than the visibility timeout makes leases expire; a short one does not.
        "duration_s": draw(st.sampled_from([0.1, 1.0] if kind == "pause" else [0.1, 0.3])),
        "aim": draw(st.sampled_from(WORKER_AIMS)),
    }]  # fmt: skip


@st.composite
def reclaimer_kills(draw: st.DrawFn, tasks: int, consumers: int) -> list[dict[str, Any]]:
    """A kill of a consumer holding tasks, then a kill of whichever consumer takes them over, while it
    holds them: the recovery path itself dies."""
    at = _barrier(draw, tasks)
    victim = f"consumer-{draw(st.integers(0, consumers - 1))}"
    return [
        {"kind": "kill", "after_completed": [at], "target": victim, "duration_s": 0.3, "aim": "holding"},
        {"kind": "kill", "after_completed": [at + 1], "target": RECLAIMER, "duration_s": 0.3, "aim": "holding"},
    ]


@st.composite
def failing_kills(draw: st.DrawFn, tasks: int, consumers: int) -> list[dict[str, Any]]:
    """A kill of a consumer while it fails a task, once or twice: a retry made of more than one step
    (settle, then re-add) loses or repeats the task when the worker dies between them. The plan then
    has failing handlers with retries (scenarios() sees to it)."""
    first = _barrier(draw, tasks)
    return [{
        "kind": "kill", "after_completed": [min(tasks - 1, first + n * max(1, tasks // 8))
                                            for n in range(draw(st.integers(1, 2)))],
        "target": f"consumer-{draw(st.integers(0, consumers - 1))}", "duration_s": 0.3, "aim": "failing",
    }]  # fmt: skip


@st.composite
def redis_faults(draw: st.DrawFn, tasks: int) -> list[dict[str, Any]]:
    """Redis forgets the queue: FLUSHALL (with FUNCTION FLUSH), or a SIGKILL and a restart without
    persistence, once so many tasks completed."""
    kind = draw(st.sampled_from(REDIS_FAULT_KINDS))
    return [{
        "kind": kind, "after_completed": [_barrier(draw, tasks)], "target": "redis",
        "duration_s": 0.0 if kind == "flushall" else 0.5, "aim": draw(st.sampled_from(["holding", "settling"])),
    }]  # fmt: skip


def fault_blocks(tasks: int, consumers: int) -> st.SearchStrategy[list[dict[str, Any]]]:
    """What a plan's faults are made of: faults on consumers, a Redis fault, a kill and a kill of the
    consumer that took over (a pair: drawn apart, the second would almost never find its victim), or
    kills of consumers failing tasks."""
    return st.one_of(
        worker_faults(tasks, consumers), redis_faults(tasks), reclaimer_kills(tasks, consumers),
        failing_kills(tasks, consumers),
    )  # fmt: skip


@st.composite
def scenarios(draw: st.DrawFn, max_tasks: int = 600) -> dict[str, Any]:
    """A small scenario, as the data a scenario file holds."""
    consumers = draw(st.integers(2, 3))
    tasks = draw(st.integers(50, max_tasks))
    # At least one fault: a bug that needs none still shows with one, and shrinking tries no fault first.
    blocks = draw(st.lists(fault_blocks(tasks, consumers), min_size=1, max_size=3))
    faults = [spec for block in blocks for spec in block]
    # Paced load keeps tasks coming after a fault; unpaced load is all enqueued in a fraction of a second.
    # After Redis forgot the queue, only tasks enqueued later show whether the queue came back.
    paced = draw(st.booleans()) or any(f["kind"] in REDIS_FAULT_KINDS for f in faults)
    failing = any(f["aim"] == "failing" for f in faults)
    return {
        "name": "generated",
        "description": "drawn by harness.search",
        "run": {"tasks": tasks, "rate": round(tasks / LOAD_S, 1) if paced else 0.0, "producers": 1,
                "consumers": consumers, "duration_s": 5.0, "drain_timeout_s": 8.0},
        "workload": {
            # A fault aimed at a failing consumer needs failures to aim at, and retries to split.
            "failure_probability": draw(st.sampled_from([0.2, 0.5] if failing else [0.0, 0.2, 0.5])),
            "max_retries": draw(st.integers(1 if failing else 0, 2)),
            # Tasks that take milliseconds: a kill aimed at a holder must find it holding (the nemesis reads
            # its journal every millisecond; a task of no time is held for microseconds).
            "task_ms_mean": draw(st.sampled_from([3.0, 10.0])),
            # A task that kills whoever runs it, one in a few hundred: a few per plan, reclaimed again and
            # again until the delivery cap dead-letters them.
            "poison_fraction": draw(st.sampled_from([0.0, POISON_FRACTION])),
            "priorities": draw(st.sampled_from([[0.1, 0.2, 0.5, 0.2], [0.0, 0.0, 1.0, 0.0], [0.5, 0.0, 0.0, 0.5]])),
            "read_count": draw(st.integers(1, 20)),
        },
        # Retries now, or after a short delay (through the delayed set and its promotion).
        "queue": {"pending_timeout_s": 1.0, "retry_base_delay_s": draw(st.sampled_from([0.0, 0.01]))},
        "faults": faults,
        # Redis forgetting the queue loses what it held: allowed, and attributed to the fault.
        "expect": {"faults_must_hit": False,
                   "loss_allowed_in_redis_fault_windows": any(f["kind"] in REDIS_FAULT_KINDS for f in faults)},
    }  # fmt: skip


def plans(queue: str) -> st.SearchStrategy[Plan]:
    def build(data: dict[str, Any], seed: int) -> Plan:
        scenario = scenario_from_dict(data, "generated plan")
        return make_plan(scenario, seed=seed, queue=queue, redis="local", queue_name=f"search-{seed}")

    return st.builds(build, scenarios(), st.integers(0, 2**16))


def plan_size(plan: Plan) -> str:
    """The plan in a line: its size, its faults, and the workload's own hazards (poison tasks, failures)."""
    run_settings, workload = plan.scenario.run, plan.scenario.workload
    faults = ", ".join(f"{f.kind} {f.target}@{f.after_completed}" for f in plan.faults) or "no faults"
    hazards = "".join([
        f", poison {workload.poison_fraction:.1%}" if workload.poison_fraction else "",
        f", failing {workload.failure_probability:.0%}" if workload.failure_probability else "",
    ])  # fmt: skip
    return f"{run_settings.tasks} tasks, {run_settings.consumers} consumers, {faults}{hazards}"


@dataclass(frozen=True, slots=True)
class SearchOutcome:
    queue: str
    plan: Plan | None
    plan_file: Path | None
    examples_to_find: int
    shrink_steps: int
    seconds: float

    def summary(self) -> str:
        if self.plan is None:
            return f"{self.queue}: nothing found in {self.examples_to_find} examples ({self.seconds:.0f} s)"
        return (
            f"{self.queue}: found after {self.examples_to_find} example(s), shrunk in {self.shrink_steps} step(s), "
            f"{self.seconds:.0f} s in all: {plan_size(self.plan)} -> {self.plan_file}"
        )


# Plans the shrinking may run once one failed: each costs a whole harness run (seconds).
DEFAULT_MAX_SHRINKS = 10


def search(
    queue: str,
    *,
    max_examples: int,
    out: Path,
    seed: int = 0,
    max_shrinks: int | None = DEFAULT_MAX_SHRINKS,
    status: Callable[[str], None] = print,
) -> SearchOutcome:
    """Look for a plan on which `queue` is judged invalid; shrink it (running at most `max_shrinks`
    simpler plans; None: until no simpler one fails); save it under `out`."""
    calls = {"n": 0, "first_failure": 0}
    seen: dict[str, bool] = {}  # a plan asked about again gets the same answer, without a run
    start = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    plan_file = out / f"{queue.replace(':', '-')}.plan.json"

    def invalid(plan: Plan) -> bool:
        with tempfile.TemporaryDirectory() as runs:
            folder = new_run_folder(Path(runs), plan)
            return run(plan, folder, status=lambda line: None, reports=False).verdict["valid"] is False

    def fails(plan: Plan) -> bool:
        key = json.dumps(plan.to_dict(), sort_keys=True)
        if key in seen:
            return seen[key]
        calls["n"] += 1
        # A failure counts only if it happens again: a plan that fails by chance (a stall
        # that let a lease expire) would lead the shrinker to a reproduction that is not one.
        failed = seen[key] = invalid(plan) and invalid(plan)
        if failed:
            calls["first_failure"] = calls["first_failure"] or calls["n"]
            plan.save(plan_file)  # the last failure saved is the shrunk one
        status(f"example {calls['n']}: {'INVALID' if failed else 'ok'}  ({plan_size(plan)})")
        return failed

    config = settings(
        max_examples=max_examples, database=None, deadline=None, phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    try:
        first: Plan | None = find(plans(queue), fails, settings=config, random=random.Random(seed))
    except NoSuchExample:
        first = None
    found = None if first is None else shrink(first, fails, budget=max_shrinks)
    first_failure = calls["first_failure"]
    return SearchOutcome(
        queue=queue,
        plan=found,
        plan_file=plan_file if found is not None else None,
        examples_to_find=first_failure if found is not None else calls["n"],
        shrink_steps=calls["n"] - first_failure if found is not None else 0,
        seconds=time.monotonic() - start,
    )
