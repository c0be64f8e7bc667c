"""Throughput recovery: how long after each fault ended until tasks completed at a normal rate again.

Normal is the completion rate in the BASELINE_S before the fault began; throughput is back at the
first completion after the fault's end at which the last WINDOW_S (none of it before the end)
held at least BACK_FRACTION of that rate. A queue that serves at full speed the moment the fault
ends reads about BACK_FRACTION x WINDOW_S (the time to see the rate); open-loop load queues up
during a fault, so a queue that works usually runs above the baseline soon after, and a slow
return means the queue (or its clients) stayed stuck. A pure function of the history index,
reported by the recovery checker.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from typing import Any

from harness.checkers._report import NS_PER_S, percentile
from harness.checkers.index import Fault, HistoryIndex
from harness.history import OK

BASELINE_S = 3.0
MIN_BASELINE_S = 1.0
WINDOW_S = 0.5
BACK_FRACTION = 0.5


def completion_times(index: HistoryIndex) -> list[int]:
    """When each acknowledged completion came back, sorted."""
    return sorted(c.done_ns for done in index.completions.values() for c in done if c.outcome == OK and c.done_ns)


def throughput_back(index: HistoryIndex, times: list[int] | None = None) -> list[dict[str, Any]]:
    """Per fault that ended: seconds from its end until throughput was back (None: never in the run)."""
    times = completion_times(index) if times is None else times
    load_ns = index.phases.get("load", times[0] if times else 0)
    rows = []
    for fault in index.faults:
        if fault.outcome == "info" or fault.end_ns is None:
            continue
        row: dict[str, Any] = {"kind": fault.kind, "target": fault.target,
                               "ended_s": _s(fault.end_ns - load_ns)}  # fmt: skip
        rate = _baseline_rate(times, load_ns, fault)
        if rate is None:
            row["back_after_s"], row["note"] = None, "no baseline: too early in the run, or nothing completed"
        else:
            row["back_after_s"] = _back_after_s(times, fault.end_ns, rate)
        rows.append(row)
    return rows


def throughput_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """p50 and max of the measured figures, how many faults never saw throughput back, and the worst one."""
    measured = [row for row in rows if row["back_after_s"] is not None]
    never = [row for row in rows if row["back_after_s"] is None and "note" not in row]
    if not measured and not never:
        return {}
    waits = sorted(row["back_after_s"] for row in measured)
    worst = max(measured, key=lambda row: row["back_after_s"]) if measured else never[0]
    return {
        "throughput_back_p50_s": percentile(waits, 0.5) if waits else None,
        "throughput_back_max_s": waits[-1] if waits else None,
        "throughput_never_back": len(never),
        "throughput_worst": f"{worst['kind']} ended at {worst['ended_s']}s",
    }


def _count(times: list[int], start_ns: int, end_ns: int) -> int:
    return bisect_left(times, end_ns) - bisect_left(times, start_ns)


def _baseline_rate(times: list[int], load_ns: int, fault: Fault) -> float | None:
    start_ns = max(load_ns, fault.start_ns - int(BASELINE_S * NS_PER_S))
    span_s = (fault.start_ns - start_ns) / NS_PER_S
    if span_s < MIN_BASELINE_S:
        return None
    rate = _count(times, start_ns, fault.start_ns) / span_s
    return rate or None


def _back_after_s(times: list[int], end_ns: int, rate: float) -> float | None:
    window_ns = int(WINDOW_S * NS_PER_S)
    needed = max(1, math.ceil(BACK_FRACTION * rate * WINDOW_S))
    first = bisect_left(times, end_ns)
    for position in range(first + needed - 1, len(times)):
        at_ns = times[position]
        if position + 1 - bisect_left(times, max(end_ns, at_ns - window_ns), first) >= needed:
            return _s(at_ns - end_ns)
    return None


def _s(ns: int) -> float:
    return round(ns / NS_PER_S, 3)


def throughput_note(rows: list[dict[str, Any]]) -> str:
    figures = throughput_summary(rows)
    if not figures:
        return ""
    p50, worst = figures["throughput_back_p50_s"], figures["throughput_back_max_s"]
    text = f"throughput back after faults: p50 {p50}s, max {worst}s"
    if figures["throughput_never_back"]:
        text += f", never back after {figures['throughput_never_back']} fault(s)"
    return f"{text} (worst: {figures['throughput_worst']})"
