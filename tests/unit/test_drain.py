"""harness.drain: the stall bound sums what can still move; an invoke younger than the client timeout
keeps the drain waiting."""

from __future__ import annotations

from pathlib import Path

import orjson

from harness.adapters.base import QueueOptions
from harness.adapters.promises import Promises
from harness.drain import MARGIN_S, DrainBounds, in_flight

S = 1_000_000_000


def write(journal: Path, *records: tuple[str, str, int]) -> None:
    with journal.open("ab") as f:
        for process, type_, at_ns in records:
            f.write(orjson.dumps({"process": process, "type": type_, "f": "deliver", "time_ns": at_ns}) + b"\n")


def test_the_stall_bound_adds_client_timeout_visibility_reclaim_and_retry_delay() -> None:
    options = QueueOptions(pending_timeout_s=1.0, retry_max_delay_s=2.0)
    bounds = DrainBounds.of(options, Promises(), client_timeout_s=5.0)
    assert bounds.stall_s == 5.0 + 1.0 + 0.25 + 2.0 + MARGIN_S
    hosted = DrainBounds.of(options, Promises(visibility_timeout_s=30.0), client_timeout_s=10.0)
    assert hosted.visibility_timeout_s == 30.0  # the library's own, not the scenario's


def test_an_open_invoke_younger_than_the_client_timeout_is_in_flight(tmp_path: Path) -> None:
    journal = tmp_path / "consumer-0#1.jsonl"
    c0 = "consumer-0#1"
    write(journal, (c0, "invoke", 10 * S), (c0, "ok", 11 * S), (c0, "invoke", 12 * S))
    assert in_flight([journal], client_timeout_s=5.0, now_ns=14 * S) == ["consumer-0#1"]
    assert in_flight([journal], client_timeout_s=5.0, now_ns=30 * S) == []  # aged out: it will never finish


def test_answered_operations_and_missing_journals_are_not_in_flight(tmp_path: Path) -> None:
    journal = tmp_path / "consumer-0#1.jsonl"
    write(journal, ("consumer-0#1", "invoke", 10 * S), ("consumer-0#1", "ok", 10 * S))
    assert in_flight([journal, tmp_path / "absent.jsonl"], client_timeout_s=5.0, now_ns=11 * S) == []
