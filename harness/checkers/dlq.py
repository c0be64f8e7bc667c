"""The dead-letter checker: a task is dead-lettered iff its attempts (or its deliveries) ran out, it is
never both dead and completed, and the errors stored with it match the attempts it made.

The delivery cap is for tasks that kill their workers. A task dead-lettered by it that was not
poison, was never held by a worker a fault hit, and was handed out by no read whose answer was
lost is an innocent: collateral of a batch-mate that crashed its workers (`innocent_dead`). One whose
holders lived to finish it, only to have their acks refused, outlived its lease on every delivery (a task
longer than the visibility timeout under a consumer that does not renew): that is the cap working, and
is counted apart (`outlived_lease_dead`, not judged).

A task the queue said it dead-lettered, missing from the DLQ after a Redis fault whose loss window
(harness.checkers.delivery.loss_window) covers that answer, went with the state the fault lost: when
the scenario allows such loss it is counted apart (`missing_in_fault_window`), not as missing."""

from __future__ import annotations

from bisect import bisect_left

from harness.checkers._report import Examples
from harness.checkers.base import CheckContext, CheckResult
from harness.checkers.delivery import loss_window
from harness.checkers.index import COUNTED_FAILURES, DeadEntry, FinalState, HistoryIndex, counted_failures
from harness.history import INFO, OK

RETRIES_EXHAUSTED = "retries exhausted"
DELIVERY_CAP = "delivery cap"
_NOT_JUDGED = frozenset({"dead", "outlived_lease_dead", "missing_in_fault_window"})
UNRECORDED = -1  # a dead entry's attempts or errors the queue does not keep


def check_dlq(index: HistoryIndex, context: CheckContext) -> CheckResult:
    final = index.final
    if final is None:
        return CheckResult(name="dlq", valid=None, note="no final state in the history: the DLQ was never read")
    examples = Examples()
    figures = {"dead": len(final.dead), "dead_and_completed": 0, "missing_from_dlq": 0, "wrong_error_count": 0,
               "cap_not_reached": 0, "innocent_dead": 0, "outlived_lease_dead": 0,
               "missing_in_fault_window": 0}  # fmt: skip
    faulted = {tid for fault in index.faults for tid in fault.held}
    for tid, entry in final.dead.items():
        for kind in _judge_dead(index, context, tid, entry, faulted):
            figures[kind] += 1
            examples.add(kind, tid=tid, reason=entry.reason, stored_attempts=entry.attempts,
                         stored_errors=entry.errors, failed_attempts=_counted_failures(index, tid))  # fmt: skip
    windows = (
        [w for f in index.faults if (w := loss_window(index, f))]
        if context.expect.loss_allowed_in_redis_fault_windows
        else []
    )
    for tid in _exhausted(index, final):
        kind = "missing_in_fault_window" if _lost_with_redis(index, tid, windows) else "missing_from_dlq"
        figures[kind] += 1
        examples.add(kind, tid=tid, failed_attempts=_counted_failures(index, tid))
    valid = not any(count for kind, count in figures.items() if kind not in _NOT_JUDGED)
    return CheckResult(name="dlq", valid=valid, figures=figures, anomalies=examples.pick())


def _judge_dead(index: HistoryIndex, context: CheckContext, tid: str, entry: DeadEntry, faulted: set[str]) -> list[str]:
    found = []
    if any(c.outcome == OK for c in index.completions.get(tid, ())):
        found.append("dead_and_completed")
    if entry.reason.startswith(RETRIES_EXHAUSTED) and not _errors_match(index, tid, entry):
        found.append("wrong_error_count")
    if entry.reason.startswith(DELIVERY_CAP):
        if not _cap_reached(index, context, tid):
            found.append("cap_not_reached")
        elif index.completions.get(tid) or index.failures.get(tid):
            found.append("outlived_lease_dead")
        elif tid not in index.poison and tid not in faulted and not _unseen_reads(index, tid):
            found.append("innocent_dead")
    return found


def _errors_match(index: HistoryIndex, tid: str, entry: DeadEntry) -> bool:
    enqueue = index.enqueues.get(tid)
    if enqueue is None:
        return True  # unknown budget: the delivery checker reports the stranger
    budget = enqueue.max_retries + 1
    failures = index.failures.get(tid, ())
    certain = counted_failures(failures)
    # A fail whose answer was lost may or may not have counted against the budget.
    maybe = sum(1 for f in failures if f.outcome == INFO)
    recorded_ok = certain <= budget <= certain + maybe
    # A library that does not record attempts or errors stores -1 there (a hosted peer): not a mismatch.
    attempts_ok = entry.attempts in (UNRECORDED, enqueue.max_retries)
    return recorded_ok and attempts_ok and entry.errors in (UNRECORDED, budget)


def _cap_reached(index: HistoryIndex, context: CheckContext, tid: str) -> bool:
    deliveries = index.deliveries.get(tid, ())
    observed = max([len(deliveries), *(d.deliveries for d in deliveries)])
    if observed >= context.delivery_cap:
        return True
    return observed + _unseen_reads(index, tid) >= context.delivery_cap


def _unseen_reads(index: HistoryIndex, tid: str) -> int:
    """Reads since the task's enqueue whose answer was lost (their process died): each may have
    handed it out unseen."""
    enqueue = index.enqueues.get(tid)
    since_ns = enqueue.invoke_ns if enqueue is not None else 0
    return len(index.unknown_reads_ns) - bisect_left(index.unknown_reads_ns, since_ns)


def _counted_failures(index: HistoryIndex, tid: str) -> int:
    return counted_failures(index.failures.get(tid, ()))


def _lost_with_redis(index: HistoryIndex, tid: str, windows: list[tuple[int, int]]) -> bool:
    """Whether the last answer that put the task in the DLQ (or used up its budget) came inside a loss window."""
    answers = [f.done_ns or f.invoke_ns for f in index.failures.get(tid, ()) if f.outcome in COUNTED_FAILURES]
    return bool(answers) and any(start <= answers[-1] <= end for start, end in windows)


def _exhausted(index: HistoryIndex, final: FinalState) -> list[str]:
    """Tasks whose failed attempts used up their budget (or that the queue called dead) but are not in the DLQ."""
    missing = []
    for tid, failures in index.failures.items():
        if tid in final.dead:
            continue
        enqueue = index.enqueues.get(tid)
        counted = counted_failures(failures)
        said_dead = any(f.outcome == "dead" for f in failures)
        if said_dead or (enqueue is not None and counted >= enqueue.max_retries + 1):
            missing.append(tid)
    return missing
