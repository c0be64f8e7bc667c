"""The per-producer order checker: within one priority, a producer's later task is not handed out
before its earlier one, where the queue promises FIFO; and where a producer's acknowledged tasks went
missing, whether in the prefix, the middle or the postfix of its sequence (after Jepsen's NATS checker).

Producers number their tasks `p{producer}-{n}` in the order they send them. A is certainly before B
(same producer, same priority, n_A < n_B) when A's enqueue was acknowledged before B's was invoked, or
when both went in one enqueue call (the call stores them in order). Then B must not be handed out by
a read that ended before the read that handed out A began, nor ahead of A within one read. Only first
deliveries count, as for the order checker.

A loss here is a task whose enqueue was acknowledged and that no consumer ever received, that is not
dead-lettered and not still queued at the end (the leaks checker's). Placed in its producer's sequence
of acknowledged tasks: before the first task received (prefix), after the last (postfix), or between
two received ones (middle). A middle loss is a hole the queue skipped over, the worst kind; a postfix
loss may be a tail that never got stored. These are figures: the delivery checker judges losses.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from itertools import accumulate, pairwise
from operator import itemgetter
from typing import Final, NamedTuple

from harness.checkers._report import Examples
from harness.checkers.base import CheckContext, CheckResult
from harness.checkers.index import Enqueue, HistoryIndex
from harness.history import OK

_new: Final = tuple.__new__  # a NamedTuple without its Python-level __new__, as the index builds its records


@dataclass(slots=True)
class _Tally:
    violations: int = 0
    pairs_checked: int = 0
    lost_prefix: int = 0
    lost_middle: int = 0
    lost_postfix: int = 0
    producers: int = 0
    # Per producer: its losses by place, for the producers that lost any.
    losses_by_producer: dict[str, dict[str, int]] = field(default_factory=dict)


class _Row(NamedTuple):
    """A producer's task with the read that first handed it out."""

    n: int
    enqueue_invoke_ns: int
    enqueue_ok_ns: int
    read_invoke_ns: int
    read_ok_ns: int
    tid: str


def check_producer_order(index: HistoryIndex, context: CheckContext) -> CheckResult:
    tally, examples = _Tally(), Examples()
    judged = context.expect.check_fifo and context.promises.fifo
    ids = _producer_ids(index)
    if judged:
        for (producer, prio), rows in sorted(_sequences(index, ids).items()):
            _check_sequence(producer, prio, rows, tally, examples)
        _check_within_reads(index, ids, tally, examples)
    _count_losses(index, ids, tally, examples)
    note = "" if judged else "order not judged: the scenario or the queue does not promise FIFO"
    return CheckResult(name="producer_order", valid=tally.violations == 0 or not judged, figures=asdict(tally),
                       anomalies=examples.pick(), note=note)  # fmt: skip


def parse_tid(tid: str) -> tuple[str, int] | None:
    """(producer, n) of a harness producer's task id, or None for any other id."""
    if not tid.startswith("p"):
        return None
    producer, dash, n = tid[1:].partition("-")  # string methods: a regex costs twice as much per task
    if not dash or not producer.isdecimal() or not n.isdecimal():
        return None
    return producer, int(n)


def _producer_ids(index: HistoryIndex) -> dict[str, tuple[str, int]]:
    """(producer, n) of every enqueued task with a producer's id, parsed once."""
    ids = {}
    for tid in index.enqueues:
        parsed = parse_tid(tid)
        if parsed is not None:
            ids[tid] = parsed
    return ids


def _sequences(index: HistoryIndex, ids: dict[str, tuple[str, int]]) -> dict[tuple[str, int], list[_Row]]:
    rows: dict[tuple[str, int], list[_Row]] = {}
    for tid, prio, enqueue_invoke_ns, enqueue_ok_ns, read_invoke_ns, read_ok_ns, is_first in index.first_deliveries:
        parsed = ids.get(tid) if is_first else None
        if parsed is not None:
            row = _new(_Row, (parsed[1], enqueue_invoke_ns, enqueue_ok_ns, read_invoke_ns, read_ok_ns, tid))
            rows.setdefault((parsed[0], prio), []).append(row)
    return rows


def _check_sequence(producer: str, prio: int, rows: list[_Row], tally: _Tally, examples: Examples) -> None:
    """Pairs across reads, in O(n log n): the latest read start among the tasks certainly before B must
    not come after B's read ended. Certainly before: acknowledged before B was sent (a prefix when sorted
    by acknowledgement), or earlier in B's own enqueue call."""
    rows.sort(key=itemgetter(2, 0))  # by acknowledgement, then n
    acknowledged = [r.enqueue_ok_ns for r in rows]
    latest_start = list(accumulate((r.read_invoke_ns for r in rows), max))
    same_call_start = _same_call_latest_starts(rows)
    for position, row in enumerate(rows):
        before = bisect_left(acknowledged, row.enqueue_invoke_ns)
        tally.pairs_checked += before
        overtaken_ns = max(latest_start[before - 1] if before else -1, same_call_start[position])
        if overtaken_ns > row.read_ok_ns:
            tally.violations += 1
            examples.add("overtaken", producer=producer, prio=prio, overtaker=row.tid,
                         overtaker_read_ok_ns=row.read_ok_ns, overtaken_read_invoke_ns=overtaken_ns)  # fmt: skip


