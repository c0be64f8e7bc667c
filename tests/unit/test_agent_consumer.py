"""The consumer's delivery record: what the history says about each task handed out."""

from __future__ import annotations

from harness.adapters.base import Delivered
from harness.agents.consumer import delivery_record, payload_digest
from harness.checkers.index import HistoryIndex
from tests.unit.checkers.builder import HistoryBuilder


def delivered(**changes: object) -> Delivered:
    fields: dict[str, object] = {
        "tid": "p0-1", "priority": 2, "attempt": 1, "max_retries": 3, "deliveries": 2,
        "payload": {"tid": "p0-1", "ms": 1.5, "due": 7}, "handle": None, "errors": 1,
    }  # fmt: skip
    fields.update(changes)
    return Delivered(**fields)  # type: ignore[arg-type]


def test_the_record_names_the_task_its_budget_payload_and_errors() -> None:
    record = delivery_record(delivered())
    assert record == ["p0-1", 2, 1, 2, "p0-1", 3, payload_digest({"tid": "p0-1", "ms": 1.5, "due": 7}), 1]


def test_a_renamed_task_is_recorded_under_its_payload_tid() -> None:
    record = delivery_record(delivered(tid="new-id"))
    assert record[0] == "new-id"
    assert record[4] == "p0-1"


def test_the_digest_ignores_key_order_and_sees_every_value() -> None:
    digest = payload_digest({"tid": "p0-1", "ms": 1.5})
    assert digest == payload_digest({"ms": 1.5, "tid": "p0-1"})
    assert digest != payload_digest({"tid": "p0-1", "ms": 1.6})
    assert digest is not None and len(digest) == 8
    assert payload_digest({"not json": object()}) is None


def test_the_index_reads_what_the_consumer_writes() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["p0-1"])
    h.deliver("c0", [tuple(delivery_record(delivered(errors=None)))])
    delivery = HistoryIndex.build(h.history()).deliveries["p0-1"][0]
    assert (delivery.attempt, delivery.deliveries, delivery.max_retries, delivery.errors) == (1, 2, 3, None)
    assert delivery.digest == payload_digest({"tid": "p0-1", "ms": 1.5, "due": 7})
