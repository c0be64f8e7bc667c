from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import HistoryError
from harness.report.artifacts import save_histograms
from harness.report.compare import compare_runs, lookup
from harness.report.latency import latency_histograms
from harness.report.series import run_series
from tests.unit.report.histories import steady_history
from tests.unit.report.test_reports import verdict


def run_folder(root: Path, name: str, queue: str, per_second: float, latency_ms: float) -> Path:
    folder = root / name
    folder.mkdir()
    history = steady_history(start_latency_ms=latency_ms)
    figures = {"throughput": {"completed_during_load": 100, "per_second": per_second,
                              "overall": {"completed": 100, "seconds": 1.0, "per_second": per_second}}}  # fmt: skip
    (folder / "verdict.json").write_text(json.dumps(verdict(queue=queue, **figures)))
    run_series(history).save(folder)
    save_histograms(folder, latency_histograms(history), "history")
    return folder


def test_compare_writes_a_table_with_ratios_to_the_first_run_and_overlaid_plots(tmp_path: Path) -> None:
    a = run_folder(tmp_path, "a", "taskq", 900.0, 2.0)
    b = run_folder(tmp_path, "b", "raw", 1000.0, 1.0)
    comparison = compare_runs([a, b], tmp_path / "out")
    rows = {row[0]: row[1:] for row in comparison.rows}
    assert rows["throughput, overall (tasks/s)"] == ["900.0", "1,000.0 (1.11x)"]
    assert rows["verdict"] == ["valid", "valid"]
    assert set(comparison.plots) == {"throughput.png", "latency.png", "depth.png", "percentiles.png"}
    for name in ("compare.md", "compare.html", "compare.json", *comparison.plots):
        assert (tmp_path / "out" / name).exists()


def test_the_same_run_twice_gets_distinct_labels(tmp_path: Path) -> None:
    a = run_folder(tmp_path, "a", "taskq", 900.0, 2.0)
    comparison = compare_runs([a, a], tmp_path / "out")
    assert len({r.label for r in comparison.runs}) == 2


def test_a_folder_without_a_verdict_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match=r"no verdict\.json"):
        compare_runs([tmp_path], tmp_path / "out")


def test_lookup_keeps_a_percentiles_dot() -> None:
    assert lookup({"latency_ms": {"s": {"p99.9": 7}}}, "latency_ms.s.p99.9") == 7
    assert lookup({"a": 1}, "a.b") is None
