"""The retry checker: attempt numbers rise by one and never reset, delivery counts rise within an
attempt, and a task keeps its id.

Per task (keyed by the tid in its payload): once a failed attempt N was answered "retried", or attempt
N+1 was handed out, no read invoked afterwards may hand out attempt N or lower; attempt N+1 is handed
out only after a fail of attempt N was invoked; the id delivered equals the tid in the payload.
A reset that follows a Redis fault is counted apart: Redis may have rolled its state back.

Delivery counts are what a delivery cap counts (crash redeliveries): a delivery that was never settled
and is handed out again in the same attempt must come back with a higher count, or a task that kills
every worker that runs it is never dead-lettered (`delivery_count_resets`). A holder stopped with
SIGTERM may hand its tasks back as new (taskq's release), and Redis faults may roll counts back: those
are not counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

from harness.checkers._report import Examples
from harness.checkers.base import CheckContext, CheckResult
from harness.checkers.index import Completion, Delivery, Failure, HistoryIndex, is_redis_fault
from harness.checkers.stored_twice import handed_back
from harness.history import OK


@dataclass(slots=True)
class _Tally:
    tasks_checked: int = 0
    retries_observed: int = 0
    resets: int = 0
    resets_after_redis_fault: int = 0
    id_changes: int = 0
    attempts_without_failure: int = 0
    delivery_count_resets: int = 0


def check_retry(index: HistoryIndex, context: CheckContext) -> CheckResult:
    tally, examples = _Tally(), Examples()
    redis = [(f.start_ns, index.fault_end_ns(f)) for f in index.faults if is_redis_fault(f.kind)]
    released = {tid for f in index.faults if f.kind == "term" for tid in f.held}
    no_failures: list[Failure] = []
    for tid, deliveries in index.deliveries.items():
        tally.tasks_checked += 1
        failures = index.failures.get(tid, no_failures)
        if len(deliveries) == 1 and not failures and deliveries[0].attempt == 0 and deliveries[0].delivered_tid == tid:
            continue  # the common case, delivered once and done: nothing to compare
        _judge_task(tid, deliveries, failures, redis, tally, examples)
        if tid not in released:
            settled = _settled_by(index.completions.get(tid, ()), failures)
            for delivery, earlier in _count_resets(deliveries, settled, redis):
                if context.hosted and handed_back(index, tid, [earlier, delivery]):
                    continue  # a stopping worker gave the task up and re-added it, as a new entry
                tally.delivery_count_resets += 1
                examples.add("delivery_count_reset", tid=tid, attempt=delivery.attempt, count=delivery.deliveries,
                             earlier_count=earlier.deliveries, earlier_holder=earlier.process, by=delivery.process,
                             at_ns=delivery.ok_ns)  # fmt: skip
    valid = not (tally.resets or tally.id_changes or tally.attempts_without_failure or tally.delivery_count_resets)
    return CheckResult(name="retry", valid=valid, figures=asdict(tally), anomalies=examples.pick())


def _judge_task(
    tid: str,
    deliveries: list[Delivery],
    failures: list[Failure],
    redis: list[tuple[int, int]],
    tally: _Tally,
    examples: Examples,
) -> None:
    renamed = sorted({d.delivered_tid for d in deliveries if d.delivered_tid != tid})
    if renamed:
        tally.id_changes += 1
        examples.add("id_change", tid=tid, delivered_as=renamed[:3])
    tally.retries_observed += len({d.attempt for d in deliveries if d.attempt > 0})
    for delivery, floor, since_ns in _resets(deliveries, failures):
        if any(start <= delivery.ok_ns and end >= since_ns for start, end in redis):
            tally.resets_after_redis_fault += 1
            continue
        tally.resets += 1
        examples.add("reset", tid=tid, attempt=delivery.attempt, expected_at_least=floor, by=delivery.process,
                     at_ns=delivery.ok_ns)  # fmt: skip
    for attempt, ok_ns in _unearned(deliveries, failures):
        tally.attempts_without_failure += 1
        examples.add("attempt_without_failure", tid=tid, attempt=attempt, delivered_ns=ok_ns)


def _resets(deliveries: list[Delivery], failures: list[Failure]) -> list[tuple[Delivery, int, int]]:
    """(delivery, lowest attempt it should have carried, time that floor was first set) per going-back."""
    floors = [(f.done_ns, f.attempt + 1) for f in failures if f.outcome == "retried" and f.done_ns is not None]
    floors.extend((d.ok_ns, d.attempt) for d in deliveries)
    found = []
    for delivery in deliveries:
        broken = [(at_ns, floor) for at_ns, floor in floors if at_ns < delivery.invoke_ns and floor > delivery.attempt]
        if broken:
            found.append((delivery, max(floor for _, floor in broken), min(at_ns for at_ns, _ in broken)))
    return found


def _unearned(deliveries: list[Delivery], failures: list[Failure]) -> list[tuple[int, int]]:
    """(attempt, first delivery ns) for attempts handed out before any fail of the attempt below was invoked."""
    first_seen: dict[int, int] = {}
    for delivery in deliveries:
        if delivery.attempt > 0:
            seen = first_seen.get(delivery.attempt)
            first_seen[delivery.attempt] = delivery.ok_ns if seen is None else min(seen, delivery.ok_ns)
    return [
        (attempt, ok_ns)
        for attempt, ok_ns in sorted(first_seen.items())
        if not any(f.attempt == attempt - 1 and f.invoke_ns < ok_ns for f in failures)
    ]


def _settled_by(completions: Iterable[Completion], failures: list[Failure]) -> list[tuple[str, int]]:
    """(process, invoke ns) of every settle the queue accepted: an ack, or a fail it retried or buried."""
    done = [(c.process, c.invoke_ns) for c in completions if c.outcome == OK]
    return done + [(f.process, f.invoke_ns) for f in failures if f.outcome in ("retried", "dead")]


def _count_resets(
    deliveries: list[Delivery], settled: list[tuple[str, int]], redis: list[tuple[int, int]]
) -> list[tuple[Delivery, Delivery]]:
    """(delivery, the earlier one it should have outcounted) for each delivery of an attempt that came
    back with a count no higher than an earlier, never settled delivery of the same attempt received
    before its read began."""
    found = []
    for position, delivery in enumerate(deliveries):
        if delivery.deliveries < 1:
            continue  # the queue does not say how often it handed the task out
        for earlier in deliveries[:position]:
            if (
                earlier.attempt == delivery.attempt
                and earlier.ok_ns < delivery.invoke_ns
                and delivery.deliveries <= earlier.deliveries
                and not any(p == earlier.process and at_ns > earlier.ok_ns for p, at_ns in settled)
                and not any(start <= delivery.ok_ns and end >= earlier.ok_ns for start, end in redis)
            ):
                found.append((delivery, earlier))
                break
    return found
