"""timeline.html: what every process did, and when, after Jepsen's timeline: which operations to show.

One lane per process; each operation a bar from its invoke to its outcome, coloured ok, fail or
info (no answer); fault windows as bands across the lanes; the operations of anomalous tasks
outlined. Time runs down the page in event order (each invoke and each answer a row), so a race
between two processes reads top to bottom whatever the durations; the gutter gives the times.

A long run is cut to at most MAX_OPS operations: the windows around each fault and around each
operation of an anomalous task are kept (margins shrink until they fit), and the page says what
was cut and where. This module picks the operations (pure); harness.report.timeline_html draws them.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from harness.checkers.index import HistoryIndex
from harness.history import INVOKE, Op, pair_operations

MAX_OPS: Final = 2500
FAULT_MARGIN_S: Final = 0.5
ANOMALY_MARGIN_S: Final = 0.25
_NOT_LANES: Final = ("runner", "nemesis")
_NOT_OPERATIONS: Final = frozenset({"fault", "phase", "depth", "final", "exit"})


@dataclass(frozen=True, slots=True)
class Bar:
    """One operation of one process."""

    process: str
    f: str
    outcome: str  # ok / fail / info (no answer)
    invoke_ns: int
    done_ns: int | None
    tids: tuple[str, ...]
    detail: str  # what the hover shows besides process, f and times


@dataclass(frozen=True, slots=True)
class Band:
    label: str
    start_ns: int
    end_ns: int


@dataclass(slots=True)
class Selection:
    """The operations to draw, and what was left out."""

    bars: list[Bar]
    total: int
    windows: list[tuple[int, int]] = field(default_factory=list)  # kept time ranges, when cut
    note: str = ""  # what was cut, for the page


def operations(history: list[Op], index: HistoryIndex) -> list[Bar]:
    """Every agent operation with an invoke, in invoke order."""
    bars = []
    for invoke, done in pair_operations(history):
        if invoke["type"] != INVOKE or invoke["f"] in _NOT_OPERATIONS or invoke["process"].startswith(_NOT_LANES):
            continue
        tids, detail = _describe(invoke, done, index.aliases)
        outcome = "info" if done is None else str(done["type"])
        error = ((done or {}).get("value") or {}).get("error") if outcome != "ok" else None
        if error:
            detail += f"; error: {str(error)[:200]}"
        elif done is None:
            detail += "; no answer: its process died, or never heard back"
        bars.append(
            Bar(
                invoke["process"],
                str(invoke["f"]),
                outcome,
                invoke["time_ns"],
                None if done is None else done["time_ns"],
                tuple(tids),
                detail,
            )
        )
    return bars


def fault_bands(index: HistoryIndex) -> list[Band]:
    return [
        Band(
            f"{fault.kind} {fault.target}" + (" (not applied)" if fault.outcome == "info" else ""),
            fault.start_ns,
            index.fault_end_ns(fault),
        )
        for fault in index.faults
    ]


def select(bars: list[Bar], bands: list[Band], anomalous: Iterable[str], *, max_ops: int = MAX_OPS) -> Selection:
    """All the bars when they fit; else the windows around faults and anomalous tasks' operations."""
    if len(bars) <= max_ops:
        return Selection(bars=bars, total=len(bars))
    marked = set(anomalous)
    anomaly_times = sorted(t for bar in bars if marked.intersection(bar.tids) for t in _ends(bar))
    fault_margin, anomaly_margin = FAULT_MARGIN_S, ANOMALY_MARGIN_S
    while True:
        windows = _merge(
            [(b.start_ns - _ns(fault_margin), b.end_ns + _ns(fault_margin)) for b in bands]
            + [(t - _ns(anomaly_margin), t + _ns(anomaly_margin)) for t in anomaly_times]
        )
        if not windows:
            kept = bars[:max_ops]
            note = f"the first {len(kept)} of {len(bars)} operations (no fault, no anomaly)"
            return Selection(bars=kept, total=len(bars), windows=[(kept[0].invoke_ns, _end(kept[-1]))], note=note)
        kept = [bar for bar in bars if _overlaps(bar, windows)]
        if len(kept) <= max_ops or fault_margin < 0.005:
            break
        fault_margin, anomaly_margin = fault_margin / 2, anomaly_margin / 2
    note = (
        f"{min(len(kept), max_ops)} of {len(bars)} operations: those within {fault_margin:g} s of {len(bands)} "
        f"fault(s) and {anomaly_margin:g} s of the operations of {len(marked)} anomalous task(s)"
    )
    if len(kept) > max_ops:
        note += f", and of those the first {max_ops}"
        kept = kept[:max_ops]
    return Selection(bars=kept, total=len(bars), windows=windows, note=note + "; ✂ marks where the rest was cut")


def cut_between(all_invokes_ns: list[int], kept_invokes_ns: list[int], after_ns: int, before_ns: int) -> int:
    """How many operations invoked in (after, before) were left out (both lists sorted)."""
    total = bisect_left(all_invokes_ns, before_ns) - bisect_right(all_invokes_ns, after_ns)
    kept = bisect_left(kept_invokes_ns, before_ns) - bisect_right(kept_invokes_ns, after_ns)
    return max(0, total - kept)


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _end(bar: Bar) -> int:
    return bar.invoke_ns if bar.done_ns is None else bar.done_ns


def _ends(bar: Bar) -> tuple[int, int]:
    return bar.invoke_ns, _end(bar)


def _overlaps(bar: Bar, windows: list[tuple[int, int]]) -> bool:
    """Whether [invoke, answer] meets a window (windows sorted and disjoint)."""
    at = bisect_right(windows, (_end(bar), float("inf"))) - 1
    return at >= 0 and windows[at][1] >= bar.invoke_ns


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _describe(invoke: Op, done: Op | None, aliases: dict[str, str]) -> tuple[list[str], str]:
    """(task ids, a one-line account) of one operation."""
    value, answer = invoke.get("value") or {}, (done or {}).get("value") or {}
    f = invoke["f"]
    if f == "enqueue":
        tids = [task[0] for task in value.get("tasks") or ()]
        return tids, f"{_listed(tids)}"
    if f == "deliver":
        entries = answer.get("tasks") or []
        tids = [entry[4] if len(entry) > 4 else entry[0] for entry in entries]
        shown = [f"{tid} (attempt {e[2]}, delivery {e[3]})" for tid, e in zip(tids, entries, strict=True)]
        return tids, _listed(shown) if entries else "nothing"
    if f == "complete":
        tids = [aliases.get(t, t) for t in value.get("tasks") or ()]
        refused = answer.get("refused") or []
        return tids, _listed(tids) + (f"; REFUSED {_listed(refused)}" if refused else "")
    if f == "fail":
        tids = [aliases.get(t[0], t[0]) for t in value.get("tasks") or ()]
        outcomes = answer.get("outcomes") or []
        shown = [f"{tid} -> {outcome}" for tid, outcome in zip(tids, outcomes, strict=False)] or tids
        return tids, _listed(shown)
    return [], _listed([f"{k}={v}" for k, v in value.items()])


def _listed(items: list[Any], limit: int = 8) -> str:
    text = ", ".join(str(item) for item in items[:limit])
    return text + (f" (+{len(items) - limit} more)" if len(items) > limit else "")
