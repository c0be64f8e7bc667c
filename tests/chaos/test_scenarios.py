"""Short versions of every scenario without Redis or network faults, end to end through
the `harness` command: the reference queue is valid in each, and each mutant is invalid,
flagged by the checker that names its bug, on the same seed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.faults import FAULT_KINDS
from harness.peers import PEERS
from harness.scenario import list_scenarios

pytestmark = pytest.mark.slow
SEED = 7
SHORT = ["--duration", "5", "--drain-timeout", "15", "--seed", str(SEED)]
REPO = Path(__file__).resolve().parents[2]
PEER_PREFIXES = tuple(f"{name}_" for name in PEERS)

# mutant -> (scenario that exposes it, checkers of which at least one must name it)
MUTANT_EXPOSURES = {
    "ack-wrong-stream": ("kill_workers", {"leaks", "delivery"}),
    "no-delete": ("kill_workers", {"leaks"}),
    "receipt-map": ("kill_workers", {"delivery"}),
    "retry-reset": ("retries_and_dlq", {"retry"}),
    "split-fail": ("retries_and_dlq", {"retry", "delivery"}),
}


def harness_run(scenario: str, out: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    """Run a scenario; returns exit code, verdict.json and stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", scenario, *SHORT, "--out", str(out), *extra],
        cwd=REPO, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    verdicts = list(out.glob("*/verdict.json"))
    assert len(verdicts) == 1, f"no single verdict.json (exit {done.returncode}): {done.stderr[-2000:]}"
    return done.returncode, json.loads(verdicts[0].read_text()), done.stderr


def invalid_checkers(verdict: dict[str, Any]) -> set[str]:
    return {c["name"] for c in verdict["checkers"] if c["valid"] is False}


# Scenarios with Redis or network faults have their own, stricter runs (test_redis_scenarios.py); those
# written for one peer library (named after it, e.g. taskiq_kill_child) run in tests/peers. Killing a
# worker's child process needs a worker with children: not the harness's own consumer.
CHILD_FAULTS = {"kill-child"}
WORKER_SCENARIOS = [
    s.name for s in list_scenarios()
    if all(FAULT_KINDS[f.kind].role == "consumer" for f in s.faults)
    and not {f.kind for f in s.faults} & CHILD_FAULTS and not s.name.startswith(PEER_PREFIXES)
]  # fmt: skip


@pytest.mark.parametrize("scenario", WORKER_SCENARIOS)
def test_reference_queue_is_valid(scenario: str, tmp_path: Path) -> None:
    code, verdict, stderr = harness_run(scenario, tmp_path)
    assert (code, verdict["valid"]) == (0, True), f"{invalid_checkers(verdict)}: {stderr[-3000:]}"
    assert verdict["throughput"]["completed_during_load"] > 0


def test_a_child_fault_on_a_worker_without_children_does_not_apply(tmp_path: Path) -> None:
    """The harness's consumer forks nothing: every kill-child is journaled as not applied, and vacuity
    says the run proves nothing (unknown, exit 2), never valid."""
    code, verdict, stderr = harness_run("kill_children", tmp_path)
    vacuity = next(c for c in verdict["checkers"] if c["name"] == "vacuity")
    assert (code, verdict["valid"], vacuity["valid"]) == (2, None, None), stderr[-3000:]
    assert vacuity["figures"]["hit"] == 0 and vacuity["figures"]["missed"] >= 1


@pytest.mark.parametrize("mutant", sorted(MUTANT_EXPOSURES))
def test_mutant_is_caught_by_the_checker_that_names_its_bug(mutant: str, tmp_path: Path) -> None:
    scenario, naming = MUTANT_EXPOSURES[mutant]
    # A short drain: a mutant's queue keeps getting emptier, slowly, and a drain extends while it does.
    code, verdict, stderr = harness_run(scenario, tmp_path, "--queue", f"taskq-mutant:{mutant}", "--drain-timeout", "3")
    assert (code, verdict["valid"]) == (1, False), stderr[-3000:]
    assert invalid_checkers(verdict) & naming, f"{mutant} flagged by {invalid_checkers(verdict)}, expected {naming}"
