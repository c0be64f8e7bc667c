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
from typing import Any, Final, Generic, NamedTuple, Protocol, TypeVar

from harness.checkers.index import HistoryIndex
from harness.history import INVOKE, Op

MAX_OPS: Final = 2500
FAULT_MARGIN_S: Final = 0.5
ANOMALY_MARGIN_S: Final = 0.25
_NOT_LANES: Final = ("runner", "nemesis")
_NOT_OPERATIONS: Final = frozenset({"fault", "phase", "depth", "final", "exit"})


class Span(NamedTuple):
    """One agent operation as the selection sees it: its times, and its records for drawing it later."""

    invoke_ns: int
    done_ns: int | None
    invoke: Op
    done: Op | None


@dataclass(frozen=True, slots=True)
class Bar:
    """One operation of one process, as drawn."""

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


class _Timed(Protocol):
    @property
    def invoke_ns(self) -> int: ...
    @property
    def done_ns(self) -> int | None: ...


T = TypeVar("T", bound=_Timed)


@dataclass(slots=True)
class Selection(Generic[T]):
    """The operations to draw, and what was left out."""

    kept: list[T]
    total: int
    windows: list[tuple[int, int]] = field(default_factory=list)  # kept time ranges, when cut
    note: str = ""  # what was cut, for the page


def spans(history: list[Op]) -> list[Span]:
    """Every agent operation with an invoke, in invoke order (one pass; an invoke its process never
    answered, because it died or invoked again, has no answer)."""
    found: list[Span] = []
    open_at: dict[str, int] = {}  # process -> position in `found` of its unanswered invoke
    for op in history:
        process = op["process"]
        if op["f"] in _NOT_OPERATIONS or process.startswith(_NOT_LANES):
            continue
        if op["type"] == INVOKE:
            open_at[process] = len(found)
            found.append(Span(op["time_ns"], None, op, None))
            continue
        at = open_at.pop(process, None)
        if at is not None and found[at].invoke["f"] == op["f"]:
            found[at] = found[at]._replace(done_ns=op["time_ns"], done=op)
    return found


def bars(kept: Iterable[Span], index: HistoryIndex) -> list[Bar]:
    """The drawn form of the operations kept: who, what, outcome, the tasks they carried, a one-line account."""
    drawn = []
    for span in kept:
        invoke, done = span.invoke, span.done
        tids, detail = _describe(invoke, done, index.aliases)
        outcome = "info" if done is None else str(done["type"])
        error = ((done or {}).get("value") or {}).get("error") if outcome != "ok" else None
        if error:
            detail += f"; error: {str(error)[:200]}"
        elif done is None:
            detail += "; no answer: its process died, or never heard back"
        drawn.append(
            Bar(invoke["process"], str(invoke["f"]), outcome, span.invoke_ns, span.done_ns, tuple(tids), detail)
        )
    return drawn


def fault_bands(index: HistoryIndex) -> list[Band]:
    return [
        Band(
            f"{fault.kind} {fault.target}" + (" (not applied)" if fault.outcome == "info" else ""),
            fault.start_ns,
            index.fault_end_ns(fault),
        )
        for fault in index.faults
    ]


def task_times(index: HistoryIndex, tids: Iterable[str]) -> list[int]:
    """When anything happened to these tasks (enqueue, deliveries, completions, failures), from the index."""
    times: list[int] = []
    for tid in tids:
        enqueue = index.enqueues.get(tid)
        if enqueue is not None:
            times += [enqueue.invoke_ns] + ([enqueue.ok_ns] if enqueue.ok_ns else [])
        times += [d.ok_ns for d in index.deliveries.get(tid, ())]
        times += [c.invoke_ns for c in index.completions.get(tid, ())]
        times += [f.invoke_ns for f in index.failures.get(tid, ())]
    return sorted(times)


def select(
    operations: list[T], bands: list[Band], anomaly_times: list[int], *, tasks: int = 0, max_ops: int = MAX_OPS
) -> Selection[T]:
    """All the operations when they fit; else those around faults and around the anomalous tasks' events
    (`anomaly_times`, of `tasks` tasks), margins halved until they fit."""
    if len(operations) <= max_ops:
        return Selection(kept=operations, total=len(operations))
    fault_margin, anomaly_margin = FAULT_MARGIN_S, ANOMALY_MARGIN_S
    while True:
        windows = _merge(
            [(b.start_ns - _ns(fault_margin), b.end_ns + _ns(fault_margin)) for b in bands]
            + [(t - _ns(anomaly_margin), t + _ns(anomaly_margin)) for t in anomaly_times]
        )
        if not windows:
            kept = operations[:max_ops]
            note = f"the first {len(kept)} of {len(operations)} operations (no fault, no anomaly)"
            return Selection(kept=kept, total=len(operations), windows=[(kept[0].invoke_ns, _end(kept[-1]))], note=note)
        kept = [op for op in operations if _overlaps(op, windows)]
        if len(kept) <= max_ops or fault_margin < 0.005:
            break
        fault_margin, anomaly_margin = fault_margin / 2, anomaly_margin / 2
    note = (
        f"{min(len(kept), max_ops)} of {len(operations)} operations: those within {fault_margin:g} s of {len(bands)} "
        f"fault(s) and {anomaly_margin:g} s of the operations of {tasks} anomalous task(s)"
    )
    if len(kept) > max_ops:
        note += f", and of those the first {max_ops}"
        kept = kept[:max_ops]
    return Selection(kept=kept, total=len(operations), windows=windows, note=note + "; ✂ marks where the rest was cut")


def cut_between(all_invokes_ns: list[int], kept_invokes_ns: list[int], after_ns: int, before_ns: int) -> int:
    """How many operations invoked in (after, before) were left out (both lists sorted)."""
    total = bisect_left(all_invokes_ns, before_ns) - bisect_right(all_invokes_ns, after_ns)
    kept = bisect_left(kept_invokes_ns, before_ns) - bisect_right(kept_invokes_ns, after_ns)
    return max(0, total - kept)


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _end(op: _Timed) -> int:
    return op.invoke_ns if op.done_ns is None else op.done_ns


def _overlaps(op: _Timed, windows: list[tuple[int, int]]) -> bool:
    """Whether [invoke, answer] meets a window (windows sorted and disjoint)."""
    at = bisect_right(windows, (_end(op), float("inf"))) - 1
    return at >= 0 and windows[at][1] >= op.invoke_ns


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
