"""The per-producer order checker: within one priority, a producer's later task is not handed out
before its earlier one, where the queue promises FIFO; and where a producer's acknowledged tasks went
missing, whether in the prefix, the middle or the postfix of its sequence (after Jepsen's NATS checker).

Producers number their tasks `p{producer}-{n}` in the order they send them. A is certainly before B
(same producer, same priority, n_A < n_B) when A's enqueue was acknowledged before B's was invoked, or
when both went in one enqueue call (the call stores them in order). Then B must not be handed out by
a read that ended before the read that handed out A began, nor ahead of A within one read. Only first
deliveries count, as for the order checker. Across reads, pairs acknowledged one before the other are
the order checker's (it compares the tasks of every producer alike); this one adds what only a
producer's numbering shows: the tasks of one enqueue call, and the order inside one read.

A loss here is a task whose enqueue was acknowledged and that no consumer ever received, that is not
dead-lettered and not still queued at the end (the leaks checker's). Placed in its producer's sequence
of acknowledged tasks: before the first task received (prefix), after the last (postfix), or between
two received ones (middle). A middle loss is a hole the queue skipped over, the worst kind; a postfix
loss may be a tail that never got stored. These are figures: the delivery checker judges losses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from operator import itemgetter
from typing import Final, NamedTuple

from harness.checkers._report import Examples
from harness.checkers.base import CheckContext, CheckResult
from harness.checkers.index import HistoryIndex
from harness.history import OK

_new: Final = tuple.__new__  # a NamedTuple without its Python-level __new__, as the index builds its records


@dataclass(slots=True)
class _Tally:
    violations: int = 0
    pairs_checked: int = 0  # pairs of one enqueue call compared across reads
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
    seq: int  # its place in the index's first deliveries: within one read, the order the read listed it
    reader: str  # with the read's times, which read it was


@dataclass(slots=True)
class _Sequences:
    """Each (producer, priority)'s first deliveries, and the groups where one read listed a lower n
    after a higher one (the only ones whose reads need a closer look)."""

    rows: dict[tuple[str, int], list[_Row]] = field(default_factory=dict)
    suspect: set[tuple[str, int]] = field(default_factory=set)


def check_producer_order(index: HistoryIndex, context: CheckContext) -> CheckResult:
    tally, examples = _Tally(), Examples()
    judged = context.expect.check_fifo and context.promises.fifo
    sequences = _sequences(index)
    if judged:
        for (producer, prio), rows in sorted(sequences.rows.items()):
            if (producer, prio) in sequences.suspect:
                _check_within_reads(producer, prio, rows, tally, examples)
            _check_calls(producer, prio, rows, tally, examples)
    _count_losses(index, {producer for producer, _ in sequences.rows}, tally, examples)
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


def _sequences(index: HistoryIndex) -> _Sequences:
    """One pass over the first deliveries, which the index gathered read by read, each read's tasks in the
    order it listed them, except those whose enqueue was answered after their read: matched at the end,
    their place in their read is unknown, and they are left out of the comparisons inside one read (a
    blind spot, never a false alarm: such a task can only be the later of a certain pair, since its
    enqueue was not answered before its read)."""
    found = _Sequences()
    rows, suspect = found.rows, found.suspect
    # The index appends the late-matched after all the others, so a group's previous row is in place too.
    for seq, (tid, prio, enqueue_invoke_ns, enqueue_ok_ns, read_invoke_ns, read_ok_ns, is_first, reader) in enumerate(
        index.first_deliveries
    ):
        parsed = parse_tid(tid) if is_first else None
        if parsed is None:
            continue
        key, n = (parsed[0], prio), parsed[1]
        row = _new(_Row, (n, enqueue_invoke_ns, enqueue_ok_ns, read_invoke_ns, read_ok_ns, tid, seq, reader))
        group = rows.get(key)
        if group is None:
            rows[key] = [row]
            continue
        previous = group[-1]
        group.append(row)
        # Same read (its end, start and reader), a lower n listed later, both in their place: look closer.
        same_read = read_ok_ns == previous[4] and read_invoke_ns == previous[3] and reader == previous[7]
        if n < previous[0] and same_read and enqueue_ok_ns <= read_ok_ns and previous[2] <= previous[4]:
            suspect.add(key)
    return found


def _check_within_reads(producer: str, prio: int, rows: list[_Row], tally: _Tally, examples: Examples) -> None:
    """One read listing a later task ahead of an earlier one that was certainly stored first."""
    in_place = sorted((r for r in rows if r.enqueue_ok_ns <= r.read_ok_ns), key=itemgetter(4, 3, 7, 6))
    start = 0
    for end in range(1, len(in_place) + 1):
        if end < len(in_place) and _read_of(in_place[end]) == _read_of(in_place[start]):
            continue
        for first, then in _inversions(in_place[start:end]):
            tally.violations += 1
            examples.add("out_of_order_in_one_read", producer=producer, prio=prio, handed_first=first.tid,
                         then=then.tid, read_ok_ns=first.read_ok_ns)  # fmt: skip
        start = end


def _read_of(row: _Row) -> tuple[int, int, str]:
    return row.read_invoke_ns, row.read_ok_ns, row.reader


def _inversions(run: list[_Row]) -> Iterable[tuple[_Row, _Row]]:
    """(listed first, listed later) pairs of one read where the later-listed was certainly stored first."""
    for i, first in enumerate(run):
        for then in run[i + 1 :]:
            if then.n < first.n and _certainly_before(then, first):
                yield first, then


def _certainly_before(a: _Row, b: _Row) -> bool:
    """A was stored before B: acknowledged before B was sent, or earlier in the same enqueue call."""
    same_call = a.enqueue_invoke_ns == b.enqueue_invoke_ns and a.enqueue_ok_ns == b.enqueue_ok_ns
    return a.enqueue_ok_ns < b.enqueue_invoke_ns or (same_call and a.n < b.n)


def _check_calls(producer: str, prio: int, rows: list[_Row], tally: _Tally, examples: Examples) -> None:
    """The tasks of one enqueue call across reads: sorted by n, a call's tasks are a run (a producer
    numbers each batch's tasks in a row), and the latest read start among a task's predecessors in its
    call must not come after its own read ended."""
    rows.sort()  # by n, unique in a group: tuples compare on it alone, no key function
    call_invoke = call_ok = call_start = -1
    pairs = in_call = 0
    # One iteration per task: plain locals and tuple unpacking (a NamedTuple attribute is a call).
    for n, enqueue_invoke_ns, enqueue_ok_ns, read_invoke_ns, read_ok_ns, tid, _, _ in rows:
        if enqueue_ok_ns != call_ok or enqueue_invoke_ns != call_invoke:
            call_invoke, call_ok, call_start, in_call = enqueue_invoke_ns, enqueue_ok_ns, -1, 0
        pairs += in_call
        in_call += 1
        if call_start > read_ok_ns:
            tally.violations += 1
            examples.add("overtaken_in_its_call", producer=producer, prio=prio, overtaker=tid, n=n,
                         overtaker_read_ok_ns=read_ok_ns, overtaken_read_invoke_ns=call_start)  # fmt: skip
        call_start = max(call_start, read_invoke_ns)
    tally.pairs_checked += pairs


def _count_losses(index: HistoryIndex, producers: set[str], tally: _Tally, examples: Examples) -> None:
    final, enqueues, completions = index.final, index.enqueues, index.completions
    unseen = enqueues.keys() - index.deliveries.keys()  # nearly every task was delivered: a set difference in C
    lost: dict[str, tuple[str, int]] = {}
    for tid in unseen:
        parsed = parse_tid(tid)
        if parsed is None or enqueues[tid].outcome != OK or tid in completions or index.is_dead(tid):
            continue
        if final is None or tid not in final.left:  # still queued: a leak, not a loss
            lost[tid] = parsed
    losing = {producer for producer, _ in lost.values()}
    tally.producers = len(producers | losing)
    if not lost:
        return
    by_producer: dict[str, list[tuple[int, str, bool]]] = {}
    for tid, enqueue in enqueues.items():
        parsed = lost.get(tid) or parse_tid(tid)
        if parsed is None or parsed[0] not in losing or enqueue.outcome != OK:
            continue
        received = tid not in unseen or tid in completions or index.is_dead(tid)
        if received or tid in lost:
            by_producer.setdefault(parsed[0], []).append((parsed[1], tid, received))
    for producer, sequence in sorted(by_producer.items()):
        sequence.sort()
        places = _place_losses(sequence)
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
