"""The order checker: FIFO within one priority.

If A's enqueue was acknowledged before B's enqueue was invoked (same priority), then B must not have
been handed out by a read that returned before the read that handed out A was invoked. Only first
deliveries count, as for priority; reads that overlap prove nothing.
"""

from __future__ import annotations

from bisect import bisect_left
from itertools import accumulate

from harness.checkers._report import Examples
from harness.checkers.base import CheckContext, CheckResult, unpromised
from harness.checkers.index import HistoryIndex
from harness.checkers.topology import TwoPrimaries

# (enqueue ok ns, enqueue invoke ns, invoke ns and ok ns of the read that first delivered it, tid)
_Row = tuple[int, int, int, int, str]


def check_order(index: HistoryIndex, context: CheckContext) -> CheckResult:
    if not context.expect.check_fifo:
        return CheckResult(name="order", valid=True, note="not checked: the scenario does not promise FIFO")
    result = _check_order(index)
    return result if context.promises.fifo else unpromised(result, "FIFO")


def _check_order(index: HistoryIndex) -> CheckResult:
    examples = Examples()
    pairs = violations = 0
    two_primaries = TwoPrimaries(index)
    for prio, rows in sorted(_by_priority(index, two_primaries).items()):
        checked, found = _check_one_priority(prio, rows, examples)
        pairs += checked
        violations += found
    figures = {"pairs_checked": pairs, "violations": violations}
    if two_primaries:
        figures["left_out_two_primaries"] = sum(two_primaries.holds(row[3]) for row in index.first_deliveries)
    return CheckResult(name="order", valid=violations == 0, figures=figures, anomalies=examples.pick())


def _by_priority(index: HistoryIndex, two_primaries: TwoPrimaries) -> dict[int, list[_Row]]:
    rows: dict[int, list[_Row]] = {}
    for tid, prio, enqueue_invoke_ns, enqueue_ok_ns, read_invoke_ns, read_ok_ns, is_first, _ in index.first_deliveries:
        if not is_first:
            continue  # its first delivery went to a reader that died: when it was taken is unknown
        if two_primaries and two_primaries.holds(enqueue_ok_ns):
            continue  # enqueued while two primaries took writes: FIFO is a promise of one server
        group = rows.get(prio)
        if group is None:
            group = rows[prio] = []
        group.append((enqueue_ok_ns, enqueue_invoke_ns, read_invoke_ns, read_ok_ns, tid))
    return rows


def _check_one_priority(prio: int, rows: list[_Row], examples: Examples) -> tuple[int, int]:
    """(pairs compared, tasks overtaken) for one priority, in O(n log n).

    Sorted by enqueue ok, a prefix holds every A that certainly went in before a given B; the latest
    read start among them is the one B's read must not precede.
    """
    rows.sort()  # FIFO reads return a priority's tasks in enqueue order: nearly sorted, so timsort is linear
    acknowledged = [row[0] for row in rows]
    latest_start = list(accumulate((row[2] for row in rows), max))
    pairs = violations = 0
    for _, invoked, _, read_end, tid in rows:
        before = bisect_left(acknowledged, invoked)
        if not before:
            continue
        pairs += before
        if latest_start[before - 1] > read_end:
            violations += 1
            # The prefix maximum is non-decreasing, so its first occurrence is the overtaken task.
            overtaken = rows[bisect_left(latest_start, latest_start[before - 1])]
            examples.add("fifo_violation", prio=prio, overtaken=overtaken[4], overtaker=tid,
                         overtaker_read_ok_ns=read_end, overtaken_read_invoke_ns=overtaken[2])  # fmt: skip
    return pairs, violations
