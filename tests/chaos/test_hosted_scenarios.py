"""The real `taskq worker` under the harness (--queue taskq-worker), end to end through the `harness`
command: valid under worker, Redis and network faults, including tasks longer than the visibility
timeout (lease renewal: no repeat while the holder lives) and SIGTERM (tasks handed back at once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.test_scenarios import harness_run, invalid_checkers

pytestmark = pytest.mark.slow

SCENARIOS = [
    "steady", "kill_workers", "pause_workers", "sigterm_workers", "long_tasks", "retries_and_dlq", "poison_pill",
    "dropped_replies", "redis_crash_aof_always",
]  # fmt: skip


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_taskq_worker_is_valid(scenario: str, tmp_path: Path) -> None:
    code, verdict, stderr = harness_run(scenario, tmp_path, "--queue", "taskq-worker")
    assert (code, verdict["valid"]) == (0, True), f"{invalid_checkers(verdict)}: {stderr[-3000:]}"
    assert verdict["hosted"] is True
    assert verdict["throughput"]["completed_during_load"] > 0


def test_long_tasks_run_once_while_their_holder_renews(tmp_path: Path) -> None:
    _, verdict, _ = harness_run("long_tasks", tmp_path, "--queue", "taskq-worker")
    delivery = next(c for c in verdict["checkers"] if c["name"] == "delivery")
    # Every repeat is one the kills explain; none comes from a lease that lapsed under a live holder.
    assert delivery["figures"]["duplicated_unexplained"] == 0
    assert verdict["promises"]["renews_lease"] is True
