"""Service after faults: whether the queue accepted work again once a Redis or network fault was over.

A queue that comes back serves again: of the enqueues producers invoked from GRACE_S after a fault
ended until the next such fault began, some were accepted. A fault after which every one of at least
MIN_ENQUEUES was refused or went unanswered left the queue out of service for the rest of that span
(a library that lost its server-side scripts with a restart and never loads them again is one).
Worker faults are not counted: killing a consumer takes nothing away from Redis. A pure function of
the history index, judged by the recovery checker.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from harness.checkers._report import NS_PER_S
from harness.checkers.index import WORKER_FAULTS, Fault, HistoryIndex
from harness.history import OK

# Clients reconnect on their next command once Redis answers again; a second covers a restart's
# reload and a fresh connection, and leaves the seconds after it to judge.
GRACE_S = 1.0
MIN_ENQUEUES = 3


def never_back(index: HistoryIndex) -> list[dict[str, Any]]:
    """One row per Redis or network fault after which no enqueue was accepted again (of at least
    MIN_ENQUEUES invoked): the fault, when it ended, how many were invoked and how each ended."""
    batches = sorted({(e.invoke_ns, e.outcome) for e in index.enqueues.values()})
    starts = [invoke_ns for invoke_ns, _ in batches]
    faults = [f for f in index.faults if f.kind not in WORKER_FAULTS and f.outcome != "info" and f.end_ns is not None]
    origin = index.phases.get("load", 0)
    rows = []
    for position, fault in enumerate(faults):
        assert fault.end_ns is not None
        span_start = fault.end_ns + int(GRACE_S * NS_PER_S)
        span_end = _next_start(faults, position, index.end_ns)
        after = batches[bisect_left(starts, span_start) : bisect_left(starts, span_end)]
        if len(after) < MIN_ENQUEUES or any(outcome == OK for _, outcome in after):
            continue
        outcomes: dict[str, int] = {}
        for _, outcome in after:
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        rows.append({"fault": fault.kind, "ended_s": round((fault.end_ns - origin) / NS_PER_S, 3),
                     "enqueues_after": len(after), "outcomes": outcomes})  # fmt: skip
    return rows


def _next_start(faults: list[Fault], position: int, end_ns: int) -> int:
    later = [f.start_ns for f in faults[position + 1 :] if f.start_ns > (faults[position].end_ns or 0)]
    return min(later, default=end_ns + 1)
