"""The vacuity checker: every fault hit something, or the run proves nothing about it.

A worker fault (kill, pause, term, stop) hits when its victim held tasks. A Redis or network fault hits
when some agent operation was invoked while it was active, or was still in flight when it began.
A scenario that promises dead letters (poison tasks, failing handlers) and saw fewer than
expect.min_dead proves nothing about the DLQ either.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from itertools import accumulate

from harness.checkers._report import Examples
from harness.checkers.base import CheckContext, CheckResult
from harness.checkers.index import WORKER_FAULTS, Fault, HistoryIndex


def check_vacuity(index: HistoryIndex, context: CheckContext) -> CheckResult:
    dead = len(index.final.dead) if index.final is not None else 0
    if dead < context.expect.min_dead:
        return CheckResult(name="vacuity", valid=None, figures={"dead": dead, "min_dead": context.expect.min_dead},
                           note=f"expected at least {context.expect.min_dead} dead-lettered task(s), saw {dead}: "
                                "the run proves nothing about the dead-letter path")  # fmt: skip
    if not index.faults:
        return CheckResult(name="vacuity", valid=True, note="no faults in this scenario")
    # Latest completion among operations invoked so far: an operation invoked before a fault and
    # completed after it was in flight when the fault began.
    latest_done = list(accumulate(index.agent_done_ns, max))
    by_kind: dict[str, dict[str, int]] = {}
    examples = Examples()
    for fault in index.faults:
        why_missed = _missed(index, latest_done, fault)
        tally = by_kind.setdefault(fault.kind, {"hit": 0, "missed": 0})
        tally["missed" if why_missed else "hit"] += 1
        if why_missed:
            examples.add("missed", fault=fault.kind, target=fault.target, at_ns=fault.start_ns, why=why_missed)
    hit = sum(t["hit"] for t in by_kind.values())
    figures = {"faults": len(index.faults), "hit": hit, "missed": len(index.faults) - hit, "by_kind": by_kind}
    if hit == 0 and context.expect.faults_must_hit:
        return CheckResult(name="vacuity", valid=None, figures=figures, anomalies=examples.pick(),
                           note="fault(s) never hit anything: the run proves nothing about them")  # fmt: skip
    note = "" if hit == len(index.faults) else f"{len(index.faults) - hit} fault(s) hit nothing"
    return CheckResult(name="vacuity", valid=True, figures=figures, anomalies=examples.pick(), note=note)


def _missed(index: HistoryIndex, latest_done: list[int], fault: Fault) -> str:
    """Why a fault hit nothing, or "" when it hit."""
    if fault.outcome == "info":
        return "could not be applied"
    if fault.kind in WORKER_FAULTS:
        return "" if fault.held else "the victim held no tasks"
    start_ns, end_ns = fault.start_ns, index.fault_end_ns(fault)
    invoked = index.agent_invoke_ns
    if bisect_right(invoked, end_ns) > bisect_left(invoked, start_ns):
        return ""
    before = bisect_left(invoked, start_ns)
    if before and latest_done[before - 1] >= start_ns:
        return ""
    return "no operation ran while it was active"
