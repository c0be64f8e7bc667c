"""Receipts and the stream-entry format of tasks."""

from __future__ import annotations

import pytest

from taskq import DecodeError, PayloadTooLarge, Receipt, ReceiptError, Task, TaskPriority
from taskq.task import Delivery, decode_task, encode_task, new_task_id


def as_bytes(fields: list[bytes | str]) -> list[bytes]:
    """What Redis hands back: every field and value as bytes."""
    return [f.encode() if isinstance(f, str) else f for f in fields]


def entry(tag: bytes = b"j", **overrides: bytes | None) -> dict[bytes, bytes]:
    """A valid entry's fields as a mapping, with some replaced (or removed with None)."""
    task = Task("id-1", "email", {"to": "x"}, max_retries=2, timeout=9.5, retry_count=1, created_at=1700000000.25)
    fields = as_bytes(encode_task(task, tag, 1 << 20))
    values = dict(zip(fields[::2], fields[1::2]))
    for name, value in overrides.items():
        if value is None:
            del values[name.encode()]
        else:
            values[name.encode()] = value
    return values


# -- receipts ---------------------------------------------------------------------------


def test_receipt_format_and_parse_round_trip() -> None:
    receipt = Receipt(1, "1700000000000-3", 2, "worker-a")
    assert str(receipt) == "1:1700000000000-3:2:worker-a"
    assert Receipt.parse(str(receipt)) == receipt
    assert Receipt.parse(receipt) is receipt


def test_receipt_consumer_may_contain_colons() -> None:
    receipt = Receipt(0, "5-0", 1, "host:1234:ab12")
    assert Receipt.parse(str(receipt)) == receipt


def test_delivery_message_id_is_the_receipt_string() -> None:
    receipt = Receipt(3, "7-1", 4, "w")
    assert Delivery(receipt, Task("t", "x", {})).message_id == "3:7-1:4:w"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage",
        "2:1-0:1",  # no consumer part
        "x:1-0:1:w",  # priority not a number
        "2:1-0:one:w",  # deliveries not a number
        "2:1-0:1:",  # empty consumer
        "4:1-0:1:w",  # priority out of range
        "-1:1-0:1:w",
        "2::1:w",  # no entry id
        "2:abc:1:w",  # entry id that is not a stream id
        "2:1-x:1:w",
        "2:1-0:0:w",  # a delivery count starts at 1
        "2:1-0:-1:w",
    ],
)
def test_malformed_receipt_raises_receipt_error_naming_it(text: str) -> None:
    with pytest.raises(ReceiptError, match="is not a taskq receipt") as caught:
        Receipt.parse(text)
    assert repr(text) in str(caught.value)


@pytest.mark.parametrize("value", [None, 123, b"2:1-0:1:w"])
def test_non_string_receipt_raises_receipt_error(value: object) -> None:
    with pytest.raises(ReceiptError, match="pass the message_id yielded by consume_tasks"):
        Receipt.parse(value)  # type: ignore[arg-type]


def test_receipt_error_says_what_to_pass_and_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"message_id yielded by consume_tasks\(\) or Delivery.receipt"):
        Receipt.parse("not-a-receipt")


# -- entries ----------------------------------------------------------------------------


@pytest.mark.parametrize("tag", [b"j", b"m"])
def test_encode_decode_round_trip(tag: bytes) -> None:
    task = Task(
        task_id=new_task_id(),
        task_type="résumé.render",
        payload={"pages": [1, 2, 3], "title": "☃", "draft": False, "meta": None},
        priority=TaskPriority.HIGH,
        max_retries=7,
        timeout=0.1,
        retry_count=2,
        created_at=1712345678.123456,
    )
    decoded = decode_task(as_bytes(encode_task(task, tag, 1 << 20)), int(TaskPriority.HIGH))
    assert decoded == task
    assert decoded.priority is TaskPriority.HIGH
    assert decoded.errors == []


def test_decode_accepts_a_mapping_as_xreadgroup_gives_it() -> None:
    assert decode_task(entry(), 2).task_id == "id-1"


def test_decode_reads_the_errors_field() -> None:
    errors = [{"attempt": 1, "error": "boom", "at_ms": 5, "consumer": "w"}]
    task = decode_task(entry(errors=b'[{"attempt":1,"error":"boom","at_ms":5,"consumer":"w"}]'), 2)
    assert task.errors == errors


def test_entry_without_enc_is_json() -> None:
    # Entries written before the codec tag existed.
    assert decode_task(entry(enc=None), 2).payload == {"to": "x"}


def test_new_task_ids_are_unique_hex() -> None:
    ids = {new_task_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_encode_refuses_payload_over_the_limit_with_both_sizes() -> None:
    task = Task("big-1", "upload", "x" * 98)  # 100 bytes as JSON, with the quotes
    assert len(encode_task(task, b"j", 100)) > 0
    with pytest.raises(PayloadTooLarge, match=r"big-1 \(upload\) is 100 bytes, over the limit of 99"):
        encode_task(task, b"j", 99)


@pytest.mark.parametrize("missing", ["id", "type", "data", "retry", "max", "timeout", "created"])
def test_missing_field_is_a_decode_error_naming_it(missing: str) -> None:
    with pytest.raises(DecodeError, match=f"entry has no '{missing}' field: it was not written by taskq"):
        decode_task(entry(**{missing: None}), 2)


def test_foreign_entry_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="not written by taskq"):
        decode_task([b"event", b"click", b"user", b"42"], 2)


@pytest.mark.parametrize("name", ["id", "type"])
def test_invalid_utf8_is_a_decode_error(name: str) -> None:
    with pytest.raises(DecodeError, match="malformed field"):
        decode_task(entry(**{name: b"\xff\xfeoops"}), 2)


@pytest.mark.parametrize("data", [b"{not json", b"", b"\xff"])
def test_invalid_json_is_a_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError, match="payload is not valid JSON"):
        decode_task(entry(data=data), 2)


def test_invalid_msgpack_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="payload is not valid msgpack"):
        decode_task(entry(b"m", data=b"\x92\x01"), 2)


def test_unknown_codec_tag_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match=r"unknown payload encoding tag b'z'"):
        decode_task(entry(enc=b"z"), 2)


@pytest.mark.parametrize(
    ("name", "value"),
    [("retry", b"two"), ("max", b""), ("timeout", b"soon"), ("created", b"yesterday"), ("errors", b"[oops")],
)
def test_malformed_number_or_errors_is_a_decode_error(name: str, value: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_task(entry(**{name: value}), 2)


@pytest.mark.parametrize("priority", [-1, 4, 99])
def test_priority_outside_the_streams_is_a_decode_error(priority: int) -> None:
    with pytest.raises(DecodeError):
        decode_task(entry(), priority)
