from __future__ import annotations

from pathlib import Path

import pytest

from harness.report.series import RunSeries, bin_width, run_series
from tests.unit.report.histories import steady_history


@pytest.mark.parametrize(("span_s", "width"), [(1.0, 0.05), (10.0, 0.1), (30.0, 0.2), (60.0, 0.5), (3600.0, 30.0)])
def test_bin_width_is_round_and_gives_at_most_150_bins(span_s: float, width: float) -> None:
    assert bin_width(span_s) == width


def test_rates_count_offered_and_completed_tasks_per_second() -> None:
    series = run_series(steady_history(tasks=100, rate=100.0))
    assert series.bin_s == 0.05
    assert sum(r * series.bin_s for r in series.offered_per_s) == pytest.approx(100)
    assert sum(r * series.bin_s for r in series.completed_per_s) == pytest.approx(100)
    assert max(series.offered_per_s) == pytest.approx(100.0)  # 5 tasks due in each 50 ms bin


def test_latency_is_binned_by_due_time_with_percentiles_per_bin() -> None:
    series = run_series(steady_history(tasks=100, rate=100.0, start_latency_ms=2.0))
    p99 = [v for v in series.latency_ms["enqueue_to_start"]["p99"] if v is not None]
    assert p99 and all(v == pytest.approx(2.0) for v in p99)
    completes = [v for v in series.latency_ms["enqueue_to_complete"]["max"] if v is not None]
    assert all(v == pytest.approx(3.0) for v in completes)
    assert series.latency_ms["enqueue_to_start"]["p50"][-1] is None  # nothing due in the last bin


def test_depth_samples_and_fault_windows_and_phases() -> None:
    series = run_series(steady_history(fault=(0.3, 0.5)))
    assert series.depth_t_s[:3] == [0.0, 0.2, 0.4]
    assert series.depth["ready"][:3] == [0, 1, 2]
    assert [(f.kind, f.start_s, f.end_s) for f in series.faults] == [("kill", 0.3, 0.5)]
    assert series.phases_s["load"] == 0.0 and series.phases_s["drain"] > series.phases_s["heal"]


def test_a_fault_that_never_ended_lasts_to_the_end_of_the_run() -> None:
    history = [op for op in steady_history() if not (op["f"] == "fault" and op["type"] == "ok")]
    [window] = run_series(history).faults
    assert window.end_s > 1.0


def test_series_round_trips_through_its_file(tmp_path: Path) -> None:
    series = run_series(steady_history(), label="a run")
    series.save(tmp_path)
    loaded = RunSeries.load(tmp_path)
    assert loaded == series
    assert RunSeries.load(tmp_path / "missing") is None


def test_an_empty_history_gives_an_empty_series() -> None:
    series = run_series([])
    assert series.faults == [] and series.depth_t_s == []
    assert all(r == 0 for r in series.completed_per_s)
