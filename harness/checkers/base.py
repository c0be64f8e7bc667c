"""What a checker is: a pure function from a history to a result with figures.

Validity is three-valued: True (valid), False (an anomaly was found), None
(unknown: the checker could not decide, e.g. the fault never hit anything, or the
checker itself crashed). Composition: False beats None beats True.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from harness.adapters.promises import Promises

Validity = bool | None
MAX_EXAMPLES = 10


@dataclass(frozen=True, kw_only=True, slots=True)
class Expectations:
    """What a scenario promises; checkers judge the history against these."""

    max_lost: int = 0
    max_unexplained_duplicates: int = 0
    max_unexpected: int = 0
    priority_slack_ms: float = 20.0
    max_priority_inversions: int = 0
    check_fifo: bool = True
    max_recovery_s: float | None = None
    faults_must_hit: bool = True
    # Dead letters the scenario is built to produce (poison tasks): fewer means it tested nothing.
    min_dead: int = 0
    # Tasks acknowledged inside a Redis fault's unsafe window may be lost (weak persistence).
    loss_allowed_in_redis_fault_windows: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class CheckContext:
    """Run facts the checkers need besides the history."""

    expect: Expectations = field(default_factory=Expectations)
    pending_timeout_s: float = 2.0
    delivery_cap: int = 5
    # Hosted runs: consumers were the library's own workers, and a "complete" is the end of the
    # handler, not an ack (harness.hosted.handler).
    hosted: bool = False
    # What the queue under test promises (its adapter's declaration); taskq's when none is given.
    promises: Promises = field(default_factory=Promises)
    # Hosted runs: how long before its handler started a task may have been read (the harness sees the
    # start, not the read); priority and order judge a start at s as a read over [s - this, s].
    hosted_read_window_ms: float = 250.0
    # How long the queue's clients wait for a reply: a reply held by a fault may arrive that late.
    client_timeout_s: float = 5.0


@dataclass(frozen=True, kw_only=True, slots=True)
class CheckResult:
    name: str
    valid: Validity
    figures: dict[str, Any] = field(default_factory=dict)
    # Up to MAX_EXAMPLES concrete anomalies, each a small dict naming the task and what happened.
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "valid": self.valid, "figures": self.figures,
                "anomalies": self.anomalies, "note": self.note}  # fmt: skip


def compose(validities: Iterable[Validity]) -> Validity:
    """False beats unknown (None) beats True."""
    found = list(validities)
    if any(v is False for v in found):
        return False
    if any(v is None for v in found):
        return None
    return True


def validity_label(valid: Validity) -> str:
    return {True: "valid", False: "INVALID", None: "unknown"}[valid]


Checker = Callable[..., CheckResult]


def unpromised(result: CheckResult, promise: str) -> CheckResult:
    """A check of something the queue does not promise: its figures are reported, never judged."""
    observed = "no anomaly" if result.valid else f"{len(result.anomalies) or 'some'} anomalies shown"
    note = f"not judged: the queue does not promise {promise} ({observed}; figures as observed)"
    return CheckResult(name=result.name, valid=True, figures=result.figures, anomalies=result.anomalies, note=note)


def run_safely(name: str, checker: Callable[[], CheckResult]) -> CheckResult:
    """Run one checker; a checker that crashes gives unknown, never a pass."""
    try:
        return checker()
    except Exception as exc:  # any crash must surface as unknown, with its cause
        return CheckResult(name=name, valid=None, note=f"checker crashed: {type(exc).__name__}: {exc}")
