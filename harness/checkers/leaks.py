"""The leaks checker: after the drain the queue holds nothing of the run's tasks (entries written by
something else, "foreign", are only counted).

An entry the queue reports as acked but never deleted (behind the consumer group's read position and
not pending) that no read ever handed out was never acked at all: the group's position moved past it
(a group created or re-created at `$`). It is reported as `skipped`, apart from `acked_not_deleted`."""

from __future__ import annotations

from harness.checkers._report import Examples
from harness.checkers.base import CheckContext, CheckResult
from harness.checkers.index import HistoryIndex

LEAK_KINDS = ("ready", "pending", "delayed", "acked_not_deleted", "skipped")


def check_leaks(index: HistoryIndex, context: CheckContext) -> CheckResult:
    final = index.final
    if final is None:
        return CheckResult(name="leaks", valid=None, note="no final state in the history: the drain was never read")
    behind = final.acked_not_deleted
    left: dict[str, list[str]] = {
        "ready": list(final.ready),
        "pending": list(final.pending),
        "delayed": list(final.delayed),
        "acked_not_deleted": [tid for tid in behind if tid in index.deliveries],
        "skipped": [tid for tid in behind if tid not in index.deliveries],
    }
    examples = Examples()
    for kind, tids in left.items():
        for tid in tids:
            examples.add(kind, tid=tid, **_where(index, kind, tid))
    figures: dict[str, int] = {kind: len(tids) for kind, tids in left.items()}
    figures["foreign"] = final.foreign
    valid = not any(left.values())
    note = "" if valid else "tasks left after the drain: stuck in the queue, skipped, or acked entries never deleted"
    return CheckResult(name="leaks", valid=valid, figures=figures, anomalies=examples.pick(), note=note)


def _where(index: HistoryIndex, kind: str, tid: str) -> dict[str, object]:
    final = index.final
    if final is None:
        return {}
    if kind == "ready":
        return {"prio": final.ready[tid]}
    if kind == "pending":
        prio, consumer = final.pending[tid]
        return {"prio": prio, "consumer": consumer}
    return {}