def _same_call_latest_starts(rows: list[_Row]) -> list[int]:
    """Per row (in the given order): the latest read start among the earlier tasks of its own call."""
    latest = [-1] * len(rows)
    calls: dict[tuple[int, int], list[int]] = {}
    for position, row in enumerate(rows):
        calls.setdefault((row.enqueue_invoke_ns, row.enqueue_ok_ns), []).append(position)
    for positions in calls.values():
        if len(positions) < 2:
            continue
        positions.sort(key=lambda p: rows[p].n)
        running = -1
        for p in positions:
            latest[p] = running
            running = max(running, rows[p].read_invoke_ns)
    return latest


def _check_within_reads(
    index: HistoryIndex, ids: dict[str, tuple[str, int]], tally: _Tally, examples: Examples
) -> None:
    """One read handing out a producer's tasks of one priority out of their certain order."""
    enqueues = index.enqueues
    for read in index.reads:
        if len(read.tasks) < 2:
            continue
        seen: dict[tuple[str, int], list[tuple[int, str]]] = {}
        for delivery in read.tasks:
            parsed = ids.get(delivery.tid) if delivery.is_first else None
            if parsed is not None:
                seen.setdefault((parsed[0], delivery.prio), []).append((parsed[1], delivery.tid))
        for (producer, prio), listed in seen.items():
            if all(a[0] < b[0] for a, b in pairwise(listed)):
                continue  # in the producer's order: the common case
            for earlier, later in _inversions(listed, enqueues):
                tally.violations += 1
                examples.add("out_of_order_in_one_read", producer=producer, prio=prio, handed_first=later,
                             then=earlier, read_ok_ns=read.ok_ns)  # fmt: skip


def _inversions(listed: list[tuple[int, str]], enqueues: dict[str, Enqueue]) -> Iterable[tuple[str, str]]:
    """(earlier task, later task) pairs where the later one came first in the read and the earlier one was
    certainly stored first."""
    for i, (n_first, tid_first) in enumerate(listed):
        for n_then, tid_then in listed[i + 1 :]:
            if n_then < n_first and _certainly_before(enqueues.get(tid_then), enqueues.get(tid_first)):
                yield tid_then, tid_first


def _certainly_before(a: Enqueue | None, b: Enqueue | None) -> bool:
    if a is None or b is None or a.ok_ns is None or b.ok_ns is None:
        return False
    return a.ok_ns < b.invoke_ns or (a.invoke_ns == b.invoke_ns and a.ok_ns == b.ok_ns)


def _count_losses(index: HistoryIndex, ids: dict[str, tuple[str, int]], tally: _Tally, examples: Examples) -> None:
    final, enqueues = index.final, index.enqueues
    by_producer: dict[str, list[tuple[int, str, bool]]] = {}
    for tid, parsed in ids.items():
        if enqueues[tid].outcome != OK:
            continue
        received = tid in index.deliveries or tid in index.completions or index.is_dead(tid)
        if not received and final is not None and tid in final.left:
            continue  # still queued: a leak, not a loss
        by_producer.setdefault(parsed[0], []).append((parsed[1], tid, received))
    tally.producers = len(by_producer)
    for producer, sequence in sorted(by_producer.items()):
        sequence.sort()
        places = _place_losses(sequence)
        if places:
            tally.losses_by_producer[producer] = {place: len(tids) for place, tids in places.items()}
        for place, tids in places.items():
            setattr(tally, f"lost_{place}", getattr(tally, f"lost_{place}") + len(tids))
            examples.add(f"lost_{place}", producer=producer, tids=tids[:5], count=len(tids))


def _place_losses(sequence: list[tuple[int, str, bool]]) -> dict[str, list[str]]:
    """Lost tasks of one producer's acknowledged sequence by place: prefix, middle or postfix. A producer
    none of whose tasks was received has only a postfix (nothing after it was seen either)."""
    received = [n for n, _, got in sequence if got]
    first, last = (received[0], received[-1]) if received else (None, None)
    places: dict[str, list[str]] = {}
    for n, tid, got in sequence:
        if got:
            continue
        if first is None or last is None or n > last:
            place = "postfix"
        elif n < first:
            place = "prefix"
        else:
            place = "middle"
        places.setdefault(place, []).append(tid)
    return places
