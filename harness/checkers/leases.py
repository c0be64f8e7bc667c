"""The exclusive-lease checker: a task is not handed to a second consumer while the first still holds a
fresh lease, whether or not either of them later manages to settle it.

A lease is fresh while its holder is alive, not paused, not cut off from Redis, and within the
visibility timeout (the run's pending_timeout_s) since it received the task. The pull consumer never
renews, so a lease certainly began no earlier than the holder's read was invoked and is certainly fresh
until that invoke plus the timeout. A handover is the same attempt handed out again with a higher
delivery count; it is early when the read that returned it ended before the previous holder's lease
could have run out (less a few milliseconds: Redis counts idle time in whole milliseconds on its own
clock). An early handover is explained, not a violation, when the holder was killed, exited, paused
or cut off by a network fault in between, when a Redis fault that may roll state back came in
between, or when the holder had already settled the task.

Hosted runs are not judged here: a library may read (and lease) a task well before its handler
starts, and a renewing library's promise is judged by the delivery checker's explanation of repeats.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from harness.checkers._report import NS_PER_MS, NS_PER_S, Examples, millis
from harness.checkers.base import CheckContext, CheckResult
from harness.checkers.index import CRASH_FAULTS, PAUSE_FAULTS, Delivery, Fault, HistoryIndex, is_redis_fault, targets
from harness.faults import FAULT_KINDS
from harness.history import OK

# Redis measures a lease's idle time in whole milliseconds of its own (wall) clock; ours is monotonic.
CLOCK_SLACK_NS = 5 * NS_PER_MS
_NETWORK_FAULTS = frozenset(kind.name for kind in FAULT_KINDS.values() if kind.role == "network")
_SETTLED = frozenset({OK, "retried", "dead"})


@dataclass(slots=True)
class _Tally:
    handovers: int = 0  # an attempt handed out again, to another consumer
    early: int = 0  # the violations: handed over while the lease was certainly fresh
    early_explained: int = 0
    earliest_ms: float | None = None  # the shortest time from a holder's read to its task's next handover


HOSTED_NOTE = (
    "not judged in a hosted run: the harness sees a handler start, not the read that took the lease "
    "(repeats while a renewing holder lives are the delivery checker's)"
)


def check_leases(index: HistoryIndex, context: CheckContext) -> CheckResult:
    if context.hosted:
        return CheckResult(name="leases", valid=True, note=HOSTED_NOTE)
    tally, examples = _Tally(), Examples()
    lease_ns = int(context.pending_timeout_s * NS_PER_S)
    excuses = [f for f in index.faults if _may_excuse(f)]
    for tid, deliveries in index.deliveries.items():
        if len(deliveries) < 2 or len({d.process for d in deliveries}) < 2:
            continue
        for held, handed in _handovers(deliveries):
            tally.handovers += 1
            gap_ms = millis(handed.ok_ns - held.invoke_ns)
            tally.earliest_ms = gap_ms if tally.earliest_ms is None else min(tally.earliest_ms, gap_ms)
            if handed.ok_ns >= held.invoke_ns + lease_ns - CLOCK_SLACK_NS:
                continue
            reason = _excuse(index, tid, held, handed, excuses)
            if reason:
                tally.early_explained += 1
                continue
            tally.early += 1
            examples.add("handed_over_while_fresh", tid=tid, holder=held.process, to=handed.process,
                         attempt=handed.attempt, deliveries=handed.deliveries, after_ms=gap_ms,
                         lease_ms=millis(lease_ns))  # fmt: skip
    return CheckResult(name="leases", valid=tally.early == 0, figures=asdict(tally), anomalies=examples.pick())


def _handovers(deliveries: list[Delivery]) -> list[tuple[Delivery, Delivery]]:
    """(previous holder's delivery, the next one) for each delivery that raised an attempt's count.

    The previous holder is found by count, not by when its read returned: a holder paused inside its
    read journals the answer after the handover. Of two with the same count (two copies), the one whose
    read began first: its lease is the first to run out, so the handover is judged most leniently."""
    found = []
    for handed in deliveries:
        if handed.deliveries < 2 or _copies(deliveries, handed.attempt) > 1:
            continue  # an attempt handed out afresh twice was stored twice: whose lease moved is unknown
        held = None
        for earlier in deliveries:
            if earlier.attempt != handed.attempt or earlier.deliveries >= handed.deliveries:
                continue
            if earlier.invoke_ns >= handed.ok_ns:
                continue  # read after the handover ended: not the lease it took (another copy's)
            if held is None or (earlier.deliveries, -earlier.invoke_ns) > (held.deliveries, -held.invoke_ns):
                held = earlier
        if held is not None and held.process != handed.process:
            found.append((held, handed))
    return found


def _copies(deliveries: list[Delivery], attempt: int) -> int:
    return sum(1 for d in deliveries if d.attempt == attempt and d.deliveries == 1)


def _may_excuse(fault: Fault) -> bool:
    kind = fault.kind
    return kind in CRASH_FAULTS or kind in PAUSE_FAULTS or kind in _NETWORK_FAULTS or is_redis_fault(kind)


def _excuse(index: HistoryIndex, tid: str, held: Delivery, handed: Delivery, faults: list[Fault]) -> str:
    """Why the task could be handed over early, or "" if nothing in the history says."""
    start_ns, end_ns = held.invoke_ns, handed.ok_ns
    if any(e.process == held.process and start_ns <= e.time_ns <= end_ns for e in index.exits):
        return "holder exited"
    for fault in faults:
        if fault.start_ns > end_ns or index.fault_end_ns(fault) < start_ns:
            continue
        if is_redis_fault(fault.kind):
            return "redis fault"
        if fault.kind in _NETWORK_FAULTS and _cuts_consumer(fault, held.process):
            return "holder cut off"
        if targets(fault.target, held.process) and fault.kind not in _NETWORK_FAULTS:
            return "holder killed or paused"
    settled = [*index.completions.get(tid, ()), *index.failures.get(tid, ())]
    if any(s.process == held.process and s.outcome in _SETTLED and s.invoke_ns < end_ns for s in settled):
        return "holder settled it"
    return ""


def _cuts_consumer(fault: Fault, process: str) -> bool:
    return fault.target in ("all", "consumers", "") or targets(fault.target, process)
