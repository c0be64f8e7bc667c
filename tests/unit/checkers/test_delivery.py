"""check_delivery: lost, unexpected, duplicated (explained or not), recovered."""

from __future__ import annotations

from harness.adapters.promises import Promises
from harness.checkers import Expectations
from harness.checkers.delivery import check_delivery
from tests.unit.checkers.builder import HistoryBuilder, judge, run_task


def kinds(result: object) -> set[str]:
    return {a["kind"] for a in result.anomalies}  # type: ignore[attr-defined]


def test_clean_history_passes() -> None:
    h = HistoryBuilder()
    for n in range(5):
        run_task(h, f"t{n}", prio=n % 4)
    h.final()
    result = judge(check_delivery, h)
    assert result.valid is True
    assert result.figures["enqueued_ok"] == 5
    assert result.figures["completed"] == 5
    assert result.figures["lost"] == 0
    assert result.anomalies == []


def test_lost_task_is_caught() -> None:
    h = HistoryBuilder()
    run_task(h, "t1")
    h.enqueue("p0", ["t2"])
    h.deliver("c0", [("t2", 2, 0, 1)])
    h.final()
    result = judge(check_delivery, h)
    assert result.valid is False
    assert result.figures["lost"] == 1
    assert result.anomalies[0]["tid"] == "t2"


def test_enqueue_without_answer_whose_task_never_ran_is_not_lost() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"], outcome=None)
    h.enqueue("p0", ["t2"], outcome="info")
    h.enqueue("p0", ["t3"], outcome="fail")
    h.final()
    result = judge(check_delivery, h)
    assert result.valid is True
    assert result.figures["enqueue_info"] == 2
    assert result.figures["enqueue_fail"] == 1
    assert result.figures["lost"] == 0


def test_unanswered_enqueue_whose_task_was_delivered_but_never_finished_is_lost() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"], outcome="info")
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.final()
    result = judge(check_delivery, h)
    assert result.valid is False
    assert result.figures["lost"] == 1
    assert result.anomalies[0]["enqueue"] == "info"


def test_task_whose_enqueue_was_info_but_ran_is_recovered() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"], outcome="info")
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.complete("c0", ["t1"])
    h.final()
    result = judge(check_delivery, h)
    assert result.valid is True
    assert result.figures["recovered"] == 1


def test_dead_stuck_and_unknown_completions_are_not_lost() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["dead", "stuck", "maybe"])
    h.deliver("c0", [("dead", 2, 0, 1), ("maybe", 2, 0, 1)])
    h.fail("c0", [("dead", 0)], "dead")
    h.complete("c0", ["maybe"], outcome="info")
    h.final(ready=[("stuck", 2)], dead=[("dead", "retries exhausted", 3, 4)])
    result = judge(check_delivery, h)
    assert result.valid is True
    assert result.figures["lost"] == 0
    assert result.figures["stuck"] == 1
    assert result.figures["dead"] == 1


def test_refused_ack_does_not_count_as_completion() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.complete("c0", ["t1"], refused=["t1"])
    h.final()
    assert judge(check_delivery, h).figures["lost"] == 1


def test_lost_within_tolerance_passes() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.final()
    assert judge(check_delivery, h, expect=Expectations(max_lost=1)).valid is True


def test_without_final_state_a_loss_is_unknown() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    result = judge(check_delivery, h)
    assert result.valid is None
    assert "no final state" in result.note


def test_unexpected_task_is_caught() -> None:
    h = HistoryBuilder()
    h.deliver("c0", [("ghost", 2, 0, 1)])
    h.complete("c0", ["ghost"])
    h.final()
    result = judge(check_delivery, h)
    assert result.valid is False
    assert result.figures["unexpected"] == 1
    assert kinds(result) == {"unexpected"}


def test_completed_but_never_delivered_nor_enqueued_is_unexpected() -> None:
    h = HistoryBuilder()
    h.complete("c0", ["ghost"])
    h.final()
    assert judge(check_delivery, h).figures["unexpected"] == 1


def test_task_re_added_under_a_new_id_is_not_unexpected() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("x1", 2, 0, 1, "t1")])
    h.complete("c0", ["x1"])
    h.final()
    result = judge(check_delivery, h)
    assert result.valid is True
    assert result.figures["unexpected"] == 0
    assert result.figures["completed"] == 1


def test_unexplained_duplicate_is_caught() -> None:
    h = HistoryBuilder()
    run_task(h, "t1", consumer="c0")
    h.deliver("c1", [("t1", 2, 0, 2)])
    h.complete("c1", ["t1"])
    h.final()
    result = judge(check_delivery, h)
    assert result.valid is False
    assert result.figures["duplicated"] == 1
    assert result.figures["duplicated_unexplained"] == 1
    assert result.figures["re_executed"] == 1


