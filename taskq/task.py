"""Tasks, priorities, receipts, and the stream-entry format they are stored in."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, NamedTuple

from taskq.codec import decode_payload, encode_payload
from taskq.errors import DecodeError, PayloadTooLarge, ReceiptError

_ENTRY_ID = re.compile(r"[0-9]+-[0-9]+")


def is_entry_id(text: str) -> bool:
    """True for a complete stream entry id, like 1700000000000-0."""
    return _ENTRY_ID.fullmatch(text) is not None


class TaskPriority(IntEnum):
    """Higher priorities are always read first. The value is the stream index."""

    CRITICAL = 0
    HIGH = 1
    NORMAL = 2
    LOW = 3


@dataclass(slots=True)
class Task:
    """One unit of work. `retry_count` is the number of failed attempts so far."""

    task_id: str
    task_type: str
    payload: Any
    priority: TaskPriority = TaskPriority.NORMAL
    max_retries: int = 3
    timeout: float = 300.0
    retry_count: int = 0
    created_at: float = field(default_factory=time.time)
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def attempt(self) -> int:
        """1 for the first try, 2 for the first retry, and so on."""
        return self.retry_count + 1


def new_task_id() -> str:
    return uuid.uuid4().hex


class Receipt(NamedTuple):
    """Names one delivery: which stream, which entry, which lease.

    Its string form travels between processes; ack and fail accept it from any
    process because it carries the stream, not just the entry id.
    """

    priority: int
    entry_id: str
    deliveries: int
    consumer: str

    def __str__(self) -> str:
        return f"{self.priority}:{self.entry_id}:{self.deliveries}:{self.consumer}"

    @classmethod
    def parse(cls, text: str | Receipt) -> Receipt:
        if isinstance(text, Receipt):
            return text
        parts = text.split(":", 3) if isinstance(text, str) else []
        try:
            priority, entry_id, deliveries, consumer = parts
            receipt = cls(int(priority), entry_id, int(deliveries), consumer)
        except ValueError:
            raise ReceiptError(
                f"{text!r} is not a taskq receipt; pass the message_id yielded by "
                "consume_tasks() or Delivery.receipt unchanged"
            ) from None
        if not 0 <= receipt.priority <= 3 or not receipt.consumer:
            raise ReceiptError(f"{text!r} is not a taskq receipt (priority 0-3 and a consumer are required)")
        if not is_entry_id(receipt.entry_id) or receipt.deliveries < 1:
            raise ReceiptError(
                f"{text!r} is not a taskq receipt (it needs a stream entry id like 1700000000000-0 "
                "and a delivery count of at least 1)"
            )
        return receipt


class Delivery(NamedTuple):
    """A task handed to a consumer, with the receipt that settles it."""

    receipt: Receipt
    task: Task

    @property
    def message_id(self) -> str:
        return str(self.receipt)


def encode_task(task: Task, tag: bytes, max_payload_bytes: int) -> list[bytes | str]:
    """The stream-entry fields of a task, as a flat field/value list."""
    data = encode_payload(task.payload, tag)
    if len(data) > max_payload_bytes:
        raise PayloadTooLarge(
            f"payload of task {task.task_id} ({task.task_type}) is {len(data)} bytes, over the "
            f"limit of {max_payload_bytes}; store large data elsewhere and pass a reference, "
            "or raise max_payload_bytes"
        )
    return [
        "id", task.task_id, "type", task.task_type, "data", data, "enc", tag,
        "retry", str(task.retry_count), "max", str(task.max_retries),
        "timeout", repr(float(task.timeout)), "created", repr(float(task.created_at)),
    ]  # fmt: skip


def field_map(fields: list[bytes] | Mapping[bytes, bytes]) -> Mapping[bytes, bytes]:
    """An entry's fields as a mapping (function replies give a flat list, XREADGROUP a dict)."""
    if isinstance(fields, Mapping):
        return fields
    it = iter(fields)
    return dict(zip(it, it))


# Field names in the order encode_task writes them: entries in this layout take the fast path.
_LAYOUT = (b"id", b"type", b"data", b"enc", b"retry", b"max", b"timeout", b"created")
_PRIORITIES = tuple(TaskPriority)


def decode_task(fields: list[bytes] | Mapping[bytes, bytes], priority: int) -> Task:
    """Parse an entry's fields; raise DecodeError when it is not a task."""
    if isinstance(fields, list) and len(fields) == 16 and tuple(fields[::2]) == _LAYOUT:
        try:
            return Task(
                fields[1].decode(), fields[3].decode(), decode_payload(fields[5], fields[7]), _PRIORITIES[priority],
                int(fields[11]), float(fields[13]), int(fields[9]), float(fields[15]), [],
            )  # fmt: skip
        except (UnicodeDecodeError, ValueError, IndexError) as exc:
            raise DecodeError(f"entry has a malformed field: {exc}") from None
    values = field_map(fields)
    try:
        task = Task(
            task_id=values[b"id"].decode(),
            task_type=values[b"type"].decode(),
            payload=decode_payload(values[b"data"], values.get(b"enc", b"j")),
            priority=TaskPriority(priority),
            max_retries=int(values[b"max"]),
            timeout=float(values[b"timeout"]),
            retry_count=int(values[b"retry"]),
            created_at=float(values[b"created"]),
        )
        if b"errors" in values:
            task.errors = decode_payload(values[b"errors"], b"j")
    except KeyError as exc:
        raise DecodeError(f"entry has no {exc.args[0].decode()!r} field: it was not written by taskq") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise DecodeError(f"entry has a malformed field: {exc}") from None
    return task
