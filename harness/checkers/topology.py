"""What a topology fault means for the ordering checkers: while a split brain or a manual promotion lasts,
two primaries take writes at once (the deposed one until it rejoins), so a task enqueued on one is not
there for consumers reading the other. Strict priority and FIFO are promises of one server: tasks
whose enqueue was acknowledged in such a window are left out of the priority and order checks (and
counted), never turned into inversions.
"""

from __future__ import annotations

from bisect import bisect_right

from harness.checkers.index import HistoryIndex

# Faults after which two primaries took writes at once (harness/nemesis/topology.py).
TWO_PRIMARY_KINDS = frozenset({"split-brain", "promote-lagging"})


class TwoPrimaries:
    """The [start, end] windows of a history's two-primary faults, for membership tests."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, index: HistoryIndex) -> None:
        spans = sorted(
            (fault.start_ns, index.fault_end_ns(fault))
            for fault in index.faults
            if fault.kind in TWO_PRIMARY_KINDS and fault.outcome != "info"
        )
        self._starts = [start for start, _ in spans]
        self._ends = [end for _, end in spans]

    def __bool__(self) -> bool:
        return bool(self._starts)

    def holds(self, ns: int) -> bool:
        """Whether `ns` falls in a window (windows may overlap: any of those started before it)."""
        position = bisect_right(self._starts, ns)
        return any(self._ends[i] >= ns for i in range(position))
