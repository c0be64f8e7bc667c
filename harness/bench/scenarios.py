"""Scenario benchmarks through the harness: every figure measured side by side in one job.

    throughput  the same fixed amount of work on each queue, repeated, interleaved:
                tasks/s to the last completion, and each queue as a ratio of the first
                baseline (by default taskq / raw, the plain redis-py ceiling)
    sweep       offered rate in steps up to saturation, each queue at each step: the
                throughput-latency curve and its knee
    scaling     the number of consumer processes in steps: the scaling curve

Runs alternate between queues (taskq, raw, raw, taskq, ...), so drift in a noisy
machine hits both alike. Every run keeps its own folder (verdict, plots) under the
benchmark's folder, beside bench.json, report.md and report.html.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from harness.bench.runs import Measured, Status, quiet, run_scenario
from harness.folders import stamped_folder
from harness.scenario import Scenario

# A sweep step keeps up when it completes this share of what was offered ...
KEEP_UP_SHARE = 0.95
# ... and its median enqueue-to-start stays within this factor of the lightest step's (the
# median, not a tail: past saturation the backlog grows and the median with it, while on a
# shared machine a tail moves with the neighbours).
KNEE_LATENCY_FACTOR = 10.0
# Enqueue calls per second one producer process offers before it batches tasks per call.
CALLS_PER_PRODUCER_S = 2000.0


@dataclass(frozen=True, kw_only=True, slots=True)
class Point:
    """One run of a benchmark, as its report shows it."""

    queue: str
    x: float
    run: str
    valid: bool | None
    throughput: float | None
    p50_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    send_lag_p99_ms: float | None
    cpu_us_per_task: float | None = None

    @classmethod
    def of(cls, measured: Measured, x: float, root: Path) -> Point:
        return cls(
            queue=measured.queue,
            x=x,
            run=str(measured.folder.relative_to(root)),
            valid=measured.valid,
            throughput=measured.figure("throughput"),
            p50_ms=measured.figure("enqueue_to_start.p50"),
            p99_ms=measured.figure("enqueue_to_start.p99"),
            p999_ms=measured.figure("enqueue_to_start.p99.9"),
            send_lag_p99_ms=measured.figure("send_lag.p99"),
            cpu_us_per_task=measured.figure("cpu_per_task"),
        )


@dataclass(kw_only=True, slots=True)
class Bench:
    kind: str
    scenario: str
    queues: list[str]
    folder: Path
    points: list[Point]
    summary: dict[str, Any]

    def by_queue(self) -> dict[str, list[Point]]:
        return {q: sorted((p for p in self.points if p.queue == q), key=lambda p: p.x) for q in self.queues}

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "scenario": self.scenario, "queues": self.queues,
            "points": [asdict(p) for p in self.points], "summary": self.summary,
        }  # fmt: skip


def bench_folder(out: Path, kind: str, scenario: str) -> Path:
    folder = stamped_folder(out, kind, scenario)
    (folder / "runs").mkdir()
    return folder


def interleaved(queues: Sequence[str], step: int) -> list[str]:
    """Queue order for step `step`: forwards, then backwards, so neither always goes first."""
    return list(queues) if step % 2 == 0 else list(reversed(queues))


def _run_steps(
    kind: str,
    scenario: Scenario,
    queues: Sequence[str],
    steps: Sequence[tuple[float, Scenario]],
    *,
    seed: int,
    out: Path,
    status: Status,
    stop: Callable[[list[Point]], bool] | None = None,
) -> Bench:
    folder = bench_folder(out, kind, scenario.name)
    bench = Bench(kind=kind, scenario=scenario.name, queues=list(queues), folder=folder, points=[], summary={})
    total = len(steps) * len(queues)
    for step, (x, chosen) in enumerate(steps):
        for queue in interleaved(queues, step):
            n = len(bench.points) + 1
            prefix = f"[{kind} {n}/{total}] {queue} x={x:g}"
            status(f"{prefix}: running")
            measured = run_scenario(chosen, queue=queue, seed=seed, out=folder / "runs", status=quiet(status, prefix))
            point = Point.of(measured, x, folder)
            bench.points.append(point)
            status(f"{prefix}: {describe(point)}")
        if stop is not None and stop(bench.points):
            status(f"[{kind}] every queue is past its knee: stopping the sweep")
            break
    return bench


def describe(point: Point) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    tput = "-" if point.throughput is None else f"{point.throughput:,.0f}"
    valid = {True: "valid", False: "INVALID", None: "unknown"}[point.valid]
    return f"{tput} tasks/s, enqueue-to-start p50 {ms(point.p50_ms)} p99 {ms(point.p99_ms)} ms ({valid})"


def bench_throughput(
    scenario: Scenario, queues: Sequence[str], *, repeat: int, seed: int, out: Path, status: Status
) -> Bench:
    steps = [(float(r + 1), scenario) for r in range(repeat)]
    bench = _run_steps("throughput", scenario, queues, steps, seed=seed, out=out, status=status)
    medians = {q: _median([p.throughput for p in pts]) for q, pts in bench.by_queue().items()}
    costs = {q: _median([p.cpu_us_per_task for p in pts]) for q, pts in bench.by_queue().items()}
    baseline = queues[-1]
    others = [q for q in queues if q != baseline]
    bench.summary = {
        "median_tasks_per_s": medians,
        "baseline": baseline,
        "ratios": {q: _ratio(medians[q], medians[baseline]) for q in others},
        "paired_ratios": {q: _paired(bench, q, baseline, "throughput") for q in others},
        "median_cpu_us_per_task": costs,
        "cpu_ratios": {q: _ratio(costs[q], costs[baseline]) for q in others},
        "paired_cpu_ratios": {q: _paired(bench, q, baseline, "cpu_us_per_task") for q in others},
    }
    return bench


def sweep_steps(scenario: Scenario, rates: Sequence[float]) -> list[tuple[float, Scenario]]:
    """The scenario at each offered rate. Above what one producer sends comfortably one task per
    call, each call carries more tasks (all due together), so the load generator is not what saturates."""
    steps = []
    for rate in rates:
        per_call = max(
            scenario.workload.enqueue_batch, math.ceil(rate / (CALLS_PER_PRODUCER_S * scenario.run.producers))
        )
        workload = replace(scenario.workload, enqueue_batch=per_call)
        steps.append((rate, replace(scenario.with_run(rate=rate), workload=workload)))
    return steps


def bench_sweep(
    scenario: Scenario, queues: Sequence[str], *, rates: Sequence[float], seed: int, out: Path, status: Status
) -> Bench:
    def past_knee(points: list[Point]) -> bool:
        by_queue = {q: sorted((p for p in points if p.queue == q), key=lambda p: p.x) for q in queues}
        return all(knee(pts) is not None and knee(pts) != pts[-1].x for pts in by_queue.values())

    steps = sweep_steps(scenario, sorted(rates))
    bench = _run_steps("sweep", scenario, queues, steps, seed=seed, out=out, status=status, stop=past_knee)
    knees = {q: knee(pts) for q, pts in bench.by_queue().items()}
    baseline = queues[-1]
    bench.summary = {
        "knee_tasks_per_s": knees,
        "knee_rule": f"the highest offered rate at which the queue completed at least {KEEP_UP_SHARE:.0%} of "
        f"the offered load with median enqueue-to-start within {KNEE_LATENCY_FACTOR:g}x of the lightest step's",
        "baseline": baseline,
        "knee_ratios": {q: _ratio(knees[q], knees[baseline]) for q in queues if q != baseline},
        "p99_ratios_by_rate": {q: _paired(bench, q, baseline, "p99_ms") for q in queues if q != baseline},
    }
    return bench


def knee(points: Sequence[Point]) -> float | None:
    """The last offered rate before the first step that did not keep up (see KEEP_UP_SHARE)."""
    ordered = sorted(points, key=lambda p: p.x)
    if not ordered:
        return None
    floor = min((p.p50_ms for p in ordered if p.p50_ms is not None), default=None)
    last = None
    for point in ordered:
        kept_up = point.throughput is not None and point.throughput >= KEEP_UP_SHARE * point.x
        calm = floor is None or (point.p50_ms is not None and point.p50_ms <= KNEE_LATENCY_FACTOR * max(floor, 0.001))
        if not (kept_up and calm):
            return last
        last = point.x
    return last


def bench_scaling(
    scenario: Scenario, queues: Sequence[str], *, consumers: Sequence[int], seed: int, out: Path, status: Status
) -> Bench:
    steps = [(float(c), scenario.with_run(consumers=c)) for c in sorted(consumers)]
    bench = _run_steps("scaling", scenario, queues, steps, seed=seed, out=out, status=status)
    baseline = queues[-1]
    bench.summary = {
        "tasks_per_s": {q: {f"{p.x:g}": p.throughput for p in pts} for q, pts in bench.by_queue().items()},
        "baseline": baseline,
        "ratios_by_consumers": {q: _paired(bench, q, baseline, "throughput") for q in queues if q != baseline},
        "speedup": {q: _speedup(pts) for q, pts in bench.by_queue().items()},
    }
    return bench


def _speedup(points: list[Point]) -> dict[str, float | None]:
    first = points[0].throughput if points else None
    return {f"{p.x:g}": _ratio(p.throughput, first) for p in points}


def _paired(bench: Bench, queue: str, baseline: str, attribute: str) -> dict[str, float | None]:
    """Per step: the queue's figure over the baseline's figure of the same step."""
    ours = {p.x: getattr(p, attribute) for p in bench.points if p.queue == queue}
    theirs = {p.x: getattr(p, attribute) for p in bench.points if p.queue == baseline}
    return {f"{x:g}": _ratio(ours[x], theirs.get(x)) for x in sorted(ours)}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 1) if present else None
