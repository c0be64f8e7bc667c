from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import harness.bench.scenarios as scenarios
from harness.bench.scenarios import Point, bench_scaling, bench_sweep, bench_throughput, interleaved, knee, sweep_steps
from harness.report.benchmarks import write_bench_report
from harness.scenario import Scenario, load_scenario
from tests.unit.gate.fakes import FakeRuns


def point(rate: float, achieved: float, p50: float) -> Point:
    return Point(queue="q", x=rate, run="r", valid=True, throughput=achieved, p50_ms=p50, p99_ms=p50 * 20,
                 p999_ms=p50 * 30, send_lag_p99_ms=0.1)  # fmt: skip


def test_the_knee_is_the_last_rate_kept_up_with() -> None:
    steady = [point(500, 500, 1.0), point(1000, 999, 1.2), point(2000, 1990, 2.0)]
    assert knee(steady) == 2000  # never saturated within the sweep
    assert knee([*steady, point(4000, 3000, 2.0)]) == 2000  # fell behind the offered rate
    assert knee([*steady, point(4000, 4000, 50.0)]) == 2000  # kept the rate, but latency blew up
    assert knee([point(500, 100, 1.0)]) is None
    assert knee([]) is None


def test_queues_alternate_which_goes_first() -> None:
    assert [interleaved(["taskq", "raw"], step) for step in range(3)] == [
        ["taskq", "raw"], ["raw", "taskq"], ["taskq", "raw"]]  # fmt: skip


def test_sweep_steps_batch_tasks_per_call_above_what_a_producer_sends_comfortably() -> None:
    single = load_scenario("latency_single")
    steps = {rate: s for rate, s in sweep_steps(single, [1000, 2000, 8000])}
    assert [steps[r].run.rate for r in (1000, 2000, 8000)] == [1000, 2000, 8000]
    assert [steps[r].workload.enqueue_batch for r in (1000, 2000, 8000)] == [1, 1, 4]
    assert steps[8000].workload.read_count == single.workload.read_count
    batched = {rate: s for rate, s in sweep_steps(load_scenario("latency"), [1000, 40000])}
    assert [batched[r].workload.enqueue_batch for r in (1000, 40000)] == [10, 20]


def _fake(monkeypatch: pytest.MonkeyPatch, figures: Any) -> FakeRuns:
    runs = FakeRuns(figures)
    monkeypatch.setattr(scenarios, "run_scenario", runs)
    return runs


def test_throughput_bench_gives_medians_and_ratios(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake(monkeypatch, lambda q, s, n: {"throughput": 800.0 if q == "taskq" else 1000.0})
    bench = bench_throughput(load_scenario("throughput"), ["taskq", "raw"], repeat=3, seed=1, out=tmp_path,
                             status=lambda _: None)  # fmt: skip
    assert bench.summary["ratios"] == {"taskq": 0.8}
    assert bench.summary["paired_ratios"]["taskq"] == {"1": 0.8, "2": 0.8, "3": 0.8}
    plots = write_bench_report(bench, "harness bench throughput")
    assert plots == ["throughput.png"]
    assert {"bench.json", "report.md", "report.html"} <= {p.name for p in bench.folder.iterdir()}


def test_sweep_stops_once_every_queue_is_past_its_knee(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def saturating(queue: str, scenario: Scenario, call: int) -> dict[str, Any]:
        ceiling = 3000 if queue == "taskq" else 6000
        rate = scenario.run.rate
        return {"throughput": min(rate, ceiling), "p50": 1.0 if rate <= ceiling else 500.0}

    runs = _fake(monkeypatch, saturating)
    bench = bench_sweep(load_scenario("latency"), ["taskq", "raw"], rates=[1000, 2000, 4000, 8000, 16000, 32000],
                        seed=1, out=tmp_path, status=lambda _: None)  # fmt: skip
    assert bench.summary["knee_tasks_per_s"] == {"taskq": 2000, "raw": 4000}
    assert bench.summary["knee_ratios"] == {"taskq": 0.5}
    assert len(runs.calls) == 8  # 1000..8000 for both; 16000 and 32000 never run
    assert write_bench_report(bench, "harness bench sweep") == ["throughput-latency.png"]


def test_scaling_bench_runs_each_consumer_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake(monkeypatch, lambda q, s, n: {"throughput": 1000.0 * s.run.consumers})
    bench = bench_scaling(load_scenario("throughput"), ["taskq", "raw"], consumers=[1, 2, 4], seed=1, out=tmp_path,
                          status=lambda _: None)  # fmt: skip
    assert bench.summary["speedup"]["taskq"] == {"1": 1.0, "2": 2.0, "4": 4.0}
    assert write_bench_report(bench, "harness bench scaling") == ["scaling.png"]
