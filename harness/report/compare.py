"""`harness compare RUN_A RUN_B ...`: several runs side by side (two versions, two queues,
two Redis settings): one table of their figures, each also as a ratio of the first run,
and overlaid plots (throughput and p99 over time, percentile spectra, depth).

Reads only what each run folder already holds (verdict.json, series.json,
histograms.json), so comparing is quick however long the histories are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from harness.checkers.base import validity_label
from harness.errors import HistoryError
from harness.report.artifacts import load_histograms
from harness.report.html import figures_html, page, table
from harness.report.series import RunSeries

_START = ("p50", "p90", "p99", "p99.9", "p99.99", "max")
_COMPLETE = ("p50", "p99", "p99.9", "max")
# (row label, path into the verdict; "agents.ROLE" reads CPU per task)
FIGURES: tuple[tuple[str, str], ...] = (
    ("throughput, overall (tasks/s)", "throughput.overall.per_second"),
    ("throughput during load (tasks/s)", "throughput.per_second"),
    ("completed", "throughput.overall.completed"),
    *((f"enqueue-to-start {p} (ms)", f"latency_ms.enqueue_to_start.{p}") for p in _START),
    *((f"enqueue-to-complete {p} (ms)", f"latency_ms.enqueue_to_complete.{p}") for p in _COMPLETE),
    *((f"start-to-complete {p} (ms)", f"latency_ms.start_to_complete.{p}") for p in _COMPLETE),
    ("CPU per task, all processes (µs)", "agents.total.cpu_us_per_task"),
    ("producer CPU per task (µs)", "agents.producer.cpu_us_per_task"),
    ("consumer CPU per task (µs)", "agents.consumer.cpu_us_per_task"),
    ("faults applied", "faults.applied"),
    ("consumer restarts", "restarts"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ComparedRun:
    label: str
    folder: Path
    verdict: dict[str, Any]
    series: RunSeries | None
    histograms: dict[str, HdrHistogram]


def load_run(folder: Path) -> ComparedRun:
    path = folder / "verdict.json"
    if not path.exists():
        raise HistoryError(f"{folder} has no verdict.json: is it a finished run folder? (`harness check` judges one)")
    verdict = json.loads(path.read_text())
    label = f"{verdict['queue']} {verdict['scenario']} #{verdict['seed']}"
    series = RunSeries.load(folder)
    return ComparedRun(label, folder, verdict, series, load_histograms(folder))


def _unique_labels(runs: list[ComparedRun]) -> list[ComparedRun]:
    seen: dict[str, int] = {}
    unique = []
    for run in runs:
        seen[run.label] = seen.get(run.label, 0) + 1
        label = run.label if seen[run.label] == 1 else f"{run.label} ({seen[run.label]})"
        unique.append(ComparedRun(label, run.folder, run.verdict, run.series, run.histograms))
    return unique


def lookup(verdict: dict[str, Any], path: str) -> Any:
    value: Any = verdict
    for key in _split(path):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _split(path: str) -> list[str]:
    """Dotted path; a percentile's own dot ("p99.9") stays in its key."""
    parts = path.split(".")
    keys: list[str] = []
    for part in parts:
        if keys and part.isdigit() and keys[-1].startswith("p"):
            keys[-1] += "." + part
        else:
            keys.append(part)
    return keys


def figure_rows(runs: list[ComparedRun]) -> list[list[str]]:
    """Rows: figure, then per run its value and, after the first, "(x.xx of first)"."""
    rows = [["verdict", *(validity_label(r.verdict.get("valid")) for r in runs)]]
    for label, path in FIGURES:
        values = [lookup(r.verdict, path) for r in runs]
        if all(v is None for v in values):
            continue
        first = values[0]
        cells = [label]
        for n, value in enumerate(values):
            cell = "-" if value is None else _fmt(value)
            if n and isinstance(value, int | float) and isinstance(first, int | float) and first:
                cell += f" ({value / first:.2f}x)"
            cells.append(cell)
        rows.append(cells)
    return rows


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.3g}"
    return str(value)


@dataclass(frozen=True, slots=True)
class Comparison:
    folder: Path
    runs: list[ComparedRun]
    rows: list[list[str]]
    plots: list[str]


def compare_runs(folders: list[Path], out: Path) -> Comparison:
    """Write compare.md, compare.html, compare.json and the overlaid plots into `out`."""
    from harness.report import plots as draw  # noqa: PLC0415 - matplotlib loads only when drawing

    runs = _unique_labels([load_run(f) for f in folders])
    out.mkdir(parents=True, exist_ok=True)
    rows = figure_rows(runs)
    with_series = [r.series for r in runs if r.series is not None]
    for series, run in zip(with_series, [r for r in runs if r.series is not None], strict=True):
        series.label = run.label
    plots = []
    if with_series:
        plots += [
            draw.plot_throughput(with_series, out / "throughput.png", "throughput"),
            draw.plot_latency(with_series, out / "latency.png", "enqueue-to-start p99 over time"),
            draw.plot_depth(with_series, out / "depth.png", "ready + pending"),
        ]
    spectra = {r.label: r.histograms for r in runs if r.histograms}
    if spectra:
        plots.append(draw.plot_percentiles(spectra, out / "percentiles.png", "latency percentiles"))
    header = ["figure", *(r.label for r in runs)]
    folders_md = [f"- {r.label}: `{r.folder}`" for r in runs]
    md = ["# Comparison", "", *folders_md, "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    md += ["| " + " | ".join(row) + " |" for row in rows]
    md += ["", *(f"![{name}]({name})\n" for name in plots)]
    (out / "compare.md").write_text("\n".join(md) + "\n")
    links = "".join(f"<li>{escape(r.label)}: <code>{escape(str(r.folder))}</code></li>" for r in runs)
    body = f"<h1>Comparison</h1><ul>{links}</ul>" + table(header, rows) + figures_html(plots)
    (out / "compare.html").write_text(page("comparison", body))
    summary = {"runs": [{"label": r.label, "folder": str(r.folder)} for r in runs], "rows": rows, "plots": plots}
    (out / "compare.json").write_text(json.dumps(summary, indent=2))
    return Comparison(out, runs, rows, plots)