def test_duplicate_explained_by_lease_expiry() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.advance(s=2.5)  # past pending_timeout_s = 2: the entry is reclaimed
    h.deliver("c1", [("t1", 2, 0, 2)])
    h.complete("c0", ["t1"])  # the slow first owner's ack was not refused
    h.complete("c1", ["t1"])
    h.final()
    result = judge(check_delivery, h)
    assert result.valid is True
    assert result.figures["duplicated_explained"] == 1
    assert result.anomalies[0]["reasons"] == ["lease expired"]


def test_duplicate_explained_when_the_expired_owner_completes_last() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.advance(s=2.5)
    h.deliver("c1", [("t1", 2, 0, 2)])
    h.complete("c1", ["t1"])
    h.complete("c0", ["t1"])
    h.final()
    result = judge(check_delivery, h)
    assert result.valid is True
    assert result.figures["duplicated_explained"] == 1


def test_duplicate_explained_by_a_paused_owner() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0#0", [("t1", 2, 0, 1)])
    h.pause("c0", held=["t1"])
    h.deliver("c1#0", [("t1", 2, 0, 2)])
    h.complete("c1#0", ["t1"])
    h.resume()
    h.complete("c0#0", ["t1"])
    h.final()
    # A long lease: only the pause explains the second owner.
    result = judge(check_delivery, h, pending_timeout_s=60.0)
    assert result.valid is True
    assert result.figures["duplicated_explained"] == 1
    assert result.anomalies[0]["reasons"] == ["owner paused"]


def test_duplicate_explained_by_a_redis_fault_after_the_first_ack() -> None:
    h = HistoryBuilder()
    run_task(h, "t1", consumer="c0")
    h.fault("redis-kill", "redis", ends=False)
    h.end_fault()
    h.deliver("c1", [("t1", 2, 0, 1)])
    h.complete("c1", ["t1"])
    h.final()
    result = judge(check_delivery, h)
    assert result.valid is True
    assert result.anomalies[0]["reasons"] == ["redis fault between the deliveries"]


def test_duplicate_explained_by_a_redis_fault_while_the_first_owner_held_it() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.fault("redis-kill", "redis")  # restarted from an older snapshot: the lease to c0 is gone
    h.deliver("c1", [("t1", 2, 0, 1)])
    h.complete("c1", ["t1"])
    h.complete("c0", ["t1"])
    h.final()
    result = judge(check_delivery, h, pending_timeout_s=60.0)
    assert result.valid is True
    assert result.figures["duplicated_explained"] == 1


def test_redis_fault_before_the_first_delivery_explains_nothing() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.fault("redis-kill", "redis")
    run_task(h, "t2")
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.complete("c0", ["t1"])
    h.deliver("c1", [("t1", 2, 0, 2)])
    h.complete("c1", ["t1"])
    h.final()
    assert judge(check_delivery, h).figures["duplicated_unexplained"] == 1


def test_redelivery_after_a_confirmed_ack_is_unexplained_even_after_a_long_hold() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.advance(s=3)
    h.complete("c0", ["t1"])  # acked ok after the lease ran out, and nobody had taken it over
    h.deliver("c1", [("t1", 2, 0, 2)])
    h.complete("c1", ["t1"])
    h.final()
    result = judge(check_delivery, h)
    assert result.valid is False
    assert result.figures["duplicated_unexplained"] == 1


def test_pause_of_another_worker_explains_nothing() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.pause("c9")
    h.deliver("c1", [("t1", 2, 0, 2)])
    h.complete("c1", ["t1"])
    h.resume()
    h.complete("c0", ["t1"])
    h.final()
    assert judge(check_delivery, h, pending_timeout_s=60.0).figures["duplicated_unexplained"] == 1


def test_duplicate_within_tolerance_passes() -> None:
    h = HistoryBuilder()
    run_task(h, "t1", consumer="c0")
    h.deliver("c1", [("t1", 2, 0, 2)])
    h.complete("c1", ["t1"])
    h.final()
    assert judge(check_delivery, h, expect=Expectations(max_unexplained_duplicates=1)).valid is True


def test_handler_run_twice_with_one_ack_is_re_executed_not_duplicated() -> None:
    h = HistoryBuilder()
    run_task(h, "t1", consumer="c0")
    h.deliver("c1", [("t1", 2, 0, 2)])
    h.complete("c1", ["t1"], refused=["t1"])
    h.final()
    result = judge(check_delivery, h)
    assert result.valid is True
    assert result.figures["re_executed"] == 1
    assert result.figures["duplicated"] == 0


