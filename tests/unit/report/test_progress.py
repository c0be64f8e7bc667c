"""Unseen tasks and realtime lag from planted histories."""

from __future__ import annotations

from harness.checkers.index import HistoryIndex
from harness.report.progress import Unseen, load_start_ns, realtime_lag, unseen_over_time
from tests.unit.checkers.builder import HistoryBuilder


def count_at(unseen: Unseen, state: str, t_s: float) -> int:
    """The count at the last sample at or before t_s."""
    at = max(n for n, t in enumerate(unseen.t_s) if t <= t_s)
    return unseen.counts[state][at]


def test_a_task_is_unseen_from_its_enqueue_to_its_completion_ready_held_then_delayed() -> None:
    h = HistoryBuilder(step_ns=1000)
    h.phase("load")  # t = 0
    h.advance(s=1.0)
    h.enqueue("p0.0", ["a", "b"])  # ready from 1 s
    h.enqueue("p0.0", ["lost"], outcome="info")  # never acknowledged: never counted
    h.advance(s=1.0)
    h.deliver("c0#0", [("a", 2, 0, 1)])  # a held from 2 s
    h.advance(s=1.0)
    h.fail("c0#0", [("a", 0)], "retried")  # a delayed from 3 s
    h.advance(s=1.0)
    h.deliver("c0#0", [("a", 2, 1, 1), ("b", 2, 0, 1)])  # both held from 4 s
    h.advance(s=1.0)
    h.complete("c0#0", ["a"])  # a done at 5 s; b stays held (its holder never settles it)
    h.deliver("c1#0", [("a", 2, 1, 2)])  # a redelivery after completion: still seen
    h.advance(s=1.0)
    h.phase("final")
    unseen = unseen_over_time(HistoryIndex.build(h.history()), h.ops[0]["time_ns"], samples=601)
    expected = {0.5: (0, 0, 0), 1.5: (2, 0, 0), 2.5: (1, 1, 0), 3.5: (1, 0, 1), 4.5: (0, 2, 0), 5.5: (0, 1, 0)}
    for t_s, counts in expected.items():
        assert tuple(count_at(unseen, state, t_s) for state in ("ready", "held", "delayed")) == counts, t_s


def test_a_dead_letter_ends_a_task_and_a_refused_ack_does_not() -> None:
    h = HistoryBuilder(step_ns=1000)
    h.phase("load")
    h.enqueue("p0.0", ["a", "b"])
    h.deliver("c0#0", [("a", 2, 0, 1), ("b", 2, 0, 1)])
    h.advance(s=1.0)
    h.fail("c0#0", [("a", 3)], "dead")
    h.complete("c0#0", ["b"], refused=["b"])
    h.advance(s=1.0)
    h.phase("final")
    unseen = unseen_over_time(HistoryIndex.build(h.history()), h.ops[0]["time_ns"], samples=201)
    assert count_at(unseen, "held", 1.5) == 1  # b: its ack was refused, it is not done


def test_realtime_lag_is_the_time_since_the_first_task_a_consumer_had_not_seen() -> None:
    h = HistoryBuilder(step_ns=1000)
    h.phase("load")
    h.enqueue("p0.0", ["a"])  # ~0 s
    h.advance(s=1.0)
    h.enqueue("p0.0", ["b"])  # ~1 s
    h.advance(s=1.0)
    h.deliver("c0#0", [("a", 2, 0, 1)])  # at ~2 s it has seen a; b exists since ~1 s: lag ~1 s
    h.advance(s=1.0)
    h.deliver("c0#0", [])  # at ~3 s nothing is ready: caught up, lag 0
    h.enqueue("p0.0", ["c"])  # ~3 s
    h.advance(s=0.5)
    h.deliver("c1#0", [("a", 2, 0, 2)])  # ~3.5 s a reclaimed task says nothing of c1's position: no lag yet
    h.deliver("c0#1", [("b", 2, 1, 1)])  # a new incarnation; a retry is not a read of the stream's tail
    h.deliver("c0#1", [("c", 2, 0, 1)])  # it has seen c, the newest: lag 0
    history = h.history()
    index = HistoryIndex.build(history)
    lag = realtime_lag(index, history, load_start_ns(index, history))
    assert list(lag.lag_s) == ["c0", "c1"]  # slots: incarnations of c0 share a line
    assert [round(x, 2) for x in lag.lag_s["c0"]] == [1.0, 0.0, 0.0, 0.0]
    assert [round(x, 1) for x in lag.t_s["c0"]] == [2.0, 3.0, 3.5, 3.5]
    assert lag.lag_s["c1"] == [0.0]
    assert lag.worst() is not None and round(lag.worst()[2], 2) == 1.0  # type: ignore[index]


def test_lag_counts_the_worst_stream() -> None:
    h = HistoryBuilder(step_ns=1000)
    h.phase("load")
    h.enqueue("p0.0", ["hi"], prio=0)
    h.enqueue("p0.0", ["lo1", "lo2"], prio=3)
    h.advance(s=2.0)
    h.deliver("c0#0", [("hi", 0, 0, 1), ("lo1", 3, 0, 1)])  # lo2 has waited since ~0 s
    history = h.history()
    index = HistoryIndex.build(history)
    lag = realtime_lag(index, history, load_start_ns(index, history))
    assert round(lag.lag_s["c0"][0], 1) == 2.0
