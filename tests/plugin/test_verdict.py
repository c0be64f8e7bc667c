"""Verdict (harness.kit.verdict) and agent_errors (harness.kit.agent_errors) on planted inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.adapters.promises import Promises
from harness.kit.agent_errors import agent_errors
from harness.kit.conformance.battery import RunOutcome
from harness.kit.conformance.report import Report
from harness.kit.verdict import Verdict

FOLDER = Path("/runs/20261203-kill_workers-7-myq")


def verdict_data(valid: bool | None, *checkers: dict[str, Any]) -> dict[str, Any]:
    return {
        "valid": valid, "scenario": "kill_workers", "seed": 7, "queue": "myq:factory", "checkers": list(checkers),
        "throughput": {"per_second": 812.5}, "latency_ms": {"enqueue_to_start": {"p50": 1.5, "p99": 9.0}},
    }  # fmt: skip


LOST = [{"kind": "lost", "tid": f"p0-{n}", "enqueue": "ok", "deliveries": 1} for n in range(5)]
DELIVERY = {"name": "delivery", "valid": False, "figures": {"enqueued_ok": 100, "lost": 5}, "anomalies": LOST}
ORDER = {"name": "order", "valid": True, "figures": {"violations": 0}, "anomalies": []}
VACUITY = {"name": "vacuity", "valid": None, "figures": {"hit": 0, "missed": 2}, "anomalies": [],
           "note": "fault(s) never hit anything"}  # fmt: skip


def test_an_invalid_verdict_is_falsy_and_its_summary_says_what_to_do() -> None:
    verdict = Verdict(verdict_data(False, DELIVERY, ORDER), FOLDER)
    assert not verdict
    assert repr(verdict) == "Verdict(INVALID kill_workers seed=7 queue=myq:factory: delivery)"
    lines = verdict.summary().splitlines()
    assert lines[0] == "harness verdict: INVALID (scenario kill_workers, seed 7, queue myq:factory)"
    assert lines[1].split() == ["delivery", "INVALID", "enqueued_ok=100,", "lost=5"]
    assert "  valid: order" in lines
    assert lines.index("anomalies (3 of 5 shown):") + 3 < len(lines)
    assert "  delivery: lost p0-0 (enqueue=ok, deliveries=1)" in lines
    assert f"replay:  harness replay {FOLDER}" in lines
    assert f"explain: harness explain {FOLDER} p0-0" in lines


def test_unknown_is_not_a_pass() -> None:
    verdict = Verdict(verdict_data(None, ORDER, VACUITY), FOLDER)
    assert not verdict
    assert "vacuity   unknown  hit=0, missed=2 (fault(s) never hit anything)" in verdict.summary()
    assert bool(Verdict(verdict_data(True, ORDER), FOLDER))


def test_figures_are_flat_for_junit_properties() -> None:
    figures = Verdict(verdict_data(False, DELIVERY), FOLDER).figures()
    assert figures["delivery.lost"] == 5
    assert figures["delivery.valid"] == "INVALID"
    assert figures["throughput.per_second"] == 812.5
    assert figures["latency_ms.enqueue_to_start.p99"] == 9.0
    assert figures["run_folder"] == str(FOLDER)


def test_agent_errors_name_the_adapter_method_and_its_line(tmp_path: Path) -> None:
    trace = """Traceback (most recent call last):
  File "/venv/harness/agents/__main__.py", line 19, in main
    asyncio.run(run_consumer(args))
  File "/venv/harness/agents/consumer.py", line 52, in step
    batch = await self.adapter.consume(self.consumer, self.workload.read_count)
  File "/project/myq_adapter.py", line 41, in consume
    return [self._delivered(e) for e in entries]
  File "/project/myq_adapter.py", line 60, in _delivered
    tid=fields["tid"],
KeyError: 'tid'
"""
    (tmp_path / "agents.log").write_text(trace * 3 + "harness agent consumer-2#1: cannot load queue adapter 'x:y'\n")
    assert agent_errors(tmp_path) == [
        "the adapter's consume raised KeyError: 'tid' (myq_adapter.py:60) (x3)",
        "consumer-2#1: cannot load queue adapter 'x:y'",
    ]
    assert agent_errors(tmp_path / "nowhere") == []


def _report_of(promises: Promises, *checkers: dict[str, Any]) -> Report:
    run = RunOutcome("check_kills", 1, Verdict(verdict_data(False, *checkers), FOLDER))
    return Report("peer:x", "hosted", "X", "7.0.15", promises=promises, runs=[run], runs_skipped="")


def test_losses_of_a_queue_that_promises_no_at_least_once_delivery_are_as_declared() -> None:
    at_most_once = _report_of(Promises(delivery="at-most-once"), DELIVERY, ORDER)
    assert at_most_once.failing_beyond_promises(at_most_once.runs[0]) == []
    assert at_most_once.exit_code == 0


def test_losses_of_a_queue_that_promises_them_away_do_not_conform() -> None:
    at_least_once = _report_of(Promises(delivery="at-least-once"), DELIVERY, ORDER)
    assert at_least_once.failing_beyond_promises(at_least_once.runs[0]) == ["delivery"]
    assert at_least_once.exit_code == 1
