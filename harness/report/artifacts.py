"""Everything a run folder holds for people besides verdict.json: series.json and
histograms.json (what the plots and `harness compare` read), the PNG plots, report.md
and report.html. A plot that cannot be drawn is noted in the reports; it never costs
the run its verdict."""

from __future__ import annotations

import json
import traceback
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from harness.history import Op
from harness.report.html import write_html
from harness.report.latency import LATENCIES, TaskTimes
from harness.report.markdown import write_report
from harness.report.series import RunSeries, run_series

HISTOGRAMS_FILE = "histograms.json"


def run_label(verdict: dict[str, Any]) -> str:
    return f"{verdict['scenario']} seed {verdict['seed']} on {verdict['queue']}"


def save_histograms(folder: Path, histograms: dict[str, HdrHistogram], source: str) -> None:
    encoded = {name: h.encode().decode() for name, h in histograms.items()}
    (folder / HISTOGRAMS_FILE).write_text(json.dumps({"source": source, "histograms": encoded}))


def load_histograms(folder: Path) -> dict[str, HdrHistogram]:
    path = folder / HISTOGRAMS_FILE
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {name: HdrHistogram.decode(text.encode()) for name, text in data["histograms"].items()}


def write_artifacts(
    folder: Path,
    verdict: dict[str, Any],
    history: list[Op],
    histograms: dict[str, HdrHistogram],
    times: TaskTimes | None = None,
) -> list[str]:
    """Write series, histograms, plots and both reports; returns the plots' file names."""
    label = run_label(verdict)
    series = run_series(history, label=label, times=times)
    series.save(folder)
    latency = {k: h for k, h in histograms.items() if k in LATENCIES}
    save_histograms(folder, latency, verdict.get("latency_source", "history"))
    plots, problem = _plots(folder, series, latency, label, journaled=verdict.get("journaling", True))
    write_report(folder, verdict, plots, problem)
    write_html(folder, verdict, plots, problem)
    return plots


def _plots(
    folder: Path, series: RunSeries, histograms: dict[str, HdrHistogram], label: str, *, journaled: bool
) -> tuple[list[str], str | None]:
    try:
        from harness.report import plots  # noqa: PLC0415 - matplotlib loads only when drawing

        if journaled:
            return plots.write_run_plots(folder, series, histograms, label), None
        return [
            plots.plot_percentiles({label: histograms}, folder / "percentiles.png", f"latency percentiles: {label}"),
            plots.plot_depth([series], folder / "depth.png", f"queue depth: {label}"),
        ], None
    except Exception as exc:  # a plot is never worth the verdict
        (folder / "plots-error.txt").write_text(traceback.format_exc())
        return [], f"plots could not be drawn ({type(exc).__name__}: {exc}); see plots-error.txt"
