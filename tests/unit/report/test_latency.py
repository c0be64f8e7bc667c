from __future__ import annotations

from harness.report.latency import latency_histograms, overall_throughput, task_times
from tests.unit.report.histories import MS, T0, S, steady_history


def test_overall_throughput_runs_from_the_first_due_time_to_the_last_completion() -> None:
    history = steady_history(tasks=100, rate=100.0, start_latency_ms=2.0)  # first due at T0, last done ~0.993 s
    figures = overall_throughput(task_times(history), T0 - 5 * S)  # agents took 5 s to start: not counted
    assert figures["completed"] == 100
    assert figures["seconds"] == round((99 * S // 100 + 3 * MS) / 1e9, 3)
    assert 99 < figures["per_second"] < 101


def test_overall_throughput_of_nothing() -> None:
    assert overall_throughput(({}, {}, {}), T0) == {"completed": 0, "seconds": None, "per_second": 0.0}


def test_start_to_complete_is_the_settling_path_on_its_own() -> None:
    histograms = latency_histograms(steady_history(tasks=50, start_latency_ms=7.0))
    assert set(histograms) == {"enqueue_to_start", "enqueue_to_complete", "start_to_complete"}
    settle = histograms["start_to_complete"]
    assert settle.get_total_count() == 50
    assert settle.get_value_at_percentile(50) // 100 == 10  # 1 ms, whatever the queueing before it
    assert histograms["enqueue_to_start"].get_value_at_percentile(50) // 100 == 70
