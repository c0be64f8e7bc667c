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


def test_a_valid_run_has_a_timeline_and_any_task_can_be_explained(runs: list[Path]) -> None:
    folder = runs[0]
    verdict = json.loads((folder / "verdict.json").read_text())
    assert verdict["trail"] == {"timeline": "timeline.html", "stories": {}}  # nothing anomalous: no story written
    assert "enqueue" in (folder / "timeline.html").read_text()
    tid = next(op["value"]["tasks"][0][0] for op in read_history(folder) if op["f"] == "enqueue")
    done = harness("explain", str(folder), tid)
    assert done.returncode == 0, done.stderr
    assert "enqueue" in done.stdout and "complete: accepted" in done.stdout
    assert "final state: gone from the queue" in done.stdout and "anomalies naming it: none" in done.stdout


def test_an_invalid_run_links_every_anomaly_to_its_tasks_story(tmp_path: Path) -> None:
    done = harness("run", "steady", "--duration", "1", "--rate", "200", "--seed", "3", "--drain-timeout", "3",
                   "--queue", "taskq-mutant:no-delete", "--out", str(tmp_path))  # fmt: skip
    assert done.returncode == 1, done.stderr[-3000:]
    [folder] = tmp_path.iterdir()
    verdict = json.loads((folder / "verdict.json").read_text())
    stories = verdict["trail"]["stories"]
    leaks = next(c for c in verdict["checkers"] if c["name"] == "leaks")
    named = [a["tid"] for a in leaks["anomalies"]]
    assert named and set(named) <= set(stories)
    report, page = (folder / "report.md").read_text(), (folder / "report.html").read_text()
    for tid in named:
        assert f"[`harness explain {folder} {tid}`](explain/{tid}.txt)" in report
        assert f'href="explain/{tid}.txt"' in page
        told = harness("explain", str(folder), tid)
        assert told.returncode == 0 and told.stdout == (folder / stories[tid]).read_text()
        assert "final state: acked but its entry never deleted" in told.stdout
        assert "leaks: acked_not_deleted" in told.stdout
    assert 'href="timeline.html"' in page and f'id="task-{named[0]}"' in (folder / "timeline.html").read_text()
    unknown = harness("explain", str(folder), "no-such-task")
    assert unknown.returncode == 2 and unknown.stderr.startswith("harness: task 'no-such-task' is not in the history")
