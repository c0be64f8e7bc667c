"""Checkers: pure functions from a merged history to verdicts.

`check_history` indexes the history once (HistoryIndex) and runs every checker in CHECKERS on it; a
checker that crashes gives unknown, never a pass. Each checker is `check_<name>(index, context)`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Final

from harness.checkers.base import (
    MAX_EXAMPLES,
    CheckContext,
    CheckResult,
    Expectations,
    Validity,
    compose,
    run_safely,
    validity_label,
)
from harness.checkers.budget import check_budget
from harness.checkers.delivery import check_delivery
from harness.checkers.dlq import check_dlq
from harness.checkers.identity import check_identity
from harness.checkers.index import HistoryIndex, paused_gc
from harness.checkers.leaks import check_leaks
from harness.checkers.leases import check_leases
from harness.checkers.order import check_order
from harness.checkers.ownership import check_ownership
from harness.checkers.priority import check_priority
from harness.checkers.producer_order import check_producer_order
from harness.checkers.recovery import check_recovery
from harness.checkers.retry import check_retry
from harness.checkers.stored_twice import check_stored_twice
from harness.checkers.vacuity import check_vacuity
from harness.history import Op

IndexChecker = Callable[[HistoryIndex, CheckContext], CheckResult]

CHECKERS: Final[dict[str, IndexChecker]] = {
    "delivery": check_delivery,
    "priority": check_priority,
    "order": check_order,
    "dlq": check_dlq,
    "retry": check_retry,
    "recovery": check_recovery,
    "leaks": check_leaks,
    "vacuity": check_vacuity,
    # The invariants taskq promises (issue 13, section 2).
    "ownership": check_ownership,
    "identity": check_identity,
    "budget": check_budget,
    "leases": check_leases,
    "stored_twice": check_stored_twice,
    "producer_order": check_producer_order,
}


def check_history(history: list[Op], context: CheckContext | None = None) -> list[CheckResult]:
    """Every checker's result on one merged history, in CHECKERS order."""
    context = context if context is not None else CheckContext()
    try:
        read_window_ns = int(context.hosted_read_window_ms * 1e6) if context.hosted else 0
        index = HistoryIndex.build(history, read_window_ns=read_window_ns)
    except Exception as exc:  # a history the index cannot read leaves every verdict unknown, never a pass
        note = f"history could not be indexed: {type(exc).__name__}: {exc}"
        return [CheckResult(name=name, valid=None, note=note) for name in CHECKERS]
    with paused_gc():
        return [run_safely(name, partial(checker, index, context)) for name, checker in CHECKERS.items()]


__all__ = [
    "CHECKERS",
    "MAX_EXAMPLES",
    "CheckContext",
    "CheckResult",
    "Expectations",
    "HistoryIndex",
    "IndexChecker",
    "Validity",
    "check_history",
    "compose",
    "run_safely",
    "validity_label",
]
