"""Mutants: taskq with one bug each, from the seed report and the latent ones of its design.

Each mutant replaces one operation of the reference adapter with the seed's way of
doing it (plain commands from the client, no ownership check); everything else is
taskq. `harness run SCENARIO --queue taskq-mutant:NAME` runs one; the harness must
find each bug, named by the checker that catches it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from harness.adapters.base import AdapterUnavailable, Delivered, TaskSpec
from harness.adapters.raw_commands import RawCommands
from harness.adapters.taskq_adapter import TASK_TYPE, TaskqAdapter
from harness.adapters.zoo import ZOO
from taskq import Delivery as TaskqDelivery
from taskq import Task, TaskPriority
from taskq.task import Receipt, encode_task, new_task_id

# The seed's fallback stream for entries it did not read itself.
_NORMAL = int(TaskPriority.NORMAL)


class _RawCommands(RawCommands):
    """Helpers for mutants that talk to Redis directly, as the seed did."""

    def _settle_commands(self, priority: int, entry_id: str, *, delete: bool = True) -> list[tuple[Any, ...]]:
        stream, group = self._stream(priority), self.queue.settings.group
        commands: list[tuple[Any, ...]] = [("XACK", stream, group, entry_id)]
        return [*commands, ("XDEL", stream, entry_id)] if delete else commands

    def _completed(self, delivered: list[Delivered]) -> tuple[Any, ...]:
        """The seed kept a tasks_completed metric too; progress barriers read it."""
        return ("HINCRBY", self.queue.keys.stats, "tasks_completed", len(delivered))

    def _retry_fields(self, delivered: Delivered, *, task_id: str, retry_count: int, error: str = "") -> list[Any]:
        """The fields of a retry of `delivered`, with this attempt's error added to its history."""
        task = Task(
            task_id, "harness", delivered.payload, priority=TaskPriority(delivered.priority),
            max_retries=delivered.max_retries, timeout=600, retry_count=retry_count,
        )  # fmt: skip
        fields = encode_task(task, b"j", self.queue.settings.max_payload_bytes)
        history = [*delivered.handle.task.errors, {"attempt": delivered.attempt + 1, "error": error}]
        return [*fields, "errors", json.dumps(history)]


class AckWrongStream(_RawCommands):
    """Seed bug 2: _get_stream_for_message always returned the CRITICAL stream."""

    name = "taskq-mutant:ack-wrong-stream"

    async def complete(self, consumer: str, delivered: list[Delivered]) -> list[bool]:
        commands = [c for d in delivered for c in self._settle_commands(0, d.handle.receipt.entry_id)]
        await self._raw([*commands, self._completed(delivered)])
        return [True] * len(delivered)


class NoDelete(_RawCommands):
    """Seed bug 3: ack without XDEL, so entries stay in the stream forever."""

    name = "taskq-mutant:no-delete"

    async def complete(self, consumer: str, delivered: list[Delivered]) -> list[bool]:
        commands = [
            c for d in delivered for c in self._settle_commands(d.priority, d.handle.receipt.entry_id, delete=False)
        ]
        await self._raw([*commands, self._completed(delivered)])
        return [True] * len(delivered)


class RetryReset(_RawCommands):
    """Seed bug 4: a retry re-adds the task under a new id with retry_count 0, so it never dies."""

    name = "taskq-mutant:retry-reset"

    async def fail(self, consumer: str, failed: list[tuple[Delivered, str]]) -> list[str]:
        commands: list[tuple[Any, ...]] = []
        for delivered, _ in failed:
            fields = self._retry_fields(delivered, task_id=new_task_id(), retry_count=0)
            commands.append(("XADD", self._stream(delivered.priority), "*", *fields))
            commands += self._settle_commands(delivered.priority, delivered.handle.receipt.entry_id)
        await self._raw(commands)
        return ["retried"] * len(failed)


class SplitFail(_RawCommands):
    """The seed's fail: re-add, then ack, in two round trips. A crash between them leaves
    both the retry and the original pending entry, which is reclaimed and run again.

    A short pause between the steps stands for the network hop the seed had there."""

    name = "taskq-mutant:split-fail"
    gap_s = 0.005

    async def fail(self, consumer: str, failed: list[tuple[Delivered, str]]) -> list[str]:
        retried = [(d, error) for d, error in failed if d.attempt < d.max_retries]
        re_adds = [
            (
                "XADD",
                self._stream(d.priority),
                "*",
                *self._retry_fields(d, task_id=d.tid, retry_count=d.attempt + 1, error=e),
            )
            for d, e in retried
        ]
        await self._raw(re_adds)
        await asyncio.sleep(self.gap_s)
        await self._raw([c for d, _ in retried for c in self._settle_commands(d.priority, d.handle.receipt.entry_id)])
        dead = [(d, error) for d, error in failed if d.attempt >= d.max_retries]
        if dead:
            await super().fail(consumer, dead)
        return ["retried" if d.attempt < d.max_retries else "dead" for d, _ in failed]


