"""Properties of the checkers: a correct queue's history passes every checker, and each planted
anomaly is caught by the checker that owns it, whatever the random run around it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.checkers import CheckContext, CheckResult, check_history
from tests.property.model import CONSUMERS, DELIVERY_CAP, LEASE_MS, Action, QueueModel

CONTEXT = CheckContext(pending_timeout_s=LEASE_MS / 1000, delivery_cap=DELIVERY_CAP)

slots = st.integers(0, CONSUMERS - 1)
actions: st.SearchStrategy[Action] = st.one_of(
    st.tuples(
        st.just("enqueue"),
        st.integers(0, 1),
        st.lists(st.tuples(st.integers(0, 3), st.sampled_from([0, 0, 0, 1, 2, 3])), min_size=1, max_size=4),
        st.integers(0, 2),
        st.sampled_from(["ok", "ok", "ok", "ok", "info_applied", "info_lost", "fail"]),
    ),
    st.tuples(st.just("read"), slots, st.integers(1, 4)),
    st.tuples(st.just("read"), slots, st.integers(1, 4)),
    st.tuples(st.just("settle"), slots),
    st.tuples(st.just("kill"), slots),
    st.tuples(st.just("kill_mid_read"), slots, st.integers(1, 3)),
    st.tuples(st.just("wait"), st.integers(1, 80)),
)
runs = st.lists(actions, min_size=15, max_size=60).map(lambda drawn: QueueModel().run(drawn))


def verdicts(history: list[dict[str, Any]]) -> dict[str, CheckResult]:
    return {r.name: r for r in check_history(history, CONTEXT)}


@given(runs)
def test_a_correct_queue_passes_every_checker(model: QueueModel) -> None:
    results = verdicts(model.finish())
    hit = any(f["value"]["held"] for f in model.h.ops if f["f"] == "fault" and f["type"] == "invoke")
    for name, result in results.items():
        if name in ("recovery", "vacuity") and not hit:
            assert result.valid in (True, None), (name, result)  # kills that hit nothing prove nothing
        else:
            assert result.valid is True, (name, result)


# -- planted anomalies: each function breaks the run one way and returns the final-state changes ------


def drop_a_completion(model: QueueModel) -> dict[str, Any]:
    for op in model.h.ops:
        if op["f"] == "complete" and op["type"] == "invoke" and "anchor" in op["value"]["tasks"]:
            op["value"]["tasks"].remove("anchor")
    return {}


def complete_twice_without_a_fault(model: QueueModel) -> dict[str, Any]:
    model.h.deliver("consumer-9#0", [("anchor", 1, 0, 2)])
    model.h.complete("consumer-9#0", ["anchor"])
    return {}


def deliver_a_stranger(model: QueueModel) -> dict[str, Any]:
    model.h.deliver("consumer-9#0", [("ghost", 1, 0, 1)])
    model.h.complete("consumer-9#0", ["ghost"])
    return {}


def reset_an_attempt(model: QueueModel) -> dict[str, Any]:
    model.h.deliver("consumer-9#0", [("retry-anchor", 1, 0, 1)])
    return {}


def redeliver_without_raising_the_count(model: QueueModel) -> dict[str, Any]:
    h = model.h
    h.enqueue("producer-9.0", ["orphan"], prio=1)
    h.deliver("consumer-9#0", [("orphan", 1, 0, 1)])
    h.kill("consumer-9", held=["orphan"])
    h.advance(ms=LEASE_MS * 2)
    h.deliver("consumer-8#0", [("orphan", 1, 0, 1)])  # back on the queue as new: the count started over
    h.complete("consumer-8#0", ["orphan"])
    return {}


def skip_an_attempt(model: QueueModel) -> dict[str, Any]:
    model.h.deliver("consumer-9#0", [("anchor", 1, 1, 1)])
    return {}


def change_an_id(model: QueueModel) -> dict[str, Any]:
    for op in model.h.ops:
        if op["f"] == "deliver" and op["type"] == "ok":
            for entry in op["value"]["tasks"]:
                if entry[0] == "retry-anchor" and entry[2] == 1:
                    entry[0] = "renamed"
                    entry.append("retry-anchor")
    for op in model.h.ops:
        if op["f"] == "complete" and op["type"] == "invoke" and "retry-anchor" in op["value"]["tasks"]:
            op["value"]["tasks"] = ["renamed" if t == "retry-anchor" else t for t in op["value"]["tasks"]]
    return {}


def swap_priorities(model: QueueModel) -> dict[str, Any]:
    h = model.h
    h.enqueue("producer-9.0", ["urgent"], prio=0)
    h.enqueue("producer-9.0", ["background"], prio=3)
    h.advance(ms=50)
    h.deliver("consumer-9#0", [("background", 3, 0, 1)])
    h.deliver("consumer-9#0", [("urgent", 0, 0, 1)])
    h.complete("consumer-9#0", ["background", "urgent"])
    return {}


def overtake_within_a_priority(model: QueueModel) -> dict[str, Any]:
    h = model.h
    h.enqueue("producer-9.0", ["first"], prio=2)
    h.enqueue("producer-9.0", ["second"], prio=2)
    h.deliver("consumer-9#0", [("second", 2, 0, 1)])
    h.deliver("consumer-9#0", [("first", 2, 0, 1)])
    h.complete("consumer-9#0", ["second", "first"])
    return {}


def mark_a_completed_task_dead(model: QueueModel) -> dict[str, Any]:
    model.dead.append(("anchor", "retries exhausted: boom", 1, 2))
    return {}


def lose_a_dead_letter(model: QueueModel) -> dict[str, Any]:
    model.dead = [d for d in model.dead if d[0] != "dead-anchor"]
    return {}


def miscount_errors(model: QueueModel) -> dict[str, Any]:
    model.dead = [
        (tid, reason, attempts, errors + (tid == "dead-anchor")) for tid, reason, attempts, errors in model.dead
    ]
    return {}


def leave_a_task_ready(model: QueueModel) -> dict[str, Any]:
    model.h.enqueue("producer-9.0", ["stuck"], prio=1)
    return {"ready": [("stuck", 1)]}


def leave_an_acked_entry(model: QueueModel) -> dict[str, Any]:
    return {"acked_not_deleted": ["anchor"]}


def _deliveries_of(model: QueueModel, tid: str, attempt: int) -> list[list[Any]]:
    return [
        entry
        for op in model.h.ops
        if op["f"] == "deliver" and op["type"] == "ok"
        for entry in op["value"]["tasks"]
        if entry[0] == tid and entry[2] == attempt
    ]


def accept_a_late_ack(model: QueueModel) -> dict[str, Any]:
    h = model.h
    h.enqueue("producer-9.0", ["late"], prio=1)
    h.deliver("consumer-8#0", [("late", 1, 0, 1)])
    h.advance(ms=LEASE_MS + 1)
    h.deliver("consumer-9#0", [("late", 1, 0, 2)])
    h.complete("consumer-9#0", ["late"])
    h.complete("consumer-8#0", ["late"])  # accepted, though the lease had moved on
    return {}


def hand_over_a_fresh_lease(model: QueueModel) -> dict[str, Any]:
    h = model.h
    h.enqueue("producer-9.0", ["grabbed"], prio=1)
    h.deliver("consumer-8#0", [("grabbed", 1, 0, 1)])
    h.deliver("consumer-9#0", [("grabbed", 1, 0, 2)])  # at once, though consumer-8 is alive and holds it
    h.complete("consumer-9#0", ["grabbed"])
    h.complete("consumer-8#0", ["grabbed"], refused=["grabbed"])
    return {}


def retry_at_a_lower_priority(model: QueueModel) -> dict[str, Any]:
    for entry in _deliveries_of(model, "retry-anchor", 1):
        entry[1] = 2  # enqueued at 1
    return {}


def change_a_retry_payload(model: QueueModel) -> dict[str, Any]:
    for entry in _deliveries_of(model, "retry-anchor", 1):
        entry[6] = "changed"
    return {}


def run_past_the_budget(model: QueueModel) -> dict[str, Any]:
    model.h.deliver("consumer-9#0", [("dead-anchor", 2, 2, 1, "dead-anchor", 1, "d-dead-anchor", 2)])
    return {}


def store_an_enqueue_twice(model: QueueModel) -> dict[str, Any]:
    model.h.deliver("consumer-9#0", [("anchor", 1, 0, 1)])
    model.h.complete("consumer-9#0", ["anchor"])
    return {}


def overtake_within_one_call(model: QueueModel) -> dict[str, Any]:
    h = model.h
    h.enqueue("producer-9.0", ["p9-0", "p9-1"], prio=2)
    h.deliver("consumer-9#0", [("p9-1", 2, 0, 1)])
    h.deliver("consumer-9#0", [("p9-0", 2, 0, 1)])
    h.complete("consumer-9#0", ["p9-1", "p9-0"])
    return {}


Plant = Callable[[QueueModel], dict[str, Any]]


@pytest.mark.parametrize(
    ("plant", "checker"),
    [
        (drop_a_completion, "delivery"),
        (complete_twice_without_a_fault, "delivery"),
        (deliver_a_stranger, "delivery"),
        (reset_an_attempt, "retry"),
        (skip_an_attempt, "retry"),
        (redeliver_without_raising_the_count, "retry"),
        (change_an_id, "retry"),
        (swap_priorities, "priority"),
        (overtake_within_a_priority, "order"),
        (mark_a_completed_task_dead, "dlq"),
        (lose_a_dead_letter, "dlq"),
        (miscount_errors, "dlq"),
        (leave_a_task_ready, "leaks"),
        (leave_an_acked_entry, "leaks"),
        (accept_a_late_ack, "ownership"),
        (hand_over_a_fresh_lease, "leases"),
        (retry_at_a_lower_priority, "identity"),
        (change_a_retry_payload, "identity"),
        (run_past_the_budget, "budget"),
        (store_an_enqueue_twice, "stored_twice"),
        (overtake_within_one_call, "producer_order"),
    ],
    ids=lambda value: getattr(value, "__name__", value),
)
@given(model=runs)
def test_a_planted_anomaly_is_caught(plant: Plant, checker: str, model: QueueModel) -> None:
    final = plant(model)
    result = verdicts(model.finish(**final))[checker]
    assert result.valid is False, result
    assert result.anomalies, result
