"""A real short run leaves everything a person or CI reads: depth samples in the history, the agents'
own histograms, series, plots, report.md, report.html; and `harness compare` reads two such runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.history import read_history
from harness.report.plots import RUN_PLOTS

REPO = Path(__file__).resolve().parents[2]


def harness(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("runs")
    for queue in ("taskq", "raw"):
        done = harness("run", "latency", "--duration", "1", "--rate", "500", "--seed", "3", "--queue", queue,
                       "--out", str(out))  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
    return sorted(out.iterdir())


def test_a_run_folder_has_plots_and_both_reports(runs: list[Path]) -> None:
    for folder in runs:
        verdict = json.loads((folder / "verdict.json").read_text())
        assert verdict["plots"] == list(RUN_PLOTS)
        assert all((folder / name).stat().st_size > 1000 for name in RUN_PLOTS)
        assert "![" in (folder / "report.md").read_text()
        assert 'src="latency.png"' in (folder / "report.html").read_text()
        assert verdict["throughput"]["overall"]["completed"] == 500
        assert set(verdict["agents"]) == {"producer", "consumer", "redis-server", "total"}


def test_depth_is_sampled_into_the_history(runs: list[Path]) -> None:
    depth = [op for op in read_history(runs[0]) if op["f"] == "depth"]
    assert len(depth) >= 4 and all(op["process"] == "runner" and op["type"] == "ok" for op in depth)
    assert {"ready", "pending", "delayed", "dead"} <= depth[0]["value"].keys()
    series = json.loads((runs[0] / "series.json").read_text())
    assert len(series["depth_t_s"]) == len(depth)


def test_agents_histograms_agree_with_the_history(runs: list[Path]) -> None:
    from harness.agents.stats import merged_histograms, read_stats  # noqa: PLC0415

    for folder in runs:
        verdict = json.loads((folder / "verdict.json").read_text())
        merged = merged_histograms(read_stats(folder))["enqueue_to_start"]
        from_history = verdict["latency_ms"]["enqueue_to_start"]
        assert merged.get_total_count() == from_history["count"] == 500
        assert merged.get_max_value() / 1000 == pytest.approx(from_history["max"], rel=0.01)


def test_compare_reads_two_runs(runs: list[Path], tmp_path: Path) -> None:
    done = harness("compare", *map(str, runs), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "enqueue-to-start p99" in done.stdout
    assert {"compare.md", "compare.html", "percentiles.png"} <= {p.name for p in tmp_path.iterdir()}