def test_loss_in_a_redis_fault_window_is_tolerated_when_allowed() -> None:
    h = HistoryBuilder()
    run_task(h, "t0")
    h.enqueue("p0", ["t1"])
    h.advance(ms=500)
    h.fault("redis-kill", "redis", ends=False)
    h.advance(ms=200)
    h.end_fault()
    h.advance(s=5)
    h.enqueue("p0", ["t2"])  # long after the fault: a real loss
    h.final()
    allowed = judge(check_delivery, h, expect=Expectations(loss_allowed_in_redis_fault_windows=True))
    assert allowed.figures["lost_in_fault_window"] == 1
    assert allowed.figures["lost"] == 1
    assert allowed.valid is False
    strict = judge(check_delivery, h)
    assert strict.figures["lost"] == 2


def test_loss_before_the_window_is_not_excused() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.advance(s=3)
    h.fault("redis-kill", "redis")
    h.final()
    result = judge(check_delivery, h, expect=Expectations(loss_allowed_in_redis_fault_windows=True))
    assert result.figures["lost"] == 1
    assert result.valid is False


def _retry_held_until_its_eta(h: HistoryBuilder) -> None:
    """A hosted library's retry, read at once by two workers and run by both at its ETA, 4 s later."""
    h.enqueue("p0", ["t1"], max_retries=1)
    h.deliver("c0.1.0", [("t1", 2, 0, 1)])
    h.fail("c0.1.0", [("t1", 0)], "raised")
    h.advance(s=4)
    h.deliver("c1.1.0", [("t1", 2, 1, 1)])
    h.deliver("c2.1.0", [("t1", 2, 1, 1)])
    h.complete("c1.1.0", ["t1"])
    h.complete("c2.1.0", ["t1"])
    h.final()


def test_hosted_visibility_timeout_counts_from_when_the_task_became_readable() -> None:
    """The handler starts at the ETA; the library read the retry right after the failed attempt, so
    its own visibility timeout (1 s) passed long before the second start."""
    h = HistoryBuilder()
    _retry_held_until_its_eta(h)
    promises = Promises(renews_lease=False, visibility_timeout_s=1.0)
    result = judge(check_delivery, h, hosted=True, promises=promises)
    assert (result.valid, result.figures["duplicated_explained"]) == (True, 1)
    assert result.anomalies[0]["reasons"] == ["visibility timeout passed"]


def test_hosted_repeat_within_the_visibility_timeout_is_unexplained() -> None:
    h = HistoryBuilder()
    _retry_held_until_its_eta(h)
    for promises in (Promises(renews_lease=False, visibility_timeout_s=10.0), Promises(renews_lease=True)):
        result = judge(check_delivery, h, hosted=True, promises=promises)
        assert (result.valid, result.figures["duplicated_unexplained"]) == (False, 1)


# -- hosted runs: the history shows handler starts, not the library's reads ---------------------------

HOSTED = {"hosted": True, "promises": Promises(renews_lease=True, visibility_timeout_s=1.0)}


def _paused_reader_starts_late(h: HistoryBuilder, *, pause_first: bool) -> None:
    """c1's library read t1 and was paused before its handler started; c0 took t1 over and ran it; c1,
    resumed, ran it too (streaq under pause_workers)."""
    h.enqueue("p0", ["t1"])
    if pause_first:
        h.pause("c1")
    h.deliver("c0#1.7.0", [("t1", 2, 0, 2)])
    h.complete("c0#1.7.0", ["t1"])
    if not pause_first:
        h.pause("c2")  # a bystander: nothing held c1's start up
    h.resume()
    h.deliver("c1#1.8.0", [("t1", 2, 0, 1)])
    h.complete("c1#1.8.0", ["t1"])
    h.final()


def test_hosted_repeat_by_a_worker_paused_before_the_first_start_is_explained() -> None:
    h = HistoryBuilder()
    _paused_reader_starts_late(h, pause_first=True)
    result = judge(check_delivery, h, **HOSTED)
    assert result.valid is True
    assert result.figures["duplicated_explained"] == 1
    # The library's count says c1 read it first (1, then c0's takeover 2): the first holder was paused.
    assert result.anomalies[0]["reasons"] == ["owner paused"]


def test_hosted_repeat_with_only_a_bystander_paused_is_unexplained() -> None:
    h = HistoryBuilder()
    _paused_reader_starts_late(h, pause_first=False)
    result = judge(check_delivery, h, **HOSTED)
    assert result.valid is False
    assert result.figures["duplicated_unexplained"] == 1


