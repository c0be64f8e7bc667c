"""The recovery checker: how long the tasks a killed (or terminated) worker held took to be handed out
again, from the fault's start to each task's next delivery to anyone; whether the queue accepted work
again after each Redis or network fault (harness/checkers/service.py; judged); and for every fault, how
long after its end throughput was back (harness/checkers/throughput.py; figures, not judged)."""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

from harness.checkers._report import NS_PER_S, Examples, percentile, seconds
from harness.checkers.base import MAX_EXAMPLES, CheckContext, CheckResult
from harness.checkers.index import CRASH_FAULTS, Fault, HistoryIndex, targets
from harness.checkers.service import never_back
from harness.checkers.throughput import throughput_back, throughput_note, throughput_summary
from harness.history import INFO, OK


def check_recovery(index: HistoryIndex, context: CheckContext) -> CheckResult:
    result = _with_service(_check_redelivery(index, context), never_back(index))
    back = throughput_back(index)
    if not back:
        return result
    figures = {**result.figures, **throughput_summary(back), "throughput_back": back}
    note = "; ".join(filter(None, (result.note, throughput_note(back))))
    return CheckResult(name="recovery", valid=result.valid, figures=figures, anomalies=result.anomalies, note=note)


def _with_service(result: CheckResult, out_of_service: list[dict[str, Any]]) -> CheckResult:
    """The redelivery result, made invalid by any fault after which the queue never took work again."""
    if not out_of_service:
        return result
    anomalies = [{"kind": "never_back_in_service", **row} for row in out_of_service]
    worst = out_of_service[0]
    note = (f"no enqueue accepted after {worst['fault']} ended at {worst['ended_s']}s "
            f"({worst['enqueues_after']} tried: {worst['outcomes']})")  # fmt: skip
    return CheckResult(
        name="recovery",
        valid=False,
        figures={**result.figures, "never_back_in_service": len(out_of_service)},
        anomalies=[*anomalies, *result.anomalies][:MAX_EXAMPLES],
        note="; ".join(filter(None, (note, result.note))),
    )


def _check_redelivery(index: HistoryIndex, context: CheckContext) -> CheckResult:
    crashes = [f for f in index.faults if f.kind in CRASH_FAULTS and f.outcome != "info"]
    if not crashes:
        return CheckResult(name="recovery", valid=True, note="no kill or term faults: nothing to recover from")
    examples = Examples()
    waits_ns: list[int] = []
    never = settled = 0
    # How long the run went on after the latest kill whose tasks never came back: none of them was
    # recovered within that long (a bounded drain ended first).
    waited_ns: int | None = None
    for fault in crashes:
        for tid in fault.held:
            wait_ns = _next_delivery_ns(index, tid, fault)
            if _failed_as_it_died(index, tid, fault):
                settled += 1  # its fail got through: what came next was a retry, with its backoff and queueing
            elif wait_ns is not None:
                waits_ns.append(wait_ns)
            elif _settled(index, tid):
                settled += 1  # a graceful stop, or an ack in flight when the worker died
            else:
                never += 1
                examples.add("never_redelivered", tid=tid, fault=fault.kind, target=fault.target, at_ns=fault.start_ns)
                waited = index.end_ns - fault.start_ns
                waited_ns = waited if waited_ns is None else min(waited_ns, waited)
    if not waits_ns and not never and not settled:
        return CheckResult(name="recovery", valid=None, figures={"faults": len(crashes), "held": 0},
                           note="kill faults hit workers that held no tasks: nothing to measure")  # fmt: skip
    waits_ns.sort()
    figures = {
        "faults": len(crashes), "count": len(waits_ns), "p50_s": seconds(int(percentile(waits_ns, 0.5))),
        "p99_s": seconds(int(percentile(waits_ns, 0.99))), "max_s": seconds(waits_ns[-1] if waits_ns else 0),
        "settled_without_redelivery": settled, "never_redelivered": never,
    }  # fmt: skip
    if waited_ns is not None:
        figures["not_recovered_within_s"] = seconds(waited_ns)
    return _verdict(context, figures, waits_ns, never, examples)


def _verdict(
    context: CheckContext, figures: dict[str, float | int], waits_ns: list[int], never: int, examples: Examples
) -> CheckResult:
    limit_s = context.expect.max_recovery_s
    never_note = f"{never} not recovered within {figures['not_recovered_within_s']:.1f} s" if never else ""
    if limit_s is None:
        return CheckResult(name="recovery", valid=True, figures=figures, anomalies=examples.pick(), note=never_note)
    # A task never handed out again has an unbounded recovery time: it breaks any stated bound.
    too_slow = (bool(waits_ns) and waits_ns[-1] > limit_s * NS_PER_S) or never > 0
    note = "; ".join(filter(None, (never_note, f"bound {limit_s} s" + (" exceeded" if too_slow else " held"))))
    return CheckResult(name="recovery", valid=not too_slow, figures=figures, anomalies=examples.pick(), note=note)


def _next_delivery_ns(index: HistoryIndex, tid: str, fault: Fault) -> int | None:
    """From the fault's start to the task's next delivery to another worker. The victim itself may still
    start a task in the moment between the fault's start and its death (a hosted worker's handler, while
    the nemesis stops its tree): that is the delivery the fault cut short, not a redelivery."""
    deliveries = index.deliveries.get(tid)
    if not deliveries:
        return None
    # Deliveries are kept in order of ok time.
    position = bisect_right([d.ok_ns for d in deliveries], fault.start_ns)
    later = [d for d in deliveries[position:] if not targets(fault.target, d.process)]
    return later[0].ok_ns - fault.start_ns if later else None


def _failed_as_it_died(index: HistoryIndex, tid: str, fault: Fault) -> bool:
    """The worker had sent the task's fail when it was hit, and the queue took it: the next delivery carries
    a higher attempt than the last one before the fault. That task was settled (retried), not recovered."""
    deliveries = index.deliveries.get(tid) or []
    before = [d for d in deliveries if d.ok_ns <= fault.start_ns]
    after = [d for d in deliveries if d.ok_ns > fault.start_ns]
    fail_sent = any(f.invoke_ns <= fault.start_ns for f in index.failures.get(tid, ()))
    return bool(before and after and fail_sent) and after[0].attempt > before[-1].attempt


def _settled(index: HistoryIndex, tid: str) -> bool:
    """Finished without a redelivery: dead, acked, or acked as the worker died (the ack's answer was lost)."""
    return index.is_dead(tid) or any(c.outcome in (OK, INFO) for c in index.completions.get(tid, ()))
