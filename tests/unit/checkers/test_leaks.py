"""check_leaks: nothing of the run is left in the queue after the drain."""

from __future__ import annotations

from typing import Any

import pytest

from harness.checkers.leaks import check_leaks
from tests.unit.checkers.builder import HistoryBuilder, judge, run_task


def test_empty_queue_after_the_drain_passes() -> None:
    h = HistoryBuilder()
    run_task(h, "t1")
    h.final(foreign=3)
    result = judge(check_leaks, h)
    assert result.valid is True
    assert result.figures == {
        "ready": 0, "pending": 0, "delayed": 0, "acked_not_deleted": 0, "skipped": 0, "foreign": 3,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "left"),
    [
        ("ready", {"ready": [("t1", 2)]}),
        ("pending", {"pending": [("t1", 2, "c0")]}),
        ("delayed", {"delayed": ["t1"]}),
        ("acked_not_deleted", {"acked_not_deleted": ["t1"]}),
    ],
)
def test_each_kind_of_leak_is_caught(kind: str, left: dict[str, Any]) -> None:
    h = HistoryBuilder()
    run_task(h, "t1")
    h.final(**left)
    result = judge(check_leaks, h)
    assert result.valid is False
    assert result.figures[kind] == 1
    assert result.anomalies[0]["kind"] == kind
    assert result.anomalies[0]["tid"] == "t1"


def test_an_entry_behind_the_group_that_was_never_delivered_is_skipped() -> None:
    h = HistoryBuilder()
    run_task(h, "t1")
    h.enqueue("p0", ["t2"])  # never handed out: the group's position moved past it
    h.final(acked_not_deleted=["t1", "t2"])
    result = judge(check_leaks, h)
    assert result.valid is False
    assert (result.figures["acked_not_deleted"], result.figures["skipped"]) == (1, 1)
    assert {a["kind"]: a["tid"] for a in result.anomalies} == {"acked_not_deleted": "t1", "skipped": "t2"}


def test_missing_final_state_is_unknown() -> None:
    h = HistoryBuilder()
    run_task(h, "t1")
    result = judge(check_leaks, h)
    assert result.valid is None
    assert "no final state" in result.note