class ReceiptMap(_RawCommands):
    """Seed fix 2, as shipped: a per-process map from entry id to stream, filled on read.
    Entries this process did not read itself (reclaimed ones) fall back to NORMAL."""

    name = "taskq-mutant:receipt-map"

    def __init__(self) -> None:
        super().__init__()
        self._stream_of: dict[str, int] = {}

    async def consume(self, consumer: str, count: int) -> list[Delivered]:
        found = await super().consume(consumer, count)
        for delivered in found:
            if delivered.deliveries == 1:  # read by XREADGROUP here; reclaimed entries are not mapped
                self._stream_of[delivered.handle.receipt.entry_id] = delivered.priority
        return found

    async def complete(self, consumer: str, delivered: list[Delivered]) -> list[bool]:
        commands = []
        for d in delivered:
            receipt: Receipt = d.handle.receipt
            priority = self._stream_of.pop(receipt.entry_id, _NORMAL)
            commands += self._settle_commands(priority, receipt.entry_id)
        await self._raw([*commands, self._completed(delivered)])
        return [True] * len(delivered)


class SlowAck(TaskqAdapter):
    """A performance bug, not a correctness one: every ack call sleeps a few ms first (as a
    stray synchronous log flush or an extra round trip would). Correct, only slower: the
    performance gate must catch it (`harness gate ci --queue taskq-mutant:slow`)."""

    name = "taskq-mutant:slow"
    delay_s = 0.003

    async def complete(self, consumer: str, delivered: list[Delivered]) -> list[bool]:
        await asyncio.sleep(self.delay_s)
        return await super().complete(consumer, delivered)


# -- Mutants of the promised invariants (issue 13, section 2): each breaks one promise that a checker
# -- of harness/checkers/ (ownership, stored_twice, dlq, budget, identity) names.


class _SettlesByHand(_RawCommands):
    """Helpers for mutants that settle some failed attempts with commands of their own, atomically
    (MULTI/EXEC), and leave the rest to taskq's fail."""

    async def _fail_split(
        self,
        consumer: str,
        failed: list[tuple[Delivered, str]],
        by_hand: Callable[[Delivered], bool],
        commands: Callable[[Delivered, str], list[tuple[Any, ...]]],
        outcome: str,
    ) -> list[str]:
        """Fail the attempts `by_hand` picks with `commands` (answered `outcome`), the rest through taskq."""
        mine = [(d, error) for d, error in failed if by_hand(d)]
        rest = [(d, error) for d, error in failed if not by_hand(d)]
        if mine:
            await self._raw([c for d, error in mine for c in commands(d, error)], atomic=True)
        answers = iter(await super().fail(consumer, rest) if rest else [])
        return [outcome if by_hand(d) else next(answers) for d, _ in failed]

    def _retry_commands(self, d: Delivered, error: str, *, priority: int) -> list[tuple[Any, ...]]:
        """Re-add the next attempt of `d` (its error appended) to `priority`'s stream; settle `d`."""
        fields = self._retry_fields(d, task_id=d.tid, retry_count=d.attempt + 1, error=error)
        return [
            ("XADD", self._stream(priority), "*", *fields),
            *self._settle_commands(d.priority, d.handle.receipt.entry_id),
        ]


class AckNoOwnership(_SettlesByHand):
    """Ack and fail without the lease check (the seed's bare XACK, which checks no consumer, its reply
    unread): a worker paused past its visibility timeout acks or fails the delivery of the worker that
    took the task over, and is told it succeeded."""

    name = "taskq-mutant:ack-no-ownership"

    async def complete(self, consumer: str, delivered: list[Delivered]) -> list[bool]:
        commands = [c for d in delivered for c in self._settle_commands(d.priority, d.handle.receipt.entry_id)]
        await self._raw([*commands, self._completed(delivered)])
        return [True] * len(delivered)  # the seed never read XACK's reply

    async def fail(self, consumer: str, failed: list[tuple[Delivered, str]]) -> list[str]:
        """taskq's fail, with each receipt rewritten to whoever holds the entry now."""
        receipts = [d.handle.receipt for d, _ in failed]
        group = self.queue.settings.group
        holders = await self._raw(
            [("XPENDING", self._stream(r.priority), group, r.entry_id, r.entry_id, 1) for r in receipts]
        )
        forged = []
        for (d, error), own, rows in zip(failed, receipts, holders, strict=True):
            receipt = own._replace(consumer=_text(rows[0][1]), deliveries=int(rows[0][3])) if rows else own
            forged.append((replace(d, handle=TaskqDelivery(receipt, d.handle.task)), error))
        return await super().fail(consumer, forged)


