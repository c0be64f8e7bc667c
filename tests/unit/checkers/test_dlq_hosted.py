"""The dlq checker on hosted histories: a handler's raise that its library never recorded (the worker died
before settling it, so the same attempt came back) does not count against the task's budget (the false
alarm `harness check-adapter taskq-worker` hit in check_retries: harness.checkers.index.counted_failures)."""

from __future__ import annotations

from harness.adapters.promises import Promises
from harness.checkers import CheckContext, check_history
from tests.unit.checkers.builder import HistoryBuilder

DEAD = "retries exhausted: PlannedFailure: planned failure of attempt 1"


def dlq_of(h: HistoryBuilder) -> dict[str, object]:
    context = CheckContext(hosted=True, promises=Promises(renews_lease=True, visibility_timeout_s=1.0))
    result = next(r for r in check_history(h.history(), context) if r.name == "dlq")
    return {"valid": result.valid, **result.figures}


def failing_task(h: HistoryBuilder, *, killed_before_settling: bool) -> None:
    """t1 (max_retries 1) fails attempt 0; maybe its worker dies before the library records that, and
    attempt 0 comes back; then attempt 1 fails and the task is dead."""
    h.enqueue("p0", ["t1"], max_retries=1)
    h.start("consumer-0#1.100.0", "t1", attempt=0)
    h.finish("consumer-0#1.100.0", "t1", error="planned failure of attempt 0", attempt=0)
    if killed_before_settling:
        h.kill("consumer-0#1")
        h.advance(ms=1100)
        h.start("consumer-1#1.200.0", "t1", attempt=0, deliveries=2)
        h.finish("consumer-1#1.200.0", "t1", error="planned failure of attempt 0", attempt=0)
    h.start("consumer-1#1.200.0", "t1", attempt=1)
    h.finish("consumer-1#1.200.0", "t1", error="planned failure of attempt 1", attempt=1)
    h.final(dead=[("t1", DEAD, 1, 2)])


def test_a_raise_whose_attempt_came_back_did_not_count() -> None:
    h = HistoryBuilder()
    failing_task(h, killed_before_settling=True)
    found = dlq_of(h)
    assert (found["valid"], found["missing_from_dlq"], found["wrong_error_count"]) == (True, 0, 0)


def test_every_raise_counts_when_no_attempt_came_back() -> None:
    h = HistoryBuilder()
    failing_task(h, killed_before_settling=False)
    assert dlq_of(h)["valid"] is True


def test_a_dead_task_with_an_error_too_few_is_still_caught() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"], max_retries=1)
    for attempt in (0, 1):
        h.start("consumer-0#1.100.0", "t1", attempt=attempt)
        h.finish("consumer-0#1.100.0", "t1", error=f"planned failure of attempt {attempt}", attempt=attempt)
    h.final(dead=[("t1", DEAD, 1, 1)])
    assert dlq_of(h)["wrong_error_count"] == 1
