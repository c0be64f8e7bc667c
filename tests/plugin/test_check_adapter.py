"""`harness check-adapter`: the protocol checks pass on taskq and taskq-worker, and each broken adapter is
told which method broke which rule, in a line, never with a stack trace; the battery of runs on taskq."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.kit.conformance import check_adapter
from harness.kit.conformance.report import Report

REPO = Path(__file__).resolve().parents[2]
BROKEN = "tests.plugin.broken_adapters"


def checked(spec: str, tmp_path: Path) -> Report:
    return check_adapter(spec, out=tmp_path, runs=False)


def broken_lines(report: Report) -> list[str]:
    return [f"{f.method}: {f.rule}: {f.detail}" for f in report.broken]


def test_taskq_keeps_every_rule_and_shows_its_promises(tmp_path: Path) -> None:
    report = checked("taskq", tmp_path)
    assert broken_lines(report) == []
    statuses = {r.promise: r.status for r in report.results()}
    assert statuses == dict.fromkeys(("at-least-once", "ownership", "priority", "fifo", "retries", "dlq"), "held")
    assert report.exit_code == 0


def test_taskq_worker_keeps_the_rules_of_a_hosted_adapter(tmp_path: Path) -> None:
    report = checked("taskq-worker", tmp_path)
    assert report.kind == "hosted"
    assert broken_lines(report) == []
    assert {f.method for f in report.findings if f.status == "ok"} >= {"connect", "enqueue", "final_state", "worker"}
    assert report.exit_code == 0


def test_a_queue_that_declares_an_ownership_check_it_lacks_is_shown_not_to_hold_it(tmp_path: Path) -> None:
    """The ack-no-ownership mutant keeps taskq's promises, and takes a late ack from a consumer that lost the task."""
    report = checked("taskq-mutant:ack-no-ownership", tmp_path)
    results = {r.promise: r for r in report.results()}
    assert results["ownership"].status == "NOT HELD"
    assert "accepted (True)" in " ".join(e.detail for e in results["ownership"].evidence)
    assert report.exit_code == 1
    assert "declared but not held: ownership-checked ack" in report.render()


def test_a_queue_that_does_not_promise_ownership_is_not_held_to_it(tmp_path: Path) -> None:
    """raw (a plain redis-py loop) declares it takes any ack: shown as not promised, not as broken."""
    results = {r.promise: r for r in checked("raw", tmp_path).results()}
    assert results["ownership"].status == "not promised"


@pytest.mark.parametrize(
    ("adapter", "method", "rule", "detail"),
    [
        ("ConsumeHandsOutDicts", "consume", "returns harness.adapters.Delivered objects", "it returned a dict"),
        ("CompleteSaysNothing", "complete", "acks tasks their consumer holds: True for each", "returned None"),
        ("FailRaises", "fail", "raises only AdapterUnavailable", "it raised KeyError: 't08' (broken_adapters.py:"),
        ("FinalStateForgetsPending", "final_state", "lists every pending task in pending", "would count them lost"),
        ("SynchronousDepth", "depth", "is a coroutine (async def)", "it returned dict"),
        ("HalfAnAdapter", "HalfAnAdapter", "has the methods of a pull adapter", "missing: close, depth, final_state"),
        ("exploding_factory", "factory", "builds the adapter", "RuntimeError: no configuration file found"),
    ],
)
def test_a_broken_adapter_is_told_which_method_broke_which_rule(
    tmp_path: Path, adapter: str, method: str, rule: str, detail: str
) -> None:
    report = checked(f"{BROKEN}:{adapter}", tmp_path)
    assert report.exit_code == 1
    found = [f for f in report.broken if f.method == method and rule in f.rule and detail in f.detail]
    assert found, broken_lines(report)
    assert "runs:\n  none: a rule is broken" in report.render() or adapter in ("HalfAnAdapter", "exploding_factory")


def harness(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip


def test_the_command_prints_the_broken_rule_without_a_stack_trace() -> None:
    done = harness("check-adapter", f"{BROKEN}:FailRaises", "--no-runs")
    assert done.returncode == 1, done.stderr
    assert "BROKEN   fail" in done.stdout
    assert "result: does not conform: 1 rule(s) broken (exit 1)" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_an_adapter_that_cannot_be_loaded_is_one_line_and_exit_2() -> None:
    done = harness("check-adapter", "no_such_module:factory", "--no-runs")
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("harness: cannot load queue adapter 'no_such_module:factory'")
    assert "Traceback" not in done.stderr


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_taskq_conforms_through_the_battery_of_runs(tmp_path: Path) -> None:
    report = check_adapter("taskq", out=tmp_path, duration_s=2.0)
    assert [o.scenario for o in report.runs][:1] == ["steady"]
    assert report.exit_code == 0, report.render()
    assert {r.status for r in report.results()} == {"held"}, report.render()
