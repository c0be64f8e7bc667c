"""Latency and throughput figures from a history.

Latency counts from the time a task was due to be sent (open loop), so a queue
that stalls producers cannot hide it. Start-to-complete, from a task's first
delivery to its acknowledged completion, is the settling path on its own (with
zero-time tasks: the ack's round trip), which queueing upstream does not blur. Histograms are HDR (microseconds, three
significant digits): percentiles stay exact in the tail and merge across runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hdrh.histogram import HdrHistogram

from harness.history import INVOKE, OK, Op, pair_operations

LOWEST_US, HIGHEST_US, DIGITS = 1, 3_600_000_000, 3
PERCENTILES = (50.0, 90.0, 99.0, 99.9, 99.99)


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


TaskTimes = tuple[dict[str, int], dict[str, int], dict[str, int]]


def task_times(history: Iterable[Op]) -> TaskTimes:
    """Per task: due time, first delivery time, first successful completion time (ns)."""
    due: dict[str, int] = {}
    started: dict[str, int] = {}
    completed: dict[str, int] = {}
    for invoke, done in pair_operations(list(history)):
        if done is None or done["type"] != OK:
            continue
        f = invoke["f"]
        if f == "enqueue" and invoke["type"] == INVOKE:
            due_ns = invoke["value"].get("due_ns", invoke["time_ns"])
            for tid, *_ in invoke["value"]["tasks"]:
                due.setdefault(tid, due_ns)
        elif f == "deliver":
            for record in done["value"]["tasks"]:
                started.setdefault(record[4] if len(record) > 4 else record[0], done["time_ns"])
        elif f == "complete" and invoke["type"] == INVOKE:
            refused = set(done["value"].get("refused", ()))
            for tid in invoke["value"]["tasks"]:
                if tid not in refused:
                    completed.setdefault(tid, done["time_ns"])
    return due, started, completed


LATENCIES = ("enqueue_to_start", "enqueue_to_complete", "start_to_complete")


def latency_histograms(history: list[Op], times: TaskTimes | None = None) -> dict[str, HdrHistogram]:
    due, started, completed = times or task_times(history)
    histograms = {name: new_histogram() for name in LATENCIES}
    spans = (("enqueue_to_start", due, started), ("enqueue_to_complete", due, completed),
             ("start_to_complete", started, completed))  # fmt: skip
    for name, begins, ends in spans:
        histogram = histograms[name]
        for tid, end in ends.items():
            if tid in begins:
                histogram.record_value(max(LOWEST_US, (end - begins[tid]) // 1000))
    return histograms


def summarize(histogram: HdrHistogram) -> dict[str, Any]:
    """Percentiles in milliseconds."""
    if histogram.get_total_count() == 0:
        return {"count": 0}
    figures: dict[str, Any] = {"count": histogram.get_total_count()}
    for p in PERCENTILES:
        figures[f"p{p:g}"] = histogram.get_value_at_percentile(p) / 1000
    figures["max"] = histogram.get_max_value() / 1000
    figures["mean"] = round(histogram.get_mean_value() / 1000, 3)
    return figures


def completions_per_second(history: list[Op], start_ns: int, end_ns: int, times: TaskTimes | None = None) -> list[int]:
    """Successful completions in each second from start_ns to end_ns."""
    _, _, completed = times or task_times(history)
    buckets = [0] * max(1, int((end_ns - start_ns) / 1e9) + 1)
    for t in completed.values():
        if start_ns <= t <= end_ns:
            buckets[int((t - start_ns) / 1e9)] += 1
    return buckets


def overall_throughput(times: TaskTimes, load_start_ns: int) -> dict[str, Any]:
    """Every task completed, over the time from the first task's due time (the load really
    starting, agents' start-up left out) to the last completion, drain included: the rate
    for a fixed amount of work however producers and consumers shared the machine, and
    for paced load the rate it kept up."""
    due, _, completed = times
    done = [t for t in completed.values() if t >= load_start_ns]
    if not done:
        return {"completed": 0, "seconds": None, "per_second": 0.0}
    start_ns = max(load_start_ns, min(due.values(), default=load_start_ns))
    seconds = max(1e-9, (max(done) - start_ns) / 1e9)
    return {"completed": len(done), "seconds": round(seconds, 3), "per_second": round(len(done) / seconds, 1)}
