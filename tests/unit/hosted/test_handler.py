"""harness.hosted.handler: what a hosted handler journals, per lane; planned failures raise; a poison
task ends the process."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from harness.history import read_journal
from harness.hosted.handler import POISON_EXIT_CODE, HostedRun, PlannedFailure
from harness.plan import make_plan
from harness.scenario import load_scenario


def hosted_run(tmp_path: Path, failure_probability: float = 0.0) -> HostedRun:
    scenario = load_scenario("steady")
    scenario = replace(scenario, workload=replace(scenario.workload, failure_probability=failure_probability))
    plan = make_plan(scenario, seed=1, queue="taskq-worker", redis="local", queue_name="q")
    plan.save(tmp_path / "plan.json")
    return HostedRun(plan, tmp_path / "consumer-0#1.jsonl", "consumer-0#1")


def test_a_task_journals_its_start_and_finish_on_its_own_lane(tmp_path: Path) -> None:
    run = hosted_run(tmp_path)
    asyncio.run(run.run({"tid": "t1", "prio": 1, "ms": 1}, attempt=0, deliveries=None))
    ops = read_journal(run.journal)
    assert [(op["f"], op["type"]) for op in ops] == [
        ("deliver", "invoke"), ("deliver", "ok"), ("complete", "invoke"), ("complete", "ok"),
    ]  # fmt: skip
    assert ops[1]["value"] == {"tasks": [["t1", 1, 0, None]]}
    assert len({op["process"] for op in ops}) == 1
    assert ops[0]["process"].startswith("consumer-0#1.")


def test_handlers_running_at_once_take_different_lanes_and_reuse_free_ones(tmp_path: Path) -> None:
    run = hosted_run(tmp_path)
    first, second = run.begin({"tid": "a"}, attempt=0), run.begin({"tid": "b"}, attempt=0)
    assert first.lane != second.lane
    run.finish(first)
    third = run.begin({"tid": "c"}, attempt=0)
    assert third.lane == first.lane


def test_a_planned_failure_is_journaled_then_raised(tmp_path: Path) -> None:
    run = hosted_run(tmp_path, failure_probability=0.999)
    with pytest.raises(PlannedFailure):
        run.run_sync({"tid": "t1", "ms": 0}, attempt=2)
    fail = read_journal(run.journal)[-1]
    assert fail["f"] == "fail"
    assert fail["value"] == {"outcomes": ["raised"]}


def test_a_cancelled_handler_is_journaled_as_cancelled(tmp_path: Path) -> None:
    run = hosted_run(tmp_path)

    async def cancel_it() -> None:
        task = asyncio.create_task(run.run({"tid": "t1", "ms": 5000}, attempt=0))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_it())
    assert read_journal(run.journal)[-1]["value"] == {"outcomes": ["cancelled"]}


def test_a_poison_task_kills_the_process_after_its_start_is_journaled(tmp_path: Path) -> None:
    run = hosted_run(tmp_path)
    code = (
        "from pathlib import Path; from harness.plan import Plan; from harness.hosted.handler import HostedRun; "
        f"r = HostedRun(Plan.load(Path({str(tmp_path / 'plan.json')!r})), Path({str(run.journal)!r}), 'consumer-0#1'); "
        "r.run_sync({'tid': 'bad', 'poison': True}, attempt=0); print('survived')"
    )
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == POISON_EXIT_CODE
    assert "survived" not in done.stdout
    assert read_journal(run.journal)[-1]["f"] == "deliver"
