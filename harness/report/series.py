"""Time series of a run, from its history: what the plots draw and `harness compare` overlays.

Times are seconds from the start of the load phase. Throughput and latency are put in
bins (about BINS of them over the run, at a round width); latency is binned by the
task's due time, so a stall shows where it began (the tasks that arrived during it
waited), under the fault window that caused it. Depth comes from the runner's samples
(f="depth"). Written as series.json beside the verdict; pure apart from that write.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.history import INVOKE, Op, pair_operations
from harness.report.latency import TaskTimes, task_times

BINS = 150
NICE_BIN_S = (0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
SERIES_FILE = "series.json"
DEPTH_FIELDS = ("ready", "pending", "delayed", "dead")
BIN_PERCENTILES = (50.0, 99.0)


@dataclass(frozen=True, kw_only=True, slots=True)
class FaultWindow:
    kind: str
    target: str
    start_s: float
    end_s: float


@dataclass(kw_only=True, slots=True)
class RunSeries:
    """Everything over time; lists of equal length per group (bins, depth samples)."""

    label: str = ""
    bin_s: float = 1.0
    bin_start_s: list[float] = field(default_factory=list)
    offered_per_s: list[float] = field(default_factory=list)
    completed_per_s: list[float] = field(default_factory=list)
    # latency name -> statistic ("p50", "p99", "max") -> ms per bin (None: no task due in the bin)
    latency_ms: dict[str, dict[str, list[float | None]]] = field(default_factory=dict)
    depth_t_s: list[float] = field(default_factory=list)
    depth: dict[str, list[int]] = field(default_factory=dict)
    faults: list[FaultWindow] = field(default_factory=list)
    phases_s: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSeries:
        values = dict(data)
        values["faults"] = [FaultWindow(**f) for f in values.get("faults", [])]
        return cls(**values)

    def save(self, folder: Path) -> None:
        (folder / SERIES_FILE).write_text(json.dumps(self.as_dict()))

    @classmethod
    def load(cls, folder: Path) -> RunSeries | None:
        path = folder / SERIES_FILE
        return cls.from_dict(json.loads(path.read_text())) if path.exists() else None


def bin_width(span_s: float, bins: int = BINS) -> float:
    """The smallest round width that cuts `span_s` into at most `bins` bins."""
    return next((w for w in NICE_BIN_S if span_s / w <= bins), NICE_BIN_S[-1])


def run_series(history: list[Op], label: str = "", times: TaskTimes | None = None) -> RunSeries:
    phases: dict[str, int] = {op["value"]["name"]: op["time_ns"] for op in history if op["f"] == "phase"}
    first, last = (history[0]["time_ns"], history[-1]["time_ns"]) if history else (0, 0)
    t0 = phases.get("load", first)
    end = phases.get("final", last)
    span_s = max(1e-3, (end - t0) / 1e9)
    width = bin_width(span_s)
    count = int(span_s / width) + 1
    due, started, completed = times or task_times(history)
    series = RunSeries(
        label=label,
        bin_s=width,
        bin_start_s=[round(i * width, 6) for i in range(count)],
        offered_per_s=_rate(list(due.values()), t0, width, count),
        completed_per_s=_rate(list(completed.values()), t0, width, count),
        phases_s={name: round((t - t0) / 1e9, 6) for name, t in phases.items()},
    )
    for name, ends in (("enqueue_to_start", started), ("enqueue_to_complete", completed)):
        series.latency_ms[name] = _latency_by_bin(due, ends, t0, width, count)
    _depth(history, t0, series)
    series.faults = _faults(history, t0, span_s)
    return series


def _bins(times_ns: np.ndarray[Any, np.dtype[np.int64]], t0: int, width: float, count: int) -> Any:
    """Bin index of each time: integer nanoseconds, so a time on a bin edge falls in the later bin."""
    return np.clip((times_ns - t0) // round(width * 1e9), 0, count - 1)


def _rate(times_ns: list[int], t0: int, width: float, count: int) -> list[float]:
    if not times_ns:
        return [0.0] * count
    bins = _bins(np.asarray(times_ns, dtype=np.int64), t0, width, count)
    return [round(float(n) / width, 3) for n in np.bincount(bins, minlength=count)]


def _latency_by_bin(
    due: dict[str, int], ends: dict[str, int], t0: int, width: float, count: int
) -> dict[str, list[float | None]]:
    pairs = [(due[tid], end) for tid, end in ends.items() if tid in due]
    stats: dict[str, list[float | None]] = {f"p{p:g}": [None] * count for p in BIN_PERCENTILES}
    stats["max"] = [None] * count
    if not pairs:
        return stats
    array = np.asarray(pairs, dtype=np.int64)
    bins = _bins(array[:, 0], t0, width, count)
    latency_ms = np.maximum(array[:, 1] - array[:, 0], 0) / 1e6
    order = np.argsort(bins, kind="stable")
    bins, latency_ms = bins[order], latency_ms[order]
    present, starts = np.unique(bins, return_index=True)
    for b, group in zip(present, np.split(latency_ms, starts[1:]), strict=True):
        for p in BIN_PERCENTILES:
            stats[f"p{p:g}"][int(b)] = round(float(np.percentile(group, p)), 4)
        stats["max"][int(b)] = round(float(group.max()), 4)
    return stats


def _depth(history: list[Op], t0: int, series: RunSeries) -> None:
    series.depth = {name: [] for name in DEPTH_FIELDS}
    for op in history:
        if op["f"] == "depth" and op["process"] == "runner":
            value = op["value"] or {}
            series.depth_t_s.append(round((op["time_ns"] - t0) / 1e9, 4))
            for name in DEPTH_FIELDS:
                series.depth[name].append(int(value.get(name, 0)))


def _faults(history: list[Op], t0: int, span_s: float) -> list[FaultWindow]:
    windows = []
    for invoke, done in pair_operations([op for op in history if op["f"] == "fault"]):
        if invoke["type"] != INVOKE:
            continue
        value = invoke.get("value") or {}
        end_s = (done["time_ns"] - t0) / 1e9 if done is not None else span_s
        windows.append(
            FaultWindow(
                kind=str(value.get("kind", "?")),
                target=str(value.get("target", "?")),
                start_s=round((invoke["time_ns"] - t0) / 1e9, 4),
                end_s=round(end_s, 4),
            )
        )
    return windows
