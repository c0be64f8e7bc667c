"""PNG plots of runs, drawn with matplotlib's Agg canvas (no display, no pyplot state).

Each function draws one or more runs into one file, so the same code serves a single
run's report and the overlays of `harness compare`:

    throughput.png    completed (and offered) tasks/s over time, fault windows shaded
    latency.png       enqueue-to-start p50/p99/max per bin over time (log scale), faults shaded
    percentiles.png   the latency percentile spectrum, p50 .. p99.99, from HDR histograms
    depth.png         ready, pending and delayed tasks over time, faults shaded
    unseen.png        tasks enqueued ok and not yet completed: ready, held, delayed (stacked)
    lag.png           realtime lag per consumer: how far behind the newest enqueue its reads were

and for benchmarks the throughput-latency curve and the scaling curve.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hdrh.histogram import HdrHistogram
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from harness.report.progress import UNSEEN_STATES, Lag, Unseen
from harness.report.series import FaultWindow, RunSeries

SIZE_IN = (9.0, 4.2)
DPI = 100
FAULT_COLOR = "#d62728"
SPECTRUM_NINES = (0.30103, 1.0, 2.0, 3.0, 4.0)  # p50, p90, p99, p99.9, p99.99 on the "nines" axis
LATENCY_NAMES = {
    "enqueue_to_start": "enqueue to start",
    "enqueue_to_complete": "enqueue to complete",
    "start_to_complete": "start to complete",
}
RUN_PLOTS = ("throughput.png", "latency.png", "percentiles.png", "depth.png", "unseen.png", "lag.png")
UNSEEN_COLORS = {"ready": "#1f77b4", "held": "#ff7f0e", "delayed": "#9467bd"}
UNSEEN_LABELS = {"ready": "ready (not delivered yet)", "held": "held (delivered, not settled)",
                 "delayed": "delayed (failed, retry due)"}  # fmt: skip


def _figure() -> tuple[Figure, Axes]:
    figure = Figure(figsize=SIZE_IN, dpi=DPI, layout="constrained")
    return figure, figure.add_subplot()


def _save(figure: Figure, path: Path) -> str:
    figure.savefig(path, format="png")
    return path.name


def _shade_faults(ax: Axes, faults: Sequence[FaultWindow]) -> None:
    for n, fault in enumerate(faults):
        ax.axvspan(
            fault.start_s,
            max(fault.end_s, fault.start_s + 0.02),
            color=FAULT_COLOR,
            alpha=0.15,
            lw=0,
            label="fault" if n == 0 else None,
        )


def _mark_phases(ax: Axes, phases: dict[str, float]) -> None:
    for name in ("heal", "drain"):
        if name in phases:
            ax.axvline(phases[name], color="grey", lw=0.8, ls=":")
            ax.annotate(name, (phases[name], 1.0), xycoords=("data", "axes fraction"), fontsize=7, color="grey",
                        ha="left", va="top", rotation=90)  # fmt: skip


def _finish(ax: Axes, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(fontsize=8, loc="best")


def plot_throughput(runs: Sequence[RunSeries], path: Path, title: str) -> str:
    figure, ax = _figure()
    single = len(runs) == 1
    for run in runs:
        label = "completed" if single else run.label
        ax.step(run.bin_start_s, run.completed_per_s, where="post", label=label, lw=1.2)
        if single:
            ax.step(run.bin_start_s, run.offered_per_s, where="post", label="offered (due)", lw=0.9, ls="--")
    if single:
        _shade_faults(ax, runs[0].faults)
        _mark_phases(ax, runs[0].phases_s)
    _finish(ax, title, "seconds since load start", f"tasks/s ({runs[0].bin_s:g} s bins)" if runs else "tasks/s")
    return _save(figure, path)


def plot_latency(runs: Sequence[RunSeries], path: Path, title: str, name: str = "enqueue_to_start") -> str:
    figure, ax = _figure()
    single = len(runs) == 1
    for run in runs:
        stats = run.latency_ms.get(name, {})
        shown = ("p50", "p99", "max") if single else ("p99",)
        for stat in shown:
            values = [math.nan if v is None else v for v in stats.get(stat, [])]
            if values:
                label = stat if single else f"{run.label} {stat}"
                ax.step(run.bin_start_s[: len(values)], values, where="post", label=label, lw=1.0)
    if single:
        _shade_faults(ax, runs[0].faults)
        _mark_phases(ax, runs[0].phases_s)
    ax.set_yscale("log")
    _finish(ax, title, "due time, seconds since load start", f"{LATENCY_NAMES.get(name, name)} (ms)")
    return _save(figure, path)


def spectrum(histogram: HdrHistogram, points: int = 160) -> tuple[list[float], list[float]]:
    """(nines, ms): the latency at percentiles from p0 to the last one the count resolves."""
    count = histogram.get_total_count()
    if count == 0:
        return [], []
    top = min(5.0, math.log10(count)) if count > 1 else 0.0
    xs, ys = [], []
    for i in range(points + 1):
        nines = top * i / points
        percentile = 100.0 * (1.0 - 10.0**-nines)
        xs.append(nines)
        ys.append(histogram.get_value_at_percentile(percentile) / 1000)
    xs.append(top)
    ys.append(histogram.get_max_value() / 1000)
    return xs, ys


def plot_percentiles(runs: dict[str, dict[str, HdrHistogram]], path: Path, title: str) -> str:
    """One line per run and latency kind: the latency (log) at each percentile (nines scale)."""
    figure, ax = _figure()
    for label, histograms in runs.items():
        for name, histogram in histograms.items():
            xs, ys = spectrum(histogram)
            if xs:
                shown = LATENCY_NAMES.get(name, name)
                ax.plot(xs, ys, lw=1.2, label=shown if len(runs) == 1 else f"{label}: {shown}")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(FixedLocator(list(SPECTRUM_NINES)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"p{100 * (1 - 10**-x):.4g}"))
    _finish(ax, title, "percentile", "latency (ms)")
    return _save(figure, path)


def plot_depth(runs: Sequence[RunSeries], path: Path, title: str) -> str:
    figure, ax = _figure()
    single = len(runs) == 1
    for run in runs:
        if single:
            for name in ("ready", "pending", "delayed"):
                ax.plot(run.depth_t_s, run.depth.get(name, []), label=name, lw=1.0)
        else:
            total = [r + p for r, p in zip(run.depth.get("ready", []), run.depth.get("pending", []), strict=False)]
            ax.plot(run.depth_t_s[: len(total)], total, label=f"{run.label} ready+pending", lw=1.0)
    if single:
        _shade_faults(ax, runs[0].faults)
        _mark_phases(ax, runs[0].phases_s)
    _finish(ax, title, "seconds since load start", "tasks")
    return _save(figure, path)


def plot_unseen(unseen: Unseen, series: RunSeries, path: Path, title: str) -> str:
    """Stacked: tasks enqueued ok and not yet completed, by where they were."""
    figure, ax = _figure()
    labels = [UNSEEN_LABELS[state] for state in UNSEEN_STATES]
    ax.stackplot(unseen.t_s, *(unseen.counts[state] for state in UNSEEN_STATES), labels=labels,
                 colors=[UNSEEN_COLORS[state] for state in UNSEEN_STATES], alpha=0.8, lw=0)  # fmt: skip
    _shade_faults(ax, series.faults)
    _mark_phases(ax, series.phases_s)
    ax.set_ylim(bottom=0)
    _finish(ax, title, "seconds since load start", "unseen tasks (enqueued, not completed)")
    return _save(figure, path)


def plot_lag(lag: Lag, series: RunSeries, path: Path, title: str) -> str:
    """Realtime lag of each read, one line per consumer slot (Jepsen's kafka realtime-lag plot)."""
    figure, ax = _figure()
    for slot in sorted(lag.t_s, key=_slot_order):
        ax.plot(lag.t_s[slot], lag.lag_s[slot], lw=0.8, marker=".", ms=2.5, label=slot)
    _shade_faults(ax, series.faults)
    _mark_phases(ax, series.phases_s)
    ax.set_xlim(left=0)  # the same origin as the other plots: the load phase's start
    ax.set_ylim(bottom=0)
    _finish(ax, title, "seconds since load start (read invoked)", "lag (s)")
    return _save(figure, path)


def _slot_order(slot: str) -> tuple[str, int]:
    name, _, number = slot.rpartition("-")
    return (name, int(number)) if number.isdigit() else (slot, 0)


def write_run_plots(
    folder: Path,
    series: RunSeries,
    histograms: dict[str, HdrHistogram],
    title: str,
    progress: tuple[Unseen, Lag] | None = None,
) -> list[str]:
    """The plots of one run, into its folder; returns their file names."""
    drawn = [
        plot_throughput([series], folder / "throughput.png", f"throughput: {title}"),
        plot_latency([series], folder / "latency.png", f"enqueue-to-start latency over time: {title}"),
        plot_percentiles({title: histograms}, folder / "percentiles.png", f"latency percentiles: {title}"),
        plot_depth([series], folder / "depth.png", f"queue depth: {title}"),
    ]
    if progress is not None:
        unseen, lag = progress
        drawn.append(plot_unseen(unseen, series, folder / "unseen.png", f"unseen tasks: {title}"))
        drawn.append(plot_lag(lag, series, folder / "lag.png", f"realtime lag per consumer: {title}"))
    return drawn


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """One run of a sweep: the x it was run at and what it gave."""

    x: float
    throughput: float
    p50_ms: float | None
    p99_ms: float | None
    p999_ms: float | None


def plot_throughput_latency(
    curves: dict[str, list[CurvePoint]], path: Path, title: str, knees: dict[str, float | None] | None = None
) -> str:
    """Latency (log) against achieved throughput, one line per queue; the knee marked."""
    figure, ax = _figure()
    for label, points in curves.items():
        xs = [p.throughput for p in points]
        for stat, style in (("p99_ms", "-o"), ("p50_ms", "--.")):
            ys = [math.nan if getattr(p, stat) is None else getattr(p, stat) for p in points]
            ax.plot(xs, ys, style, lw=1.2, ms=4, label=f"{label} {stat.removesuffix('_ms')}")
        knee = (knees or {}).get(label)
        if knee is not None:
            point = next(p for p in points if p.x == knee)
            ax.annotate(f"knee {knee:g}/s", (point.throughput, point.p99_ms or 0), fontsize=8,
                        xytext=(5, 10), textcoords="offset points", arrowprops={"arrowstyle": "->"})  # fmt: skip
    ax.set_yscale("log")
    _finish(ax, title, "achieved throughput (tasks/s)", "enqueue-to-start latency (ms)")
    return _save(figure, path)


def plot_scaling(curves: dict[str, list[CurvePoint]], path: Path, title: str) -> str:
    """Throughput against the number of consumer processes, one line per queue, with linear scaling."""
    figure, ax = _figure()
    for label, points in curves.items():
        line = ax.plot([p.x for p in points], [p.throughput for p in points], "-o", lw=1.2, ms=4, label=label)
        if points:
            first = points[0]
            ideal = [first.throughput * p.x / first.x for p in points]
            ax.plot([p.x for p in points], ideal, ":", lw=0.8, color=line[0].get_color(), label=f"{label} linear")
    ax.set_xticks(sorted({p.x for points in curves.values() for p in points}))
    _finish(ax, title, "consumer processes", "throughput (tasks/s)")
    return _save(figure, path)


def plot_bars(values: dict[str, float], path: Path, title: str, ylabel: str, *, line: float | None = None) -> str:
    """One bar per label (e.g. a gate's ratios), with an optional reference line."""
    figure, ax = _figure()
    labels = list(values)
    ax.bar(range(len(labels)), [values[k] for k in labels], color="#1f77b4")
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=8)
    if line is not None:
        ax.axhline(line, color=FAULT_COLOR, ls="--", lw=1.0)
    _finish(ax, title, "", ylabel)
    return _save(figure, path)
