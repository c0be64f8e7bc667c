from __future__ import annotations

from pathlib import Path

from hdrh.histogram import HdrHistogram

from harness.checkers.index import HistoryIndex
from harness.report import plots
from harness.report.latency import latency_histograms, new_histogram
from harness.report.progress import Lag, Unseen, load_start_ns, realtime_lag, unseen_over_time
from harness.report.series import run_series
from tests.unit.report.histories import steady_history

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == PNG


def test_a_run_gets_its_plots(tmp_path: Path) -> None:
    history = steady_history()
    index = HistoryIndex.build(history)
    t0 = load_start_ns(index, history)
    progress = (unseen_over_time(index, t0), realtime_lag(index, history, t0))
    names = plots.write_run_plots(tmp_path, run_series(history), latency_histograms(history), "steady", progress)
    assert names == list(plots.RUN_PLOTS)
    assert all(_is_png(tmp_path / name) for name in names)
    # Without a history to follow tasks in (no journal), the four plots of the series alone.
    assert plots.write_run_plots(tmp_path, run_series(history), {}, "steady") == list(plots.RUN_PLOTS[:4])


def test_unseen_and_lag_draw_empty_runs_too(tmp_path: Path) -> None:
    series = run_series(steady_history(tasks=0, fault=None))
    plots.plot_unseen(Unseen(t_s=[], counts={"ready": [], "held": [], "delayed": []}), series, tmp_path / "u.png", "")
    plots.plot_lag(Lag(), series, tmp_path / "l.png", "")
    assert _is_png(tmp_path / "u.png") and _is_png(tmp_path / "l.png")


def test_overlays_of_several_runs_and_empty_inputs_still_draw(tmp_path: Path) -> None:
    a, b = run_series(steady_history(), label="a"), run_series(steady_history(start_latency_ms=5), label="b")
    plots.plot_throughput([a, b], tmp_path / "t.png", "two runs")
    plots.plot_latency([a, b], tmp_path / "l.png", "two runs")
    plots.plot_depth([a, b], tmp_path / "d.png", "two runs")
    plots.plot_percentiles({"empty": {"enqueue_to_start": new_histogram()}}, tmp_path / "p.png", "no data")
    assert all(_is_png(tmp_path / n) for n in ("t.png", "l.png", "d.png", "p.png"))


def test_spectrum_runs_from_the_median_up_to_what_the_count_resolves() -> None:
    histogram = HdrHistogram(1, 3_600_000_000, 3)
    for us in range(1, 1001):
        histogram.record_value(us * 10)  # 10 us .. 10 ms
    nines, ms = plots.spectrum(histogram)
    assert nines[0] == 0.0 and nines[-1] == 3.0  # 1000 values resolve p99.9 and no further
    assert ms == sorted(ms)
    assert ms[-1] == histogram.get_max_value() / 1000
    assert plots.spectrum(new_histogram()) == ([], [])


def test_curves_and_bars(tmp_path: Path) -> None:
    points = [plots.CurvePoint(x, x * 0.99, 0.5, 1.0 + x / 1000, 2.0) for x in (500.0, 1000.0, 2000.0)]
    plots.plot_throughput_latency({"taskq": points}, tmp_path / "c.png", "sweep", {"taskq": 1000.0})
    plots.plot_scaling({"taskq": [plots.CurvePoint(c, 1000.0 * c, None, None, None) for c in (1.0, 2.0)]},
                       tmp_path / "s.png", "scaling")  # fmt: skip
    plots.plot_bars({"taskq": 0.9, "raw": 1.0}, tmp_path / "b.png", "ratios", "x", line=0.8)
    assert all(_is_png(tmp_path / n) for n in ("c.png", "s.png", "b.png"))