NO_RENEWAL = {"hosted": True, "promises": Promises(renews_lease=False, visibility_timeout_s=1.0)}


def _read_ahead_repeat(h: HistoryBuilder, *, waited_s: float) -> None:
    """A worker read t1 ahead and started it `waited_s` after it was sent; another took it over by the
    library's visibility timeout and started it 0.2 s later (taskiq's 100-entry reads)."""
    h.enqueue("p0", ["t1"])
    h.advance(s=waited_s)
    h.deliver("c0#1.7.0", [("t1", 2, 0, -1)])
    h.complete("c0#1.7.0", ["t1"])
    h.advance(s=0.2)
    h.deliver("c1#1.8.0", [("t1", 2, 0, -1)])
    h.complete("c1#1.8.0", ["t1"])
    h.final()


def test_hosted_repeat_past_the_visibility_timeout_since_the_send_is_explained() -> None:
    h = HistoryBuilder()
    _read_ahead_repeat(h, waited_s=1.5)
    result = judge(check_delivery, h, **NO_RENEWAL)
    assert result.valid is True
    assert result.anomalies[0]["reasons"] == ["visibility timeout passed"]


def test_hosted_repeat_within_the_visibility_timeout_since_the_send_is_unexplained() -> None:
    h = HistoryBuilder()
    _read_ahead_repeat(h, waited_s=0.1)
    assert judge(check_delivery, h, **NO_RENEWAL).figures["duplicated_unexplained"] == 1


def test_hosted_repeat_is_unexplained_when_the_library_renews_leases() -> None:
    h = HistoryBuilder()
    _read_ahead_repeat(h, waited_s=1.5)
    assert judge(check_delivery, h, **HOSTED).figures["duplicated_unexplained"] == 1


def _stall_then_two_starts(h: HistoryBuilder, *, stall_before_send: bool) -> None:
    """Redis stalled every client; after it two workers started t1 (one had read it before the stall,
    its lease lapsed meanwhile): both starts come after the stall."""
    if stall_before_send:
        h.fault("client-pause", "redis")
    h.enqueue("p0", ["t1"])
    if not stall_before_send:
        h.fault("client-pause", "redis")
    h.deliver("c0#1.7.0", [("t1", 2, 0, 1)])
    h.complete("c0#1.7.0", ["t1"])
    h.deliver("c1#1.8.0", [("t1", 2, 0, 2)])
    h.complete("c1#1.8.0", ["t1"])
    h.final()


def test_hosted_repeat_after_a_redis_stall_since_the_send_is_explained() -> None:
    h = HistoryBuilder()
    _stall_then_two_starts(h, stall_before_send=False)
    result = judge(check_delivery, h, **HOSTED)
    assert result.valid is True
    assert result.anomalies[0]["reasons"] == ["redis fault (client-pause)"]


def test_hosted_repeat_after_a_redis_stall_before_the_send_is_unexplained() -> None:
    h = HistoryBuilder()
    _stall_then_two_starts(h, stall_before_send=True)
    assert judge(check_delivery, h, **HOSTED).figures["duplicated_unexplained"] == 1


def _repeat_after_a_poison_task(h: HistoryBuilder, *, poisoned: str) -> None:
    """c0's process finished t1, then a poison task killed the process `poisoned` before any ack."""
    h.enqueue("p0", ["t1", "px"], poison=["px"])
    h.deliver("c0#1.7.0", [("t1", 2, 0, 1)])
    h.complete("c0#1.7.0", ["t1"])
    h.deliver(f"{poisoned}.1", [("px", 2, 0, 1)])
    h.deliver("c1#1.8.0", [("t1", 2, 0, 2)])
    h.complete("c1#1.8.0", ["t1"])
    h.final(dead=[("px", "delivery cap", 0, 0)])


def test_hosted_repeat_after_the_holders_process_died_of_a_poison_task_is_explained() -> None:
    h = HistoryBuilder()
    _repeat_after_a_poison_task(h, poisoned="c0#1.7")
    result = judge(check_delivery, h, **HOSTED)
    assert result.valid is True
    assert result.anomalies[0]["reasons"] == ["holder's process died of a poison task"]


def test_hosted_repeat_after_another_process_died_of_a_poison_task_is_unexplained() -> None:
    h = HistoryBuilder()
    _repeat_after_a_poison_task(h, poisoned="c0#1.9")  # another process of the same worker
    assert judge(check_delivery, h, **HOSTED).figures["duplicated_unexplained"] == 1
