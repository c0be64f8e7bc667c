"""check_order: FIFO within one priority."""

from __future__ import annotations

from harness.checkers import CheckContext, CheckResult, Expectations, HistoryIndex
from harness.checkers.order import check_order
from tests.unit.checkers.builder import MS, HistoryBuilder, judge


def test_fifo_passes() -> None:
    h = HistoryBuilder()
    for tid in ("a", "b", "c"):
        h.enqueue("p0", [tid], prio=1)
    h.deliver("c0", [("a", 1, 0, 1)])
    h.deliver("c0", [("b", 1, 0, 1), ("c", 1, 0, 1)])
    h.final()
    result = judge(check_order, h)
    assert result.valid is True
    assert result.figures["pairs_checked"] == 3
    assert result.figures["violations"] == 0


def test_overtaking_is_caught() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["a"], prio=1)
    h.enqueue("p0", ["b"], prio=1)
    h.deliver("c0", [("b", 1, 0, 1)])
    h.deliver("c1", [("a", 1, 0, 1)])
    h.final()
    result = judge(check_order, h)
    assert result.valid is False
    assert result.figures["violations"] == 1
    assert result.anomalies[0]["overtaken"] == "a"
    assert result.anomalies[0]["overtaker"] == "b"


def test_concurrent_enqueues_have_no_order() -> None:
    h = HistoryBuilder()
    h.invoke("p0", "enqueue", {"tasks": [["a", 1, 3]], "due_ns": 0})
    h.invoke("p1", "enqueue", {"tasks": [["b", 1, 3]], "due_ns": 0})
    h.respond("p0", "enqueue")
    h.respond("p1", "enqueue")
    h.deliver("c0", [("b", 1, 0, 1)])
    h.deliver("c0", [("a", 1, 0, 1)])
    h.final()
    assert judge(check_order, h).valid is True


def test_priorities_are_ordered_apart() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["a"], prio=2)
    h.enqueue("p0", ["b"], prio=1)
    h.deliver("c0", [("b", 1, 0, 1)])
    h.deliver("c0", [("a", 2, 0, 1)])
    h.final()
    assert judge(check_order, h).valid is True


def test_overlapping_reads_prove_nothing() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["a"], prio=1)
    h.enqueue("p0", ["b"], prio=1)
    h.deliver_invoke("c0")
    h.deliver_invoke("c1")
    h.deliver_ok("c1", [("b", 1, 0, 1)])
    h.deliver_ok("c0", [("a", 1, 0, 1)])
    h.final()
    assert judge(check_order, h).valid is True


def test_redeliveries_are_not_ordered() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["a"], prio=1)
    h.enqueue("p0", ["b"], prio=1)
    h.deliver("c0", [("b", 1, 0, 1)])
    h.deliver("c1", [("a", 1, 0, 2)])  # a's first delivery was never seen
    h.final()
    assert judge(check_order, h).valid is True


def test_not_checked_when_the_scenario_does_not_promise_fifo() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["a"], prio=1)
    h.enqueue("p0", ["b"], prio=1)
    h.deliver("c0", [("b", 1, 0, 1)])
    h.deliver("c1", [("a", 1, 0, 1)])
    result = judge(check_order, h, expect=Expectations(check_fifo=False))
    assert result.valid is True
    assert "not checked" in result.note


def _hosted_start(h: HistoryBuilder, process: str, tid: str, prio: int = 1) -> None:
    """A hosted handler's start: invoke and ok at one instant, the library's read unseen before it."""
    at_ns = h.advance(ms=1)
    for type_, value in (("invoke", {}), ("ok", {"tasks": [[tid, prio, 0, 1]]})):
        h.ops.append({"index": -1, "time_ns": at_ns, "process": process, "type": type_, "f": "deliver", "value": value})


def _order_of_hosted(h: HistoryBuilder) -> CheckResult:
    index = HistoryIndex.build(h.history(), read_window_ns=250 * MS)
    return check_order(index, CheckContext(hosted=True))


def _popped_then_paused(h: HistoryBuilder, *, paused: bool) -> None:
    h.enqueue("p0", ["a"], prio=1)
    h.enqueue("p0", ["b"], prio=1)
    if paused:  # c1's library popped "a", then c1 was stopped before its handler started
        h.pause("c1#1", held=[])
    h.advance(s=1)
    _hosted_start(h, "c0#1.10.0", "b")
    h.advance(s=1)
    if paused:
        h.resume()
    _hosted_start(h, "c1#1.20.0", "a")
    h.final()


def test_a_hosted_start_after_a_pause_may_have_been_read_before_it() -> None:
    h = HistoryBuilder()
    _popped_then_paused(h, paused=True)
    assert _order_of_hosted(h).figures["violations"] == 0


def test_a_hosted_start_long_after_an_earlier_task_was_overtaken_is_caught() -> None:
    h = HistoryBuilder()
    _popped_then_paused(h, paused=False)
    result = _order_of_hosted(h)
    assert (result.valid, result.figures["violations"]) == (False, 1)


def test_a_hosted_start_after_a_redis_stall_may_have_been_read_before_it() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["a"], prio=1)
    h.enqueue("p0", ["b"], prio=1)
    h.fault("client-pause", "redis", ends=False)  # c1 popped "a"; its next command waits out the stall
    h.advance(s=1)
    _hosted_start(h, "c0#1.10.0", "b")
    h.advance(s=1)
    h.end_fault()
    _hosted_start(h, "c1#1.20.0", "a")
    h.final()
    assert _order_of_hosted(h).figures["violations"] == 0


def _read_by_a_stopping_worker(h: HistoryBuilder, *, stopped: bool) -> None:
    """c1 is told to stop; its blocked read returns "a", which it hands back at the tail unstarted;
    c0 starts "b" at once and "a" a second later, heard from all along (so it was running)."""
    if stopped:
        h.fault("term", "c1#1", ends=False)
    h.enqueue("p0", ["a"], prio=1)
    h.enqueue("p0", ["b"], prio=1)
    h.advance(ms=10)
    _hosted_start(h, "c0#1.10.0", "b")
    for _ in range(5):
        h.advance(ms=190)
        h.finish("c0#1.10.0", "b")
    if stopped:
        h.end_fault(restarted="c1#2")
    _hosted_start(h, "c0#1.10.1", "a")
    h.final()


def test_a_hosted_start_after_a_graceful_stop_may_be_a_task_handed_back() -> None:
    h = HistoryBuilder()
    _read_by_a_stopping_worker(h, stopped=True)
    assert _order_of_hosted(h).figures["violations"] == 0


def test_without_a_stop_the_same_late_start_is_caught() -> None:
    h = HistoryBuilder()
    _read_by_a_stopping_worker(h, stopped=False)
    assert _order_of_hosted(h).valid is False


def test_a_worker_process_silent_before_a_late_start_may_have_read_it_before_its_silence() -> None:
    # Seen in a soak (throughput on taskq-worker under load): one worker process journaled nothing for
    # 424 ms, then started ten tasks it had read before; the other worker had started later ones meanwhile.
    h = HistoryBuilder()
    h.enqueue("p0", ["a"], prio=1)
    h.enqueue("p0", ["b"], prio=1)
    h.advance(ms=10)
    h.finish("c1#1.20.0", "earlier")  # c1 was last heard of here, and may have read "a" just then
    _hosted_start(h, "c0#1.10.0", "b")
    h.advance(ms=424)
    _hosted_start(h, "c1#1.20.0", "a")
    h.final()
    assert _order_of_hosted(h).figures["violations"] == 0
