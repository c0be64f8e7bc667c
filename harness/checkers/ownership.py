"""The ownership checker: once the queue handed a task to another consumer, the earlier holder's ack or
fail is refused, for queues that promise ownership-checked settlement (taskq's headline promise).

A settlement (an ack, or a fail answered "retried" or "dead") settles the last delivery its process
received before invoking it. It came too late when, before it was invoked, a read of another process
had returned a later delivery of the same task: the same attempt handed out more times (a reclaim), or
a later attempt. Later is read from (attempt, deliveries), not from time, so a second copy of a task
(stored twice) does not make its first holder's ack a late one. A late settlement must be refused; one
the queue accepted is a violation, unless a Redis fault that may roll state back came between the
handover and the settlement (Redis may have forgotten the handover) or answered unknown.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from harness.checkers._report import Examples
from harness.checkers.base import CheckContext, CheckResult
from harness.checkers.index import REFUSED, Delivery, Fault, HistoryIndex, is_redis_fault
from harness.history import OK

_ACCEPTED_FAILS = frozenset({"retried", "dead"})


@dataclass(slots=True)
class _Tally:
    late_settlements: int = 0  # acks and fails invoked after the task had moved on to another consumer
    accepted: int = 0  # of those, the queue said done, retried or dead: the violations
    refused: int = 0
    unknown: int = 0  # the answer was lost
    accepted_after_redis_fault: int = 0
    tasks_handed_over: int = 0


@dataclass(frozen=True, slots=True)
class _Settlement:
    kind: str  # "ack" or "fail"
    process: str
    invoke_ns: int
    done_ns: int | None
    outcome: str  # "accepted", "refused" or "unknown"


HOSTED_NOTE = "not judged in a hosted run: a finish is the end of the handler, not an ack the queue answered"


def check_ownership(index: HistoryIndex, context: CheckContext) -> CheckResult:
    if context.hosted:
        return CheckResult(name="ownership", valid=True, note=HOSTED_NOTE)
    tally, examples = _Tally(), Examples()
    redis = [f for f in index.faults if is_redis_fault(f.kind)]
    for tid, deliveries in index.deliveries.items():
        if len(deliveries) < 2 or len({d.process for d in deliveries}) < 2:
            continue  # never handed to a second consumer: no late settlement possible
        tally.tasks_handed_over += 1
        for settlement in _settlements(index, tid):
            _judge(tid, deliveries, settlement, redis, index, tally, examples)
    promised = context.promises.ownership_checked
    note = "" if promised else "not judged: the queue does not promise ownership-checked ack and fail"
    valid = tally.accepted == 0 or not promised
    return CheckResult(name="ownership", valid=valid, figures=asdict(tally), anomalies=examples.pick(), note=note)


def _settlements(index: HistoryIndex, tid: str) -> list[_Settlement]:
    found = [
        _Settlement("ack", c.process, c.invoke_ns, c.done_ns, _ack_outcome(c.outcome))
        for c in index.completions.get(tid, ())
    ]
    found += [
        _Settlement("fail", f.process, f.invoke_ns, f.done_ns, _fail_outcome(f.outcome))
        for f in index.failures.get(tid, ())
    ]
    return found


def _ack_outcome(outcome: str) -> str:
    return {OK: "accepted", REFUSED: "refused"}.get(outcome, "unknown")


def _fail_outcome(outcome: str) -> str:
    if outcome in _ACCEPTED_FAILS:
        return "accepted"
    return "refused" if outcome == REFUSED else "unknown"


def _judge(
    tid: str,
    deliveries: list[Delivery],
    settlement: _Settlement,
    redis: list[Fault],
    index: HistoryIndex,
    tally: _Tally,
    examples: Examples,
) -> None:
    held = _settled_delivery(deliveries, settlement)
    if held is None:
        return  # its delivery was never seen (a read whose answer was lost): nothing to compare
    moved = _handover(deliveries, held, settlement)
    if moved is None:
        return
    tally.late_settlements += 1
    if settlement.outcome == "refused":
        tally.refused += 1
        return
    if settlement.outcome == "unknown":
        tally.unknown += 1
        return
    settled_ns = settlement.invoke_ns if settlement.done_ns is None else settlement.done_ns
    if any(f.start_ns <= settled_ns and index.fault_end_ns(f) >= moved.invoke_ns for f in redis):
        tally.accepted_after_redis_fault += 1
        return
    tally.accepted += 1
    examples.add(
        f"{settlement.kind}_accepted_after_handover", tid=tid, by=settlement.process, held=_lease(held),
        handed_to=moved.process, handed=_lease(moved), handed_ns=moved.ok_ns, settled_ns=settlement.invoke_ns,
    )  # fmt: skip


def _settled_delivery(deliveries: list[Delivery], settlement: _Settlement) -> Delivery | None:
    """The last delivery the settling process received before it invoked the settlement."""
    found = None
    for delivery in deliveries:
        if delivery.process == settlement.process and delivery.ok_ns <= settlement.invoke_ns:
            found = delivery
    return found


def _handover(deliveries: list[Delivery], held: Delivery, settlement: _Settlement) -> Delivery | None:
    """The first later delivery of the task to another process, returned before the settlement began and
    after the held one's read began (a handover of the held lease cannot come before it was taken). An
    attempt handed out afresh twice was stored twice: which copy a later count belongs to is unknown, so
    such an attempt is left to the stored-twice checker."""
    key = (held.attempt, held.deliveries)
    if sum(1 for d in deliveries if d.attempt == held.attempt and d.deliveries == 1) > 1:
        return None
    for delivery in deliveries:
        if (
            delivery.process != held.process
            and held.invoke_ns < delivery.ok_ns < settlement.invoke_ns
            and (delivery.attempt, delivery.deliveries) > key
        ):
            return delivery
    return None


def _lease(delivery: Delivery) -> dict[str, int]:
    return {"attempt": delivery.attempt, "deliveries": delivery.deliveries}
