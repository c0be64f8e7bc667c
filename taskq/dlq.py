"""The dead-letter queue of a TaskQueue: list, inspect, requeue, purge."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgpack
from redis.exceptions import ResponseError

from taskq.errors import ConfigError, DecodeError
from taskq.scripts import UNAVAILABLE, unavailable, wrong_key_type
from taskq.task import Task, decode_task, field_map, is_entry_id

if TYPE_CHECKING:
    from taskq.queue import TaskQueue


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One DLQ entry. `task` is None for entries that were never readable tasks; `raw` holds those."""

    entry_id: str
    reason: str
    priority: int
    origin_entry_id: str
    dead_at_ms: int
    task: Task | None
    raw: dict[str, bytes] | None

    @property
    def errors(self) -> list[dict[str, Any]]:
        return self.task.errors if self.task is not None else []


def parse_dead_letter(entry_id: bytes, fields: list[bytes] | Mapping[bytes, bytes]) -> DeadLetter:
    values = field_map(fields)
    priority = int(values.get(b"_prio", b"2"))
    task: Task | None = None
    raw: dict[str, bytes] | None = None
    if b"raw" in values:
        flat = msgpack.unpackb(values[b"raw"], raw=True)
        raw = {_text(k): v for k, v in zip(flat[::2], flat[1::2])}
    else:
        try:
            task = decode_task(values, priority)
        except DecodeError:
            raw = {_text(k): v for k, v in values.items()}
    return DeadLetter(
        entry_id=entry_id.decode(),
        reason=_text(values.get(b"_reason", b"")),
        priority=priority,
        origin_entry_id=_text(values.get(b"_entry", b"")),
        dead_at_ms=int(values.get(b"_dead_at", b"0")),
        task=task,
        raw=raw,
    )


def _check_entry_ids(entry_ids: list[str]) -> None:
    for entry_id in entry_ids:
        if not is_entry_id(entry_id):
            raise ConfigError(
                f"{entry_id!r} is not a DLQ entry id (like 1700000000000-0); "
                "`taskq dlq list` or dlq.entries() shows them"
            )


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


class DeadLetters:
    """The DLQ of one queue. Entries stay until requeued or purged."""

    def __init__(self, queue: TaskQueue) -> None:
        self._queue = queue

    @contextlib.asynccontextmanager
    async def _reading(self) -> AsyncIterator[None]:
        """Raise taskq's errors, not redis-py's, from the direct reads below."""
        try:
            yield
        except ResponseError as exc:
            if "WRONGTYPE" not in str(exc):
                raise
            keys = self._queue.keys
            foreign = await self._queue.library.foreign_keys()
            raise wrong_key_type(keys, foreign or [keys.dlq], str(exc)) from exc
        except UNAVAILABLE as exc:
            raise unavailable(exc, "reading the dead-letter queue") from exc

    async def length(self) -> int:
        async with self._reading():
            length: int = await self._queue.redis.xlen(self._queue.keys.dlq)
        return length

    async def entries(self, count: int = 100, *, start: str = "-") -> list[DeadLetter]:
        """Up to `count` entries, oldest first, from entry id `start` on."""
        async with self._reading():
            found: Any = await self._queue.redis.xrange(self._queue.keys.dlq, min=start, count=count)
        return [parse_dead_letter(entry_id, fields) for entry_id, fields in found]

    async def all(self) -> list[DeadLetter]:
        found: list[DeadLetter] = []
        start = "-"
        while batch := await self.entries(1000, start=start):
            found += batch
            start = "(" + batch[-1].entry_id
        return found

    async def get(self, entry_id: str) -> DeadLetter | None:
        _check_entry_ids([entry_id])
        async with self._reading():
            found: Any = await self._queue.redis.xrange(self._queue.keys.dlq, min=entry_id, max=entry_id)
        return parse_dead_letter(*found[0]) if found else None

    async def find(self, task_id: str) -> list[DeadLetter]:
        """Every DLQ entry of one task id (a scan: the DLQ is for inspection, not a hot path)."""
        return [d for d in await self.all() if d.task is not None and d.task.task_id == task_id]

    async def requeue(self, entry_ids: list[str] | None = None) -> int:
        """Put dead tasks back on their priority stream with a fresh retry budget.

        Without ids, requeues every task entry. Returns how many were requeued; raw
        (malformed) entries stay, as they cannot run.
        """
        ids = entry_ids if entry_ids is not None else [d.entry_id for d in await self.all() if d.task is not None]
        _check_entry_ids(ids)
        requeued = 0
        for start in range(0, len(ids), 500):
            statuses = await self._queue.library.requeue_dead(self._queue.settings.group, ids[start : start + 500])
            requeued += sum(1 for s in statuses if s == 1)
        return requeued

    async def purge(self) -> int:
        """Delete every DLQ entry; returns how many there were."""
        return await self._queue.library.purge_dead()
