"""Checkers on hosted histories: a finish is not an ack; repeats explained by what the library and the
faults allow; starts read as reads over a window; attempts and deliveries counted where unreported."""

from __future__ import annotations

from typing import Any

from harness.adapters.promises import Promises
from harness.checkers import CheckContext, HistoryIndex, check_history
from harness.checkers.delivery import check_delivery
from harness.checkers.dlq import check_dlq
from harness.checkers.order import check_order
from harness.checkers.priority import check_priority
from tests.unit.checkers.builder import HistoryBuilder

RENEWING = Promises(renews_lease=True, visibility_timeout_s=1.0)
TIMEOUT_ONLY = Promises(renews_lease=False, visibility_timeout_s=1.0)


def hosted(h: HistoryBuilder, promises: Promises = RENEWING, **context: Any) -> dict[str, Any]:
    results = check_history(h.history(), CheckContext(hosted=True, promises=promises, **context))
    return {r.name: r for r in results}


def twice(h: HistoryBuilder, *, between: Any = None, second_deliveries: int = 2) -> None:
    """t1 runs on worker A, then (after `between`) again on worker B."""
    h.enqueue("p0", ["t1"])
    h.start("consumer-0#1.100.0", "t1")
    h.finish("consumer-0#1.100.0", "t1")
    if between is not None:
        between()
    h.advance(ms=100)
    h.start("consumer-1#1.200.0", "t1", deliveries=second_deliveries)
    h.finish("consumer-1#1.200.0", "t1")
    h.final()


def test_a_repeat_while_a_renewing_holder_was_alive_and_reachable_is_unexplained() -> None:
    h = HistoryBuilder()
    twice(h)
    delivery = hosted(h)["delivery"]
    assert delivery.valid is False
    assert delivery.figures["duplicated_unexplained"] == 1


def test_a_kill_after_the_finish_explains_the_repeat() -> None:
    h = HistoryBuilder()
    twice(h, between=lambda: h.kill("consumer-0", held=[]))
    delivery = hosted(h)["delivery"]
    assert delivery.valid is True
    assert delivery.figures["duplicated_explained"] == 1
    assert delivery.anomalies[0]["reasons"] == ["holder hit by kill"]


def test_a_worker_that_died_on_its_own_explains_the_repeat() -> None:
    h = HistoryBuilder()
    twice(h, between=lambda: h.exit("consumer-0#1", code=3))
    assert hosted(h)["delivery"].anomalies[0]["reasons"] == ["holder's worker died (exit 3)"]


def test_a_slot_migration_after_the_finish_explains_the_repeat() -> None:
    # The ack, a multi-key call, is answered TRYAGAIN while the queue's keys are split between two nodes.
    h = HistoryBuilder()
    twice(h, between=lambda: h.fault("slot-migration", "redis"))
    delivery = hosted(h)["delivery"]
    assert (delivery.valid, delivery.figures["duplicated_explained"]) == (True, 1)
    assert delivery.anomalies[0]["reasons"] == ["redis fault (slot-migration)"]


def test_a_pause_of_another_worker_explains_nothing() -> None:
    h = HistoryBuilder()
    twice(h, between=lambda: (h.pause("consumer-2"), h.resume()))
    assert hosted(h)["delivery"].figures["duplicated_unexplained"] == 1


def test_the_librarys_own_visibility_timeout_explains_a_repeat_only_once_it_passed() -> None:
    h = HistoryBuilder()
    twice(h, between=lambda: h.advance(s=2))
    assert hosted(h, TIMEOUT_ONLY)["delivery"].figures["duplicated_explained"] == 1
    early = HistoryBuilder()
    twice(early)
    assert hosted(early, TIMEOUT_ONLY)["delivery"].figures["duplicated_unexplained"] == 1


def test_a_held_reply_arriving_after_the_next_delivery_is_explained_by_the_cut_that_held_it() -> None:
    """The library handed t1 to A first (deliveries 1), but A's reply was held by a network fault and
    came after B's reclaim (deliveries 2): ordered by the library's count, A asked before the cut ended."""
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.fault("slow-replies", "all")
    h.advance(s=2)
    h.start("consumer-1#1.200.0", "t1", deliveries=2)
    h.finish("consumer-1#1.200.0", "t1")
    h.start("consumer-0#1.100.0", "t1", deliveries=1)
    h.finish("consumer-0#1.100.0", "t1")
    h.final()
    delivery = hosted(h, client_timeout_s=10.0)["delivery"]
    assert delivery.figures["duplicated_explained"] == 1, delivery.anomalies
    assert delivery.anomalies[0]["reasons"] == ["holder cut off from Redis (slow-replies)"]


def test_a_finish_is_what_counts_as_completed_and_nothing_else_is_lost() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1", "t2"])
    h.start("consumer-0#1.100.0", "t1")
    h.finish("consumer-0#1.100.0", "t1")
    h.start("consumer-0#1.100.1", "t2")  # killed before it finished, never run again
    h.final()
    delivery = hosted(h)["delivery"]
    assert delivery.figures["completed"] == 1
    assert delivery.figures["lost"] == 1


