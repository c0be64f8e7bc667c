"""Everything a run folder holds for people besides verdict.json: series.json and
histograms.json (what the plots and `harness compare` read), the PNG plots, report.md
and report.html; and the trail from the verdict to the race: timeline.html and, for each
task an anomaly names, its story (explain/TID.txt, what `harness explain` prints). A plot
or a trail that cannot be drawn is noted in the reports; it never costs the run its verdict."""

from __future__ import annotations

import json
import traceback
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from harness.checkers.base import validity_label
from harness.checkers.index import HistoryIndex, paused_gc
from harness.history import Op
from harness.report.explain import Trail, anomaly_tids, command, naming, write_stories
from harness.report.html import write_html
from harness.report.latency import LATENCIES, TaskTimes
from harness.report.markdown import write_report
from harness.report.progress import Lag, Unseen, load_start_ns, realtime_lag, unseen_over_time
from harness.report.series import RunSeries, run_series
from harness.report.timeline import Selection, bars, fault_bands, select, spans, task_times
from harness.report.timeline_html import Page, write_timeline

HISTOGRAMS_FILE = "histograms.json"
# Tasks an anomaly names that get a story file (the reports show the first 30 anomalies).
MAX_STORIES = 40


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
    """Write series, histograms, plots, the trail and both reports; returns the plots' file names.
    Sets verdict["trail"] (the timeline's and the stories' file names) when the trail was drawn."""
    label = run_label(verdict)
    journaled = verdict.get("journaling", True)
    series = run_series(history, label=label, times=times)
    series.save(folder)
    latency = {k: h for k, h in histograms.items() if k in LATENCIES}
    save_histograms(folder, latency, verdict.get("latency_source", "history"))
    index = HistoryIndex.build(history) if journaled else None
    # Millions of small tuples and no cycles: the collector would walk the whole history again and again.
    with paused_gc():
        trail, trail_problem = _trail(folder, verdict, history, index) if index is not None else (None, None)
        progress = _progress(folder, history, index) if index is not None else None
    plots, problem = _plots(folder, series, latency, label, journaled=journaled, progress=progress)
    problem = "; ".join(p for p in (problem, trail_problem) if p) or None
    if trail is not None:
        verdict["trail"] = {"timeline": trail.timeline, "stories": trail.stories}
    write_report(folder, verdict, plots, problem, trail)
    write_html(folder, verdict, plots, problem, trail)
    return plots


def anomalous_tasks(verdict: dict[str, Any], index: HistoryIndex, limit: int = MAX_STORIES) -> dict[str, list[str]]:
    """Task -> "checker: kind" labels, for the tasks the verdict's anomaly examples name, in their order."""
    known = _KnownTasks(index)
    found: dict[str, list[str]] = {}
    for checker in verdict.get("checkers") or ():
        for anomaly in checker.get("anomalies") or ():
            for tid in anomaly_tids(anomaly, known):
                if tid in found or len(found) < limit:
                    label = f"{checker['name']}: {anomaly.get('kind', 'anomaly')}"
                    labels = found.setdefault(tid, [])
                    labels.extend([label] if label not in labels else [])
    return found


class _KnownTasks:
    """`tid in known`: a task of the history (enqueued, delivered, completed or failed)."""

    def __init__(self, index: HistoryIndex) -> None:
        self._index = index

    def __contains__(self, tid: object) -> bool:
        index = self._index
        return isinstance(tid, str) and any(tid in table for table in (index.enqueues, index.deliveries,
                                                                       index.completions, index.failures))  # fmt: skip


def _trail(
    folder: Path, verdict: dict[str, Any], history: list[Op], index: HistoryIndex
) -> tuple[Trail | None, str | None]:
    try:
        anomalous = anomalous_tasks(verdict, index)
        stories = write_stories(folder, index, history, anomalous, verdict)
        operations, bands = spans(history), fault_bands(index)
        chosen = select(operations, bands, task_times(index, anomalous), tasks=len(anomalous))
        drawn = Selection(kept=bars(chosen.kept, index), total=chosen.total, windows=chosen.windows, note=chosen.note)
        page = Page(
            title=f"timeline: {run_label(verdict)}",
            verdict=validity_label(verdict.get("valid")),
            t0_ns=load_start_ns(index, history),
            phases=dict(index.phases),
            anomalous={tid: naming(verdict, tid) or labels for tid, labels in anomalous.items()},
            stories=stories,
            explain_command=command(folder, "TID"),
        )
        timeline = write_timeline(folder, drawn, [op.invoke_ns for op in operations], bands, page)
        return Trail(folder=str(folder), stories=stories, timeline=timeline), None
    except Exception as exc:  # the trail is never worth the verdict
        (folder / "trail-error.txt").write_text(traceback.format_exc())
        return (
            None,
            f"the timeline and task stories could not be written ({type(exc).__name__}: {exc}); see trail-error.txt",
        )


def _progress(folder: Path, history: list[Op], index: HistoryIndex) -> tuple[Unseen, Lag] | None:
    """The unseen and lag series, or None (and progress-error.txt) when they cannot be computed."""
    try:
        t0 = load_start_ns(index, history)
        return unseen_over_time(index, t0), realtime_lag(index, history, t0)
    except Exception:  # a plot is never worth the verdict; the plots note the missing ones
        (folder / "progress-error.txt").write_text(traceback.format_exc())
        return None


def _plots(
    folder: Path,
    series: RunSeries,
    histograms: dict[str, HdrHistogram],
    label: str,
    *,
    journaled: bool,
    progress: tuple[Unseen, Lag] | None = None,
) -> tuple[list[str], str | None]:
    try:
        from harness.report import plots  # noqa: PLC0415 - matplotlib loads only when drawing

        if journaled:
            return plots.write_run_plots(folder, series, histograms, label, progress), None
        return [
            plots.plot_percentiles({label: histograms}, folder / "percentiles.png", f"latency percentiles: {label}"),
            plots.plot_depth([series], folder / "depth.png", f"queue depth: {label}"),
        ], None
    except Exception as exc:  # a plot is never worth the verdict
        (folder / "plots-error.txt").write_text(traceback.format_exc())
        return [], f"plots could not be drawn ({type(exc).__name__}: {exc}); see plots-error.txt"
