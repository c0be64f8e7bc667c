"""The gate's logic with fake runs: interleaving, ratios, repeats when unsure, outputs for CI."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

import harness.gate
from harness.gate import run_gate
from harness.gate.judge import Stored, save_stored
from harness.gate.outputs import summary_markdown, write_outputs
from harness.gate.suite import load_suite
from harness.scenario import Scenario
from tests.unit.gate.fakes import FakeRuns

SUITE = """
name = "mini"
repeat = 3
max_repeat = 5
baseline = "{baseline}"
[[case]]
name = "latency"
scenario = "latency"
compare_with = "raw"
metrics = [{{ figure = "enqueue_to_start.p50", better = "lower", tolerance = 0.5 }},
           {{ figure = "throughput", better = "higher", tolerance = 0.2 }}]
[[case]]
name = "faults"
scenario = "kill_workers"
"""


def suite(tmp_path: Path, stored: dict[str, float] | None = None) -> Any:
    baseline = tmp_path / "baseline.json"
    if stored is not None:
        from harness.gate.judge import judge_metric  # noqa: PLC0415
        from harness.gate.suite import Metric  # noqa: PLC0415

        verdicts = [judge_metric("latency", Metric(figure=k, better="higher", tolerance=0), [v, v, v], None, "x")
                    for k, v in stored.items()]  # fmt: skip
        save_stored(baseline, verdicts, {})
    path = tmp_path / "mini.toml"
    path.write_text(SUITE.format(baseline=baseline))
    return load_suite(str(path), tmp_path)


def fake(monkeypatch: pytest.MonkeyPatch, figures: Any) -> FakeRuns:
    runs = FakeRuns(figures)
    monkeypatch.setattr(harness.gate, "run_scenario", runs)
    return runs


def healthy(queue: str, scenario: Scenario, call: int) -> dict[str, Any]:
    return {"p50": 1.1 if queue == "taskq" else 1.0, "throughput": 900.0 if queue == "taskq" else 1000.0}


def test_cases_run_interleaved_and_figures_become_ratios(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = fake(monkeypatch, healthy)
    result = run_gate(suite(tmp_path, {"enqueue_to_start.p50": 1.1, "throughput": 0.9}), queue="taskq",
                      out=tmp_path / "out", status=lambda _: None)  # fmt: skip
    assert [q for name, q in runs.calls if name == "latency"] == ["taskq", "raw", "raw", "taskq", "taskq", "raw"]
    assert [q for name, q in runs.calls if name == "kill_workers"] == ["taskq"]
    by_figure = {m.figure: m for m in result.metrics}
    assert by_figure["throughput"].samples == [0.9, 0.9, 0.9]
    assert by_figure["enqueue_to_start.p50"].median == pytest.approx(1.1)
    assert result.passed


def test_a_slowdown_fails_the_gate_and_the_outputs_say_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(queue: str, scenario: Scenario, call: int) -> dict[str, Any]:
        return {"p50": 4.0 if queue != "raw" else 1.0}

    fake(monkeypatch, slow)
    result = run_gate(suite(tmp_path, {"enqueue_to_start.p50": 1.1, "throughput": 1.0}), queue="taskq-mutant:slow",
                      out=tmp_path / "out", status=lambda _: None)  # fmt: skip
    assert not result.passed
    write_outputs(result, junit=tmp_path / "junit.xml", summary=tmp_path / "summary.md")
    suite_xml = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite_xml is not None and int(suite_xml.get("failures", "0")) == 1
    failure = suite_xml.find("testcase/failure")
    assert failure is not None and "regression" in failure.get("message", "")
    summary = (tmp_path / "summary.md").read_text()
    assert "FAILED" in summary and "enqueue_to_start.p50 regression" in summary
    verdict = json.loads((result.folder / "verdict.json").read_text())
    assert verdict["passed"] is False and verdict["valid"] is True
    assert (result.folder / "report.html").exists()


def test_an_invalid_run_of_the_queue_fails_but_the_baseline_queue_is_not_on_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def raw_invalid(queue: str, scenario: Scenario, call: int) -> dict[str, Any]:
        return {**healthy(queue, scenario, call), "valid": queue != "raw"}

    fake(monkeypatch, raw_invalid)
    assert run_gate(suite(tmp_path), queue="taskq", out=tmp_path / "out", status=lambda _: None).passed

    def faults_invalid(queue: str, scenario: Scenario, call: int) -> dict[str, Any]:
        return {**healthy(queue, scenario, call), "valid": scenario.name != "kill_workers"}

    fake(monkeypatch, faults_invalid)
    result = run_gate(suite(tmp_path), queue="taskq", out=tmp_path / "out", status=lambda _: None)
    assert not result.passed
    assert "verdict INVALID" in summary_markdown(result)


@pytest.mark.parametrize(
    ("p50s", "runs_made", "passed"),
    [
        ([3.0, 0.5, 1.8, 1.0], 4, True),  # 2 of 3 past the limit: one more run, whose median is fine
        ([3.0, 0.5, 1.8, 1.9], 4, False),  # 3 of 4 past: a regression
        ([3.0, 0.5, 1.8, 1.4, 1.6], 5, False),  # still unsure at max_repeat: the median (1.6 > 1.5) decides
    ],
)
def test_unsure_figures_get_more_runs_up_to_max_repeat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, p50s: list[float], runs_made: int, passed: bool
) -> None:
    values = iter(p50s)  # taskq's p50 per repetition; raw stays at 1.0

    def noisy(queue: str, scenario: Scenario, call: int) -> dict[str, Any]:
        return {"p50": next(values) if queue == "taskq" and scenario.name == "latency" else 1.0}

    runs = fake(monkeypatch, noisy)
    result = run_gate(suite(tmp_path, {"enqueue_to_start.p50": 1.0, "throughput": 1.0}), queue="taskq",
                      out=tmp_path / "out", status=lambda _: None)  # fmt: skip
    assert len([c for c in runs.calls if c == ("latency", "taskq")]) == runs_made
    assert result.passed is passed


def test_without_a_stored_baseline_figures_are_recorded_and_can_be_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake(monkeypatch, healthy)
    chosen = suite(tmp_path)
    result = run_gate(chosen, queue="taskq", out=tmp_path / "out", status=lambda _: None, update_baseline=True)
    assert result.passed and not result.baseline_found and result.baseline_updated
    stored = json.loads(chosen.baseline.read_text())["figures"]
    assert stored["latency/throughput"]["value"] == 0.9
    assert Stored(**stored["latency/enqueue_to_start.p50"]).runs == 3
