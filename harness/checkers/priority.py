"""The priority checker: no read hands out a task while a higher-priority one has been ready for longer
than the slack.

Only first deliveries count (attempt 0, handed out once): retries and reclaims follow other paths.
A waiting task is one whose enqueue was acknowledged before the read began (minus the slack) and whose
first delivery came from a read invoked after this read returned; reads that overlap are concurrent
and prove nothing either way. Tasks never seen delivered are left to the delivery and leaks checkers:
counting them here would turn one loss into an inversion for every later read.
"""

from __future__ import annotations

import heapq

from harness.checkers._report import NS_PER_MS, Examples, millis
from harness.checkers.base import CheckContext, CheckResult, unpromised
from harness.checkers.index import HistoryIndex, Read
from harness.checkers.topology import TwoPrimaries

# (enqueue ok ns, invoke ns of the read that first delivered it, tid)
_Waiting = tuple[int, int, str]


def check_priority(index: HistoryIndex, context: CheckContext) -> CheckResult:
    slack_ns = int(context.expect.priority_slack_ms * NS_PER_MS)
    two_primaries = TwoPrimaries(index)
    sweep = _Sweep(_arrivals(index, slack_ns, two_primaries))
    examples = Examples()
    checked = inversions = worst_ns = 0
    for read in sorted(index.reads, key=lambda r: r.invoke_ns):
        firsts = [d for d in read.tasks if d.is_first]
        if not firsts:
            continue
        checked += 1
        lowest = max(d.prio for d in firsts)
        found = sweep.oldest_waiting(read, lowest)
        if found is None:
            continue
        inversions += 1
        wait_ns = read.ok_ns - found[1][0]
        worst_ns = max(worst_ns, wait_ns)
        examples.add("inversion", read_by=read.process, read_ok_ns=read.ok_ns, delivered_prio=lowest,
                     delivered=[d.tid for d in firsts if d.prio == lowest][:3], waiting=found[1][2],
                     waiting_prio=found[0], waited_ms=millis(wait_ns))  # fmt: skip
    valid = inversions <= context.expect.max_priority_inversions
    figures = {"reads_checked": checked, "inversions": inversions, "worst_wait_ms": millis(worst_ns)}
    if two_primaries:
        figures["left_out_two_primaries"] = sum(two_primaries.holds(row[3]) for row in index.first_deliveries)
    result = CheckResult(name="priority", valid=valid, figures=figures, anomalies=examples.pick())
    return result if context.promises.priorities else unpromised(result, "strict priorities")


def _arrivals(index: HistoryIndex, slack_ns: int, two_primaries: TwoPrimaries) -> list[tuple[int, int, _Waiting]]:
    """Tasks that could have waited, by when they must be served: (enqueue ok + slack, prio, waiting).

    A task waits at a read only if it was taken after enqueue ok + slack, so the tasks a healthy queue
    serves at once never enter the sweep. Its enqueue must be acknowledged and its first delivery seen
    (one lost with a dead reader shows up later as deliveries > 1), and not acknowledged while two
    primaries took writes (harness/checkers/topology.py).
    """
    arrivals = []
    for tid, prio, _, ok_ns, read_invoke_ns, _, is_first, _ in index.first_deliveries:
        due_ns = ok_ns + slack_ns
        if read_invoke_ns > due_ns and is_first and not (two_primaries and two_primaries.holds(ok_ns)):
            arrivals.append((due_ns, prio, (ok_ns, read_invoke_ns, tid)))
    arrivals.sort()
    return arrivals


class _Sweep:
    """Per-priority heaps of tasks ready to be served, oldest enqueue first, swept by read invoke time."""

    __slots__ = ("_arrivals", "_heaps", "_next")

    def __init__(self, arrivals: list[tuple[int, int, _Waiting]]) -> None:
        self._arrivals = arrivals
        self._next = 0
        self._heaps: dict[int, list[_Waiting]] = {}

    def oldest_waiting(self, read: Read, lowest: int) -> tuple[int, _Waiting] | None:
        arrivals, heaps = self._arrivals, self._heaps
        while self._next < len(arrivals) and arrivals[self._next][0] < read.invoke_ns:
            _, prio, waiting = arrivals[self._next]
            self._next += 1
            # A task taken before this read began can wait for no later read either.
            if waiting[1] >= read.invoke_ns:
                heapq.heappush(heaps.setdefault(prio, []), waiting)
        return _oldest_waiting(heaps, lowest, read) if heaps else None


def _oldest_waiting(heaps: dict[int, list[_Waiting]], lowest: int, read: Read) -> tuple[int, _Waiting] | None:
    """The oldest task of a priority above `lowest` still waiting when `read` returned, with its priority."""
    oldest: tuple[int, _Waiting] | None = None
    for prio, heap in heaps.items():
        if prio >= lowest:
            continue
        waiting = _oldest_in(heap, read)
        if waiting is not None and (oldest is None or waiting[0] < oldest[1][0]):
            oldest = (prio, waiting)
    return oldest


def _oldest_in(heap: list[_Waiting], read: Read) -> _Waiting | None:
    # Reads are swept by invoke time, so a task taken before this read began is gone for good (lazy
    # deletion); tasks taken by reads overlapping this one are set aside and put back.
    aside: list[_Waiting] = []
    found = None
    while heap:
        top = heap[0]
        if top[1] < read.invoke_ns:
            heapq.heappop(heap)
        elif top[1] <= read.ok_ns:
            aside.append(heapq.heappop(heap))
        else:
            found = top
            break
    for waiting in aside:
        heapq.heappush(heap, waiting)
    return found
