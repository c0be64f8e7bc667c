"""The stored-twice checker: one enqueue (or one retry) stored as two entries, which Jepsen's kafka
checker calls a duplicate write. It is reported apart from redelivery, which is one entry handed out
again after its lease ran out.

A queue hands out a fresh entry with a delivery count of 1; a redelivery of the same entry counts up.
So one attempt of a task handed out twice with a count of 1 both times was stored twice (a blind
resend of an enqueue whose answer was lost, a retry written twice). So was a task that the final
read found in two places, or twice in one. A Redis fault that may roll state back, between the two
first deliveries, explains a second one (a rolled-back read hands the entry out afresh): those are
counted apart. So, in hosted runs, is a copy after the first holder's worker stopped, was hit, or
cancelled the run: a library's worker hands back what it gives up (taskq's release re-adds it afresh).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from harness.checkers._report import Examples
from harness.checkers.base import CheckContext, CheckResult
from harness.checkers.index import Delivery, Fault, HistoryIndex, is_redis_fault, targets


@dataclass(slots=True)
class _Tally:
    stored_twice: int = 0  # tasks with an attempt stored more than once: the violations
    extra_entries: int = 0  # how many entries too many, over those tasks
    in_final_state_twice: int = 0
    after_redis_fault: int = 0
    handed_back: int = 0  # hosted: a copy after its first holder's worker stopped or cancelled it (a release)
    redelivered: int = 0  # tasks handed out again from the same entry (counts above 1): for contrast


def check_stored_twice(index: HistoryIndex, context: CheckContext) -> CheckResult:
    tally, examples = _Tally(), Examples()
    redis = [f for f in index.faults if is_redis_fault(f.kind)]
    flagged: set[str] = set()
    for tid, deliveries in index.deliveries.items():
        if len(deliveries) < 2:
            continue
        tally.redelivered += any(d.deliveries > 1 for d in deliveries)
        for attempt, fresh in _fresh_by_attempt(deliveries).items():
            if len(fresh) < 2:
                continue
            if _rolled_back(index, fresh, redis):
                tally.after_redis_fault += 1
                continue
            if context.hosted and handed_back(index, tid, fresh):
                tally.handed_back += 1
                continue
            if tid not in flagged:
                flagged.add(tid)
                tally.stored_twice += 1
            tally.extra_entries += len(fresh) - 1
            examples.add("stored_twice", tid=tid, attempt=attempt, copies=len(fresh), by=[d.process for d in fresh][:4],
                         at_ns=[d.ok_ns for d in fresh][:4])  # fmt: skip
    for tid in index.final.repeated if index.final is not None else ():
        tally.in_final_state_twice += 1
        if tid not in flagged:
            flagged.add(tid)
            tally.stored_twice += 1
            examples.add("in_final_state_twice", tid=tid)
    return CheckResult(name="stored_twice", valid=tally.stored_twice == 0, figures=asdict(tally),
                       anomalies=examples.pick())  # fmt: skip


def _fresh_by_attempt(deliveries: list[Delivery]) -> dict[int, list[Delivery]]:
    """Each attempt's deliveries with a count of 1: entries handed out for the first time."""
    found: dict[int, list[Delivery]] = {}
    for delivery in deliveries:
        if delivery.deliveries == 1:
            found.setdefault(delivery.attempt, []).append(delivery)
    return found


def handed_back(index: HistoryIndex, tid: str, fresh: list[Delivery]) -> bool:
    """Hosted: a worker that stops (SIGTERM) or gives a running task up hands it back as a fresh entry
    (taskq's release), so a second first delivery follows a cancelled run, or a fault or an exit of the
    earlier holder's worker, between the two."""
    holder, start_ns, end_ns = worker_of(fresh[0].process), fresh[0].invoke_ns, fresh[-1].ok_ns
    if any(f.outcome == "cancelled" and worker_of(f.process) == holder for f in index.failures.get(tid, ())):
        return True
    if any(worker_of(e.process) == holder and start_ns <= e.time_ns <= end_ns for e in index.exits):
        return True
    return any(
        targets(f.target, holder) and f.start_ns <= end_ns and index.fault_end_ns(f) >= start_ns for f in index.faults
    )


def worker_of(process: str) -> str:
    """The consumer a process belongs to: a hosted handler's lane "consumer-2#3.<pid>.<n>" is its worker's."""
    return process.split(".", 1)[0]


def _rolled_back(index: HistoryIndex, fresh: list[Delivery], redis: list[Fault]) -> bool:
    """A Redis fault that may have lost state came between two of the first deliveries."""
    first_ns, last_ns = fresh[0].invoke_ns, fresh[-1].ok_ns
    return any(f.start_ns <= last_ns and index.fault_end_ns(f) >= first_ns for f in redis)
