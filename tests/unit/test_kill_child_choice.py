"""kill-child's choice (harness.nemesis.worker): a child that runs a task, and only that child's tasks as held."""

from __future__ import annotations

import random

from harness.nemesis.worker import _choose_child


def test_a_child_running_a_task_is_chosen_with_only_its_tasks() -> None:
    lanes = {"consumer-1#2.200.0": ["t1"], "consumer-1#2.200.1": ["t2"], "consumer-1#2.300.0": ["t3"]}
    for seed in range(20):
        child, held = _choose_child([100, 200, 300, 400], lanes, random.Random(seed))
        assert (child, sorted(held)) in ((200, ["t1", "t2"]), (300, ["t3"]))


def test_idle_children_only_give_one_holding_nothing() -> None:
    child, held = _choose_child([100, 400], {"consumer-1#2.999.0": ["t1"]}, random.Random(1))
    assert child in (100, 400) and held == []


def test_no_children_is_no_choice() -> None:
    assert _choose_child([], {"consumer-1#2.200.0": ["t1"]}, random.Random(1)) == (None, [])
