"""The attempt-budget checker: a task runs at most max_retries + 1 failed attempts before it is
dead-lettered, and one attempt is handed out at most delivery_cap times (crash redeliveries).

Evidence of attempts beyond the budget, per task (the budget is the one it was enqueued with):
an attempt number above max_retries handed out; a fail of attempt max_retries or later answered
"retried"; more failed attempts than the budget; a DLQ entry storing a retry count above it.
Beyond the cap: an attempt reported delivered more than delivery_cap times, or seen handed out more
often than that, unless it was stored twice (two first deliveries: the stored-twice checker's) or a
Redis fault that may roll state back came between (a rolled-back lease is handed out again). The cap is
taskq's: in hosted runs (a library's own workers) it is reported, not judged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import groupby

from harness.checkers._report import Examples
from harness.checkers.base import CheckContext, CheckResult
from harness.checkers.index import Delivery, Fault, HistoryIndex, is_redis_fault

_ACCEPTED_FAILS = frozenset({"retried", "dead"})


@dataclass(slots=True)
class _Tally:
    tasks_checked: int = 0
    tasks_beyond_budget: int = 0
    attempts_beyond_budget: int = 0
    retried_past_budget: int = 0
    deliveries_beyond_cap: int = 0
    most_attempts: int = 0  # the most attempts any task was handed out (attempt numbers seen, plus one)
    most_deliveries: int = 0  # the most times one attempt of a task was handed out


def check_budget(index: HistoryIndex, context: CheckContext) -> CheckResult:
    tally, examples = _Tally(), Examples()
    redis = [f for f in index.faults if is_redis_fault(f.kind)]
    for tid, deliveries in index.deliveries.items():
        tally.tasks_checked += 1
        last = deliveries[-1]
        if len(deliveries) == 1 and last.attempt == 0 and last.deliveries <= context.delivery_cap:
            tally.most_attempts = max(tally.most_attempts, 1)
            tally.most_deliveries = max(tally.most_deliveries, 1)
            continue  # the common case: handed out once, on its first try
        _judge_budget(index, tid, deliveries, tally, examples)
        _judge_cap(index, context, tid, deliveries, redis, tally, examples)
    judged, capped = context.promises.retries, not context.hosted
    broken = (tally.tasks_beyond_budget if judged else 0) + (tally.deliveries_beyond_cap if capped else 0)
    notes = [] if judged else ["retry budget not judged: the queue does not promise retries"]
    if not capped:
        notes.append("delivery cap not judged in a hosted run: a library promises none (figures as observed)")
    note = "; ".join(notes)
    return CheckResult(name="budget", valid=broken == 0, figures=asdict(tally), anomalies=examples.pick(), note=note)


def _judge_budget(index: HistoryIndex, tid: str, deliveries: list[Delivery], tally: _Tally, examples: Examples) -> None:
    tally.most_attempts = max(tally.most_attempts, max(d.attempt for d in deliveries) + 1)
    enqueue = index.enqueues.get(tid)
    if enqueue is None:
        return  # unknown budget: the delivery checker reports the stranger
    budget = enqueue.max_retries
    failures = index.failures.get(tid, ())
    retried_late = [f for f in failures if f.outcome == "retried" and f.attempt >= budget]
    failed_attempts = len({f.attempt for f in failures if f.outcome in _ACCEPTED_FAILS})
    dead = index.final.dead.get(tid) if index.final is not None else None
    extra = max(
        max(d.attempt for d in deliveries) - budget,
        failed_attempts - (budget + 1),
        (dead.attempts - budget) if dead is not None else 0,
        max((f.attempt + 1 - budget for f in retried_late), default=0),  # retried at N: attempt N + 1 is coming
        0,
    )
    tally.retried_past_budget += len(retried_late)
    if extra:
        tally.tasks_beyond_budget += 1
        tally.attempts_beyond_budget += extra
        examples.add("beyond_budget", tid=tid, max_retries=budget, extra_attempts=extra,
                     highest_attempt=max(d.attempt for d in deliveries), failed_attempts=failed_attempts,
                     retried_at=[f.attempt for f in retried_late][:3])  # fmt: skip


def _judge_cap(
    index: HistoryIndex,
    context: CheckContext,
    tid: str,
    deliveries: list[Delivery],
    redis: list[Fault],
    tally: _Tally,
    examples: Examples,
) -> None:
    cap = context.delivery_cap
    for attempt, group in groupby(sorted(deliveries, key=lambda d: (d.attempt, d.ok_ns)), key=lambda d: d.attempt):
        handed = list(group)
        reported = max(d.deliveries for d in handed)
        tally.most_deliveries = max(tally.most_deliveries, reported, len(handed))
        if reported <= cap and len(handed) <= cap:
            continue
        if reported <= cap and (sum(d.deliveries == 1 for d in handed) > 1 or _rolled_back(index, handed, redis)):
            continue  # more than one entry, or a lease Redis may have forgotten: counted elsewhere
        tally.deliveries_beyond_cap += 1
        examples.add("beyond_delivery_cap", tid=tid, attempt=attempt, delivery_cap=cap, reported=reported,
                     seen=len(handed), by=[d.process for d in handed][-3:])  # fmt: skip


def _rolled_back(index: HistoryIndex, handed: list[Delivery], redis: list[Fault]) -> bool:
    first_ns, last_ns = handed[0].invoke_ns, handed[-1].ok_ns
    return any(f.start_ns <= last_ns and index.fault_end_ns(f) >= first_ns for f in redis)
