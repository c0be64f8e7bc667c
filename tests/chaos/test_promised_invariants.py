"""The invariants taskq promises, end to end through the `harness` command: each promise-breaking
mutant is invalid, flagged by the checker that names its bug, on a named scenario and seed; and on
the same plan taskq keeps the promise where the fault put it to the test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow
SEED = 7
REPO = Path(__file__).resolve().parents[2]

# mutant -> (scenario whose faults expose it, the checker that must name it, the figure it must raise)
# pause_workers runs 15 s: in 5 s one pause strikes, and a victim paused mid-read, or with its ack already
# sent, has nothing to ack late (on a machine at load 37, a 10 s run had one pause, landing on an ack in flight).
LONGER = {"pause_workers": "15"}
EXPOSURES = {
    "ack-no-ownership": ("pause_workers", "ownership", "accepted"),
    "blind-resend": ("dropped_replies", "stored_twice", "stored_twice"),
    "dlq-no-errors": ("retries_and_dlq", "dlq", "wrong_error_count"),
    "retry-budget-off-by-one": ("retries_and_dlq", "budget", "attempts_beyond_budget"),
    "retry-priority-drop": ("retries_and_dlq", "identity", "priority_changes"),
}


def harness_run(scenario: str, out: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    duration = LONGER.get(scenario, "5")
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", scenario, "--duration", duration, "--drain-timeout", "20",
         "--seed", str(SEED), "--out", str(out), *extra],
        cwd=REPO, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    verdicts = list(out.glob("*/verdict.json"))
    assert len(verdicts) == 1, f"no single verdict.json (exit {done.returncode}): {done.stderr[-2000:]}"
    return done.returncode, json.loads(verdicts[0].read_text()), done.stderr


def checker(verdict: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in verdict["checkers"] if c["name"] == name)
    return found


@pytest.mark.parametrize("mutant", sorted(EXPOSURES))
def test_a_broken_promise_is_named_by_its_checker(mutant: str, tmp_path: Path) -> None:
    scenario, name, figure = EXPOSURES[mutant]
    code, verdict, stderr = harness_run(scenario, tmp_path, "--queue", f"taskq-mutant:{mutant}")
    assert (code, verdict["valid"]) == (1, False), stderr[-3000:]
    result = checker(verdict, name)
    assert result["valid"] is False, f"{mutant}: {name} says {result}"
    assert result["figures"][figure] > 0
    assert result["anomalies"], result


def test_taskq_refuses_every_late_ack_under_pause_workers(tmp_path: Path) -> None:
    code, verdict, stderr = harness_run("pause_workers", tmp_path)
    assert (code, verdict["valid"]) == (0, True), stderr[-3000:]
    ownership = checker(verdict, "ownership")["figures"]
    assert ownership["late_settlements"] > 0, "no paused worker settled late: the promise was never tested"
    assert ownership["refused"] == ownership["late_settlements"]
    leases = checker(verdict, "leases")["figures"]
    assert leases["handovers"] > 0
    assert leases["early"] == 0
