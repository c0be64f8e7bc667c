"""check_history: every checker on one index, crashes become unknown, and how verdicts compose."""

from __future__ import annotations

import pytest

import harness.checkers as checkers
from harness.checkers import CHECKERS, CheckContext, CheckResult, HistoryIndex, check_history, compose, run_safely
from tests.unit.checkers.builder import HistoryBuilder, run_task


def clean_history() -> HistoryBuilder:
    h = HistoryBuilder()
    h.phase("load")
    for n in range(8):
        run_task(h, f"t{n}", prio=n % 4, consumer=f"c{n % 2}")
    h.enqueue("p0", ["t9"])
    h.deliver("c0#0", [("t9", 2, 0, 1)])
    h.kill("c0", held=["t9"])
    h.advance(s=2.5)
    h.deliver("c1", [("t9", 2, 0, 2)])
    h.complete("c1", ["t9"])
    h.phase("drain")
    h.final()
    return h


def test_every_checker_passes_a_clean_run() -> None:
    results = check_history(clean_history().history())
    assert [r.name for r in results] == list(CHECKERS)
    assert {r.name: r.valid for r in results} == dict.fromkeys(CHECKERS, True)
    assert compose(r.valid for r in results) is True


def test_checker_names_and_order() -> None:
    assert list(CHECKERS) == [
        "delivery", "priority", "order", "dlq", "retry", "recovery", "leaks", "vacuity",
        "ownership", "identity", "budget", "leases", "stored_twice", "producer_order",
    ]  # fmt: skip


def test_a_crashing_checker_is_unknown_never_a_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    def crashes(index: HistoryIndex, context: CheckContext) -> CheckResult:
        raise KeyError("tasks")

    monkeypatch.setitem(checkers.CHECKERS, "priority", crashes)
    results = {r.name: r for r in check_history(clean_history().history())}
    assert results["priority"].valid is None
    assert "checker crashed: KeyError" in results["priority"].note
    assert results["delivery"].valid is True
    assert compose(r.valid for r in results.values()) is None


def test_run_safely_passes_results_through() -> None:
    ok = CheckResult(name="x", valid=False)
    assert run_safely("x", lambda: ok) is ok


def test_unreadable_history_leaves_every_verdict_unknown() -> None:
    results = check_history([{"time_ns": 1, "process": "p0", "type": "invoke", "f": "enqueue", "value": None}])
    assert {r.valid for r in results} == {None}
    assert "could not be indexed" in results[0].note


@pytest.mark.parametrize(
    ("validities", "expected"),
    [
        ([True, True], True),
        ([True, None], None),
        ([None, False], False),
        ([True, False, None], False),
        ([], True),
    ],
)
def test_compose_false_beats_unknown_beats_true(validities: list[bool | None], expected: bool | None) -> None:
    assert compose(validities) is expected


def test_missing_final_state_makes_leaks_and_dlq_unknown() -> None:
    h = HistoryBuilder()
    run_task(h, "t1")
    results = {r.name: r.valid for r in check_history(h.history())}
    assert results["leaks"] is None
    assert results["dlq"] is None
    assert results["delivery"] is True