def test_unreported_attempts_and_deliveries_are_counted_from_the_history() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.start("consumer-0#1.100.0", "t1", attempt=None, deliveries=None)
    h.finish("consumer-0#1.100.0", "t1", error="planned failure of attempt 0")
    h.start("consumer-0#1.100.0", "t1", attempt=None, deliveries=None)
    h.finish("consumer-0#1.100.0", "t1")
    index = HistoryIndex.build(h.history())
    assert [(d.attempt, d.deliveries) for d in index.deliveries["t1"]] == [(0, 1), (1, 2)]


def test_starts_inside_the_read_window_prove_no_fifo_violation() -> None:
    """B (enqueued after A) started 5 ms before A: the reads behind the starts may have been in order."""
    h = HistoryBuilder()
    h.enqueue("p0", ["a"])
    h.enqueue("p0", ["b"])
    h.start("consumer-1#1.200.0", "b")
    h.advance(ms=5)
    h.start("consumer-0#1.100.0", "a")
    h.final()
    context = CheckContext(hosted=True, promises=RENEWING)
    assert check_order(HistoryIndex.build(h.history(), read_window_ns=250_000_000), context).valid is True
    assert check_order(HistoryIndex.build(h.history()), context).valid is False  # judged as instant reads


def test_priorities_a_queue_does_not_promise_are_reported_not_judged() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["high"], prio=0)
    h.advance(s=1)
    h.enqueue("p0", ["low"], prio=3)
    h.start("consumer-0#1.100.0", "low", prio=3)
    h.advance(s=1)
    h.start("consumer-0#1.100.1", "high", prio=0)
    h.final()
    index = HistoryIndex.build(h.history())
    promised = check_priority(index, CheckContext(promises=Promises(priorities=True)))
    assert promised.valid is False
    unpromised = check_priority(index, CheckContext(promises=Promises(priorities=False)))
    assert unpromised.valid is True
    assert unpromised.figures["inversions"] == 1
    assert "does not promise" in unpromised.note


def test_delivery_judges_a_plain_hosted_run_valid() -> None:
    h = HistoryBuilder()
    for n in range(3):
        h.enqueue("p0", [f"t{n}"])
        h.start(f"consumer-0#1.100.{n}", f"t{n}")
        h.finish(f"consumer-0#1.100.{n}", f"t{n}")
    h.final()
    assert check_delivery(HistoryIndex.build(h.history()), CheckContext(hosted=True)).valid is True


def test_a_raise_the_library_never_recorded_counts_once_per_attempt() -> None:
    """Attempt 1 raised, its worker was killed before the library recorded the failure, so the library ran
    attempt 1 again (taskq-worker, retries_and_dlq seed 7): three raises, but the budget of 3 is used up
    only by attempts 0, 1 and 2."""
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"], max_retries=2)
    for lane, attempt in (
        ("consumer-0#1.1.0", 0),
        ("consumer-0#1.1.0", 1),
        ("consumer-1#1.2.0", 1),
        ("consumer-1#1.2.0", 2),
    ):
        h.start(lane, "t1", attempt=attempt, deliveries=None)
        h.finish(lane, "t1", error=f"planned failure of attempt {attempt}", attempt=attempt)
    h.final(dead=[("t1", "retries exhausted: PlannedFailure", 2, 3)])
    result = check_dlq(HistoryIndex.build(h.history()), CheckContext(hosted=True))
    assert result.valid is True, result.anomalies
    early = HistoryBuilder()
    early.enqueue("p0", ["t1"], max_retries=2)
    for attempt in (0, 1, 1):
        early.start("consumer-0#1.1.0", "t1", attempt=attempt)
        early.finish("consumer-0#1.1.0", "t1", error="boom", attempt=attempt)
    early.final(dead=[("t1", "retries exhausted: boom", 2, 3)])
    assert check_dlq(HistoryIndex.build(early.history()), CheckContext(hosted=True)).figures["wrong_error_count"] == 1


def _prefetched_by_a_worker_then_stopped(*, paused: bool) -> HistoryBuilder:
    """dramatiq short-heartbeat, dramatiq_pause_past_heartbeat seed 1: worker B fetched t1 into its
    prefetch and was SIGSTOPped before starting it; its heartbeat lapsed, worker A got t1 and ran it; B,
    resumed, started t1 from its prefetch. B started second but read first."""
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    if paused:
        h.pause("consumer-1#1")
    h.advance(s=3)
    h.start("consumer-0#1.100.0", "t1")
    h.finish("consumer-0#1.100.0", "t1")
    h.advance(s=1)
    h.start("consumer-1#1.200.0", "t1")
    if paused:
        h.resume()  # the nemesis journals the end after the SIGCONT: B's first start can come before it
    h.finish("consumer-1#1.200.0", "t1")
    h.final()
    return h


def test_a_pause_of_the_holder_that_started_second_explains_the_repeat() -> None:
    delivery = hosted(_prefetched_by_a_worker_then_stopped(paused=True))["delivery"]
    assert (delivery.valid, delivery.figures["duplicated_explained"]) == (True, 1)
    assert delivery.anomalies[0]["reasons"] == ["second holder paused (it may have read the task before the pause)"]
    unpaused = hosted(_prefetched_by_a_worker_then_stopped(paused=False))["delivery"]
    assert (unpaused.valid, unpaused.figures["duplicated_unexplained"]) == (False, 1)
