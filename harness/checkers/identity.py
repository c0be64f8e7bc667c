"""The retry-identity checker: a retry is the same task. Every delivery of a task carries the priority
and retry budget it was enqueued with and the payload it first arrived with; the error history
stored with it grows by exactly one per failed attempt and is never lost.

The task id is the retry checker's (`id_changes`), and attempt numbers too (`resets`): this one owns
the rest of what a task is. Payload digests, budgets and error counts come from newer journals
(harness.history: delivered task elements 5-7); a history without them is judged on priority alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from harness.checkers._report import Examples
from harness.checkers.base import CheckContext, CheckResult
from harness.checkers.index import Delivery, Enqueue, HistoryIndex


@dataclass(slots=True)
class _Tally:
    priority_changes: int = 0
    budget_changes: int = 0
    payload_changes: int = 0
    error_history_breaks: int = 0
    retried_tasks: int = 0
    tasks_checked: int = 0


def check_identity(index: HistoryIndex, context: CheckContext) -> CheckResult:
    tally, examples = _Tally(), Examples()
    enqueues = index.enqueues
    for tid, deliveries in index.deliveries.items():
        enqueue = enqueues.get(tid)
        if enqueue is None:
            continue  # never enqueued: the delivery checker's stranger, with nothing to compare
        tally.tasks_checked += 1
        if len(deliveries) == 1:
            only = deliveries[0]
            if only.prio == enqueue.prio and only.max_retries in (None, enqueue.max_retries):
                continue  # the common case: delivered once, as enqueued
        _judge(tid, enqueue, deliveries, tally, examples)
    broken = tally.priority_changes + tally.budget_changes + tally.payload_changes + tally.error_history_breaks
    return CheckResult(name="identity", valid=broken == 0, figures=asdict(tally), anomalies=examples.pick())


def _judge(tid: str, enqueue: Enqueue, deliveries: list[Delivery], tally: _Tally, examples: Examples) -> None:
    tally.retried_tasks += any(d.attempt > 0 for d in deliveries)
    moved = [d for d in deliveries if d.prio != enqueue.prio]
    if moved:
        tally.priority_changes += 1
        examples.add("priority_changed", tid=tid, enqueued=enqueue.prio, delivered=moved[0].prio,
                     attempt=moved[0].attempt, by=moved[0].process)  # fmt: skip
    budgets = [d for d in deliveries if d.max_retries is not None and d.max_retries != enqueue.max_retries]
    if budgets:
        tally.budget_changes += 1
        examples.add("budget_changed", tid=tid, enqueued=enqueue.max_retries, delivered=budgets[0].max_retries,
                     attempt=budgets[0].attempt)  # fmt: skip
    digests = [d for d in deliveries if d.digest is not None]
    changed = [d for d in digests if d.digest != digests[0].digest]
    if changed:
        tally.payload_changes += 1
        examples.add("payload_changed", tid=tid, first=digests[0].digest, later=changed[0].digest,
                     attempt=changed[0].attempt)  # fmt: skip
    broken = _error_history_break(deliveries)
    if broken is not None:
        tally.error_history_breaks += 1
        examples.add("error_history_broken", tid=tid, **broken)


def _error_history_break(deliveries: list[Delivery]) -> dict[str, int] | None:
    """Where errors stored minus attempts made is not the same for every delivery: the history lost an
    error, or gained one without a failed attempt."""
    known = [(d.attempt, d.errors) for d in deliveries if d.errors is not None]
    if len(known) < 2:
        return None
    first_attempt, first_errors = known[0]
    for attempt, errors in known[1:]:
        if errors - attempt != first_errors - first_attempt:
            return {"attempt": attempt, "errors": errors, "first_attempt": first_attempt, "first_errors": first_errors}
    return None