class BlindResend(TaskqAdapter):
    """An enqueue whose answer was lost is sent again, as a client with automatic retries on timeout
    does: when the first copy was stored after all, the task is stored twice."""

    name = "taskq-mutant:blind-resend"
    resends = 3

    async def enqueue(self, tasks: list[TaskSpec]) -> None:
        for left in range(self.resends, -1, -1):
            try:
                await super().enqueue(tasks)
                return
            except AdapterUnavailable:
                if not left:
                    raise


class DlqNoErrors(_SettlesByHand):
    """A task out of retries is dead-lettered without its error history (only the reason of the last
    attempt), as the seed's DLQ writer did: what went wrong in the earlier attempts is gone."""

    name = "taskq-mutant:dlq-no-errors"

    async def fail(self, consumer: str, failed: list[tuple[Delivered, str]]) -> list[str]:
        return await self._fail_split(consumer, failed, _out_of_retries, self._dead_letter_commands, "dead")

    def _dead_letter_commands(self, d: Delivered, error: str) -> list[tuple[Any, ...]]:
        task = Task(d.tid, TASK_TYPE, d.payload, priority=TaskPriority(d.priority), max_retries=d.max_retries,
                    timeout=600, retry_count=d.attempt)  # fmt: skip
        fields = encode_task(task, b"j", self.queue.settings.max_payload_bytes)  # no "errors" field
        entry_id = d.handle.receipt.entry_id
        dead_at_ms = str(int(time.time() * 1000))
        dead = [*fields, "_reason", f"retries exhausted: {error}", "_prio", str(d.priority), "_entry", entry_id,
                "_dead_at", dead_at_ms]  # fmt: skip
        stats = self.queue.keys.stats
        return [("XADD", self.queue.keys.dlq, "*", *dead), *self._settle_commands(d.priority, entry_id),
                ("HINCRBY", stats, "tasks_dead", 1)]  # fmt: skip


class RetryBudgetOffByOne(_SettlesByHand):
    """The retry budget compared with <= where < was meant (retry while attempt <= max_retries): every
    task runs one attempt more than its budget before it is dead-lettered."""

    name = "taskq-mutant:retry-budget-off-by-one"

    async def fail(self, consumer: str, failed: list[tuple[Delivered, str]]) -> list[str]:
        def retry(d: Delivered, error: str) -> list[tuple[Any, ...]]:
            return self._retry_commands(d, error, priority=d.priority)

        return await self._fail_split(consumer, failed, lambda d: d.attempt == d.max_retries, retry, "retried")


class RetryPriorityDrop(_SettlesByHand):
    """A retry is re-added one priority lower than the task was enqueued with (a retry path that
    rebuilds the task with a demoted or default priority)."""

    name = "taskq-mutant:retry-priority-drop"

    async def fail(self, consumer: str, failed: list[tuple[Delivered, str]]) -> list[str]:
        def retry(d: Delivered, error: str) -> list[tuple[Any, ...]]:
            return self._retry_commands(d, error, priority=min(d.priority + 1, _LOWEST))

        return await self._fail_split(consumer, failed, lambda d: not _out_of_retries(d), retry, "retried")


def _out_of_retries(d: Delivered) -> bool:
    return d.attempt >= d.max_retries


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_LOWEST = int(TaskPriority.LOW)

# -- end of the promised-invariant mutants


MUTANTS: dict[str, type[TaskqAdapter]] = {
    "ack-wrong-stream": AckWrongStream,
    "no-delete": NoDelete,
    "retry-reset": RetryReset,
    "split-fail": SplitFail,
    "receipt-map": ReceiptMap,
    "slow": SlowAck,
    # The promised-invariant mutants (issue 13, section 2).
    "ack-no-ownership": AckNoOwnership,
    "blind-resend": BlindResend,
    "dlq-no-errors": DlqNoErrors,
    "retry-budget-off-by-one": RetryBudgetOffByOne,
    "retry-priority-drop": RetryPriorityDrop,
    # -- The mutant zoo: bugs reported against other Redis queues (harness/adapters/zoo.py) --
    **ZOO,
}
MUTANT_DOCS = {name: " ".join((cls.__doc__ or "").split()) for name, cls in MUTANTS.items()}
