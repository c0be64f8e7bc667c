"""The mutant zoo: taskq with one bug each, every one a bug reported against a Redis queue.

The seed's mutants (harness.adapters.mutants) re-create the bugs of the report taskq grew
from; these re-create bugs found in other libraries' trackers, each named in its class's
docstring with the report it comes from. Each replaces one operation of the reference
adapter with the library's way of doing it (plain commands from the client where the
library had no script); everything else is taskq. `harness run SCENARIO --queue
taskq-mutant:NAME` runs one. docs/mutant-zoo.md says which scenario and checker catch each,
and what `harness search` needed to find it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from typing import Any, NamedTuple

import msgpack
from redis.exceptions import LockError, ResponseError

from harness.adapters.base import AdapterRefused, AdapterUnavailable, Delivered, TaskSpec
from harness.adapters.raw_commands import RawCommands
from harness.adapters.taskq_adapter import TASK_TYPE, TaskqAdapter
from taskq import Delivery, PayloadError, QueueStats, RedisUnavailable, Task, TaskPriority, TaskqError, TaskQueue
from taskq.codec import codec_tag
from taskq.scripts import UNAVAILABLE, Library, unavailable
from taskq.task import Receipt, decode_task, encode_task

# What a MAXLEN-trimming producer keeps per stream: a cap sized for a queue that keeps up.
MAXLEN = 100
# How long a worker loop waits after a failed read before it tries again (a NOGROUP, say).
ERROR_BACKOFF_S = 1.0


class _ZooAdapter(RawCommands):
    """Helpers for mutants that send plain commands, as the libraries they copy do."""

    async def _reclaim_due(self, consumer: str, count: int) -> list[Delivery]:
        """taskq's reclaim, on taskq's cadence (TaskqAdapter.consume does the same)."""
        if time.monotonic() < self._next_reclaim:
            return []
        self._next_reclaim = time.monotonic() + self.queue.settings.reclaim_interval_s
        try:
            return await self.queue.reclaim(consumer, count)
        except RedisUnavailable as exc:
            raise AdapterUnavailable(str(exc)) from exc

    async def _xadd_enqueue(self, tasks: list[TaskSpec], *, maxlen: int | None = None) -> None:
        """The seed's and most libraries' enqueue: XADD per task, no script (so no group is created)."""
        settings = self.queue.settings
        tag, trim = codec_tag(settings.codec), ("MAXLEN", "~", maxlen) if maxlen else ()
        commands: list[tuple[Any, ...]] = []
        for spec in tasks:
            task = Task(spec.tid, TASK_TYPE, spec.payload, priority=TaskPriority(spec.priority),
                        max_retries=spec.max_retries, timeout=600)  # fmt: skip
            try:
                fields = encode_task(task, tag, settings.max_payload_bytes)
            except PayloadError as exc:
                raise AdapterRefused(str(exc)) from exc
            commands.append(("XADD", self._stream(spec.priority), *trim, "*", *fields))
        await self._raw([*commands, ("HINCRBY", self.queue.keys.stats, "tasks_added", len(tasks))])

    def _retry_entry(self, consumer: str, delivered: Delivered, error: str) -> list[Any]:
        """The fields of the next attempt: retry count up by one, this attempt's error added."""
        task: Task = delivered.handle.task
        return self._fields(dataclasses.replace(task, retry_count=task.retry_count + 1), _errors(task, consumer, error))

    def _dead_entry(self, consumer: str, delivered: Delivered, error: str) -> list[Any]:
        """A DLQ entry as taskq writes one (taskq.lua dead_letter), with every attempt's error."""
        task: Task = delivered.handle.task
        receipt: Receipt = delivered.handle.receipt
        return [
            *self._fields(task, _errors(task, consumer, error)), "_reason", f"retries exhausted: {error}",
            "_prio", str(receipt.priority), "_entry", receipt.entry_id, "_dead_at", str(_now_ms()),
        ]  # fmt: skip

    def _fields(self, task: Task, errors: list[dict[str, Any]]) -> list[Any]:
        settings = self.queue.settings
        return [*encode_task(task, codec_tag(settings.codec), settings.max_payload_bytes), "errors", json.dumps(errors)]

    def _resend_commands(self, consumer: str, failed: list[tuple[Delivered, str]]) -> list[tuple[Any, ...]]:
        """Each failed attempt re-added as a new entry, or, out of retries, written to the DLQ."""
        commands: list[tuple[Any, ...]] = []
        for delivered, error in failed:
            if delivered.attempt < delivered.max_retries:
                commands.append(("XADD", self._stream(delivered.priority), "*",
                                 *self._retry_entry(consumer, delivered, error)))  # fmt: skip
            else:
                commands.append(("XADD", self.queue.keys.dlq, "*", *self._dead_entry(consumer, delivered, error)))
                commands.append(("HINCRBY", self.queue.keys.stats, "tasks_dead", 1))
        return commands

    def _settle_commands(self, delivered: list[Delivered]) -> list[tuple[Any, ...]]:
        """XACK + XDEL per delivery, without asking whose lease it is (as plain clients do)."""
        group = self.queue.settings.group
        commands: list[tuple[Any, ...]] = []
        for d in delivered:
            stream, entry_id = self._stream(d.priority), d.handle.receipt.entry_id
            commands += [("XACK", stream, group, entry_id), ("XDEL", stream, entry_id)]
        return commands

    def _decoded(self, consumer: str, entries: list[tuple[int, bytes, int, Any]]) -> list[Delivered]:
        return [
            self._delivered(Delivery(Receipt(prio, entry_id.decode(), deliveries, consumer), decode_task(fields, prio)))
            for prio, entry_id, deliveries, fields in entries
        ]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _errors(task: Task, consumer: str, error: str) -> list[dict[str, Any]]:
    return [*task.errors, {"attempt": task.retry_count + 1, "error": error, "at_ms": _now_ms(), "consumer": consumer}]


def _outcomes(failed: list[tuple[Delivered, str]]) -> list[str]:
    return ["retried" if d.attempt < d.max_retries else "dead" for d, _ in failed]


# -- at-most-once by accident ---------------------------------------------------------------


class EarlyAck(_ZooAdapter):
    """Ack on receipt, before the handler runs (celery's default `acks_late=False`, taskiq's
    `AckType.WHEN_RECEIVED`; reported as a loss in RichardKnop/machinery #586, jiajunhuang/toq #2):
    a worker that dies mid-task takes the task with it. A failed attempt is re-sent as a new
    message (the entry is gone already), as those libraries' retry middlewares do."""

    name = "taskq-mutant:early-ack"

    async def consume(self, consumer: str, count: int) -> list[Delivered]:
        found = await super().consume(consumer, count)
        if found:
            try:
                await self.queue.ack([d.handle.receipt for d in found])
            except RedisUnavailable as exc:
                raise AdapterUnavailable(str(exc)) from exc
        return found

    async def complete(self, consumer: str, delivered: list[Delivered]) -> list[bool]:
        return [True] * len(delivered)  # acked when it was received

    async def fail(self, consumer: str, failed: list[tuple[Delivered, str]]) -> list[str]:
        await self._raw(self._resend_commands(consumer, failed))
        return _outcomes(failed)


class FailAckFirst(_ZooAdapter):
    """A retry that acks the failed delivery first and re-adds the task second, in two round
    trips (svix/svix-webhooks #569: "ACKed before the reinsertion, meaning an improperly timed
    crash could lead to lost message tasks"). The mirror of the seed's split-fail: a crash
    between the steps loses the task instead of running it twice.

    A pause between the steps stands for what the library did there (a round trip, a log line, a
    metrics call): 20 ms, so that a kill aimed at a fail in flight lands in it even when the nemesis
    reads the victim's journal late on a busy machine (at 5 ms it missed at a load average of 25)."""

    name = "taskq-mutant:fail-ack-first"
    gap_s = 0.02

    async def fail(self, consumer: str, failed: list[tuple[Delivered, str]]) -> list[str]:
        retried = [(d, error) for d, error in failed if d.attempt < d.max_retries]
        await self._raw(self._settle_commands([d for d, _ in retried]))
        await asyncio.sleep(self.gap_s)
        await self._raw(self._resend_commands(consumer, retried))
        dead = [(d, error) for d, error in failed if d.attempt >= d.max_retries]
        answers = iter(await super().fail(consumer, dead) if dead else [])  # taskq's own fail, ownership checked
        return ["retried" if d.attempt < d.max_retries else next(answers) for d, _ in failed]


# -- recovery that never comes --------------------------------------------------------------


class NoReclaim(_ZooAdapter):
    """Reads new entries only (`XREADGROUP ... >`) and never looks at the pending entries list:
    what a dead worker held is never handed out again (taskiq-python/taskiq-redis #130,
    openlinker-project/openlinker #2164, infiniflow/ragflow #15806)."""

    name = "taskq-mutant:no-reclaim"

    async def consume(self, consumer: str, count: int) -> list[Delivered]:
        try:
            return [self._delivered(d) for d in await self.queue.read(consumer, count)]
        except RedisUnavailable as exc:
            raise AdapterUnavailable(str(exc)) from exc


class ReclaimLockLeak(_ZooAdapter):
    """Reclaim guarded by a Redis lock with no expiry, held while the reclaimed tasks are handed
    out (taskiq-python/taskiq-redis #131: its `listen()` yields the XAUTOCLAIM results inside
    `async with lock`, and `redis.lock(name)` has no timeout). A worker killed while it holds
    reclaimed tasks never releases the lock: from then on nobody reclaims anything."""

    name = "taskq-mutant:reclaim-lock-leak"

    def __init__(self) -> None:
        super().__init__()
        self._held: Any = None

    def _lock(self) -> Any:
        return self.queue.redis.lock(f"{self.queue.keys.prefix}:reclaim-lock", timeout=None)

    async def _release(self) -> None:
        held, self._held = self._held, None
        try:
            await held.release()
        except LockError:
            pass  # lost with a flush: nothing to release
        except (*UNAVAILABLE, RedisUnavailable) as exc:
            raise AdapterUnavailable(str(exc)) from exc

    async def consume(self, consumer: str, count: int) -> list[Delivered]:
        if self._held is not None:  # the reclaimed batch was handled: the generator moves on
            await self._release()
        found: list[Delivery] = []
        if time.monotonic() >= self._next_reclaim:
            lock = self._lock()
            try:
                acquired = await lock.acquire(blocking=False)
            except UNAVAILABLE as exc:
                raise AdapterUnavailable(str(exc)) from exc
            if acquired:
                self._held = lock
                found = await self._reclaim_due(consumer, count)
                if not found:
                    await self._release()
        if found:
            return [self._delivered(d) for d in found]
        try:
            return [self._delivered(d) for d in await self.queue.read(consumer, count)]
        except RedisUnavailable as exc:
            raise AdapterUnavailable(str(exc)) from exc

    async def close(self) -> None:
        if self._held is not None:  # a graceful stop leaves `async with lock`: released
            with contextlib.suppress(AdapterUnavailable):
                await self._release()
        await super().close()


class CountReset(_ZooAdapter):
    """Recovered tasks are put back on the queue as new messages, so their delivery count starts
    over (dramatiq's Redis broker requeues a dead worker's messages, and Bogdanp/dramatiq #383
    asks to stop retrying those forever; kombu's `restore_visible` puts celery's unacked
    messages back on their list the same way). A task that kills every worker that runs it
    never reaches the delivery cap: it loops forever."""

    name = "taskq-mutant:count-reset"

    async def consume(self, consumer: str, count: int) -> list[Delivered]:
        try:
            reclaimed = await self._reclaim_due(consumer, count)
            if reclaimed:
                await self.queue.release(consumer, [d.receipt for d in reclaimed])
            return [self._delivered(d) for d in await self.queue.read(consumer, count)]
        except RedisUnavailable as exc:
            raise AdapterUnavailable(str(exc)) from exc


# -- ordering and scheduling -----------------------------------------------------------------


class NonStrictPriority(_ZooAdapter):
    """One XREADGROUP over the four priority streams: Redis returns up to COUNT entries from
    every stream, so LOW tasks go out while CRITICAL ones wait (kombu reads its priority lists
    round-robin, celery/kombu #518; sonus21/rqueue #276: "Priorities are NOT STRICT")."""

    name = "taskq-mutant:non-strict-priority"

    async def consume(self, consumer: str, count: int) -> list[Delivered]:
        reclaimed = await self._reclaim_due(consumer, count)
        if reclaimed:
            return [self._delivered(d) for d in reclaimed]
        queue = self.queue
        streams: Any = dict.fromkeys(queue.keys.streams, ">")
        try:
            await queue.promote()
            reply: Any = await queue.redis.xreadgroup(
                queue.settings.group, consumer, streams, count=count, block=max(1, queue.settings.block_ms)
            )
        except (*UNAVAILABLE, RedisUnavailable) as exc:
            raise AdapterUnavailable(str(exc)) from exc
        except ResponseError as exc:
            if "NOGROUP" in str(exc):
                return []
            raise
        prio_of = {stream.encode(): prio for prio, stream in enumerate(queue.keys.streams)}
        entries = [(prio_of[stream], entry_id, 1, fields) for stream, rows in reply or [] for entry_id, fields in rows]
        return self._decoded(consumer, entries)


class PromoteSplit(_ZooAdapter):
    """Due retries moved from the delayed set to their stream in two steps from the client:
    read the due members, XADD them, then ZREM them. Two consumers promoting at once both add
    the same task (rq/rq #1354 and #2338, rq/rq #1914: schedulers "call zrangebyscore
    simultaneously ... and then put the same job in a queue twice"; OptimalBits/bull #187).

    A short pause between the steps stands for the network hop the library had there."""

    name = "taskq-mutant:promote-split"
    gap_s = 0.005

    async def consume(self, consumer: str, count: int) -> list[Delivered]:
        reclaimed = await self._reclaim_due(consumer, count)
        if reclaimed:
            return [self._delivered(d) for d in reclaimed]
        queue = self.queue
        try:
            await self._promote_in_two_steps()
            # taskq's read, told not to promote (a limit of 0): the mutant did that above.
            reply = await queue.library.read(queue.settings.group, consumer, count, "", 0)
        except (*UNAVAILABLE, RedisUnavailable) as exc:
            raise AdapterUnavailable(str(exc)) from exc
        entries = [(reply[i], reply[i + 1], 1, reply[i + 2]) for i in range(1, len(reply), 3)]
        if not entries:  # nothing ready: wait as taskq's read would, or until a retry is due
            wait_ms = queue.settings.block_ms if reply[0] < 0 else min(queue.settings.block_ms, reply[0])
            await asyncio.sleep(wait_ms / 1000)
        return self._decoded(consumer, entries)

    async def _promote_in_two_steps(self) -> None:
        queue = self.queue
        due: Any = await queue.redis.zrangebyscore(
            queue.keys.delayed, "-inf", _now_ms(), start=0, num=queue.settings.promote_limit
        )
        if not due:
            return
        adds = []
        for member in due:
            prio, *fields = msgpack.unpackb(member, raw=True)  # taskq.lua packs {priority, fields...}
            adds.append(("XADD", self._stream(int(prio)), "*", *fields))
        await self._raw(adds)
        await asyncio.sleep(self.gap_s)
        await queue.redis.zrem(queue.keys.delayed, *due)


class MaxlenTrim(_ZooAdapter):
    """Enqueue with `XADD ... MAXLEN ~ 100`: trimming drops the oldest entries whether or not they
    were ever read or acked, so a backlog past the cap loses tasks (symfony/symfony #53406:
    "removes messages from the beginning of the stream, even the ones that are currently
    processed"; taskiq-redis's `maxlen`, taskiq-python/taskiq-redis #81)."""

    name = "taskq-mutant:maxlen-trim"

    async def enqueue(self, tasks: list[TaskSpec]) -> None:
        await self._xadd_enqueue(tasks, maxlen=MAXLEN)


# -- Redis losing its state ------------------------------------------------------------------


class _DollarGroupQueue(TaskQueue):
    """taskq, but the consumer group is created at `$` (the newest entry), not at `0`."""

    async def _create_group(self, stream: str) -> None:
        try:
            await self.redis.xgroup_create(stream, self.settings.group, id="$", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


class _GroupsAtStartup(_ZooAdapter):
    """Enqueue is a plain XADD (the stream appears without a group); the group is made when a
    process starts; reads are XREADGROUP per stream, highest priority first. Subclasses say
    what a read does when the group is gone."""

    async def enqueue(self, tasks: list[TaskSpec]) -> None:
        await self._xadd_enqueue(tasks)

    async def consume(self, consumer: str, count: int) -> list[Delivered]:
        reclaimed = await self._reclaim_due(consumer, count)
        if reclaimed:
            return [self._delivered(d) for d in reclaimed]
        try:
            await self.queue.promote()
            entries = await self._read_streams(consumer, count)
        except (*UNAVAILABLE, RedisUnavailable) as exc:
            raise AdapterUnavailable(str(exc)) from exc
        if not entries:
            await asyncio.sleep(self.queue.settings.block_ms / 1000)
        return self._decoded(consumer, entries)

    async def _read_streams(self, consumer: str, count: int) -> list[tuple[int, bytes, int, Any]]:
        queue = self.queue
        entries: list[tuple[int, bytes, int, Any]] = []
        for prio, stream in enumerate(queue.keys.streams):
            if len(entries) >= count:
                break
            try:
                reply: Any = await queue.redis.xreadgroup(
                    queue.settings.group, consumer, {stream: ">"}, count=count - len(entries)
                )
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                await asyncio.sleep(ERROR_BACKOFF_S)  # logged, and tried again after a pause
                await self._group_lost(stream)
                continue
            entries += [(prio, entry_id, 1, fields) for _, rows in reply or [] for entry_id, fields in rows]
        return entries

    async def _group_lost(self, stream: str) -> None:
        raise NotImplementedError


class NoGroupRecreate(_GroupsAtStartup):
    """The consumer group is created at startup only: after Redis lost it (a restart without
    persistence, FLUSHALL, eviction), producers' XADDs recreate the stream without a group and
    every XREADGROUP fails with NOGROUP until the workers restart (ag2ai/faststream #2611,
    nexi-lab/nexus #4338, comet-ml/opik #5525)."""

    name = "taskq-mutant:no-group-recreate"

    async def _group_lost(self, stream: str) -> None:
        pass  # and the next read fails the same way, until the process restarts


class GroupAtDollar(_GroupsAtStartup):
    """The consumer group is created, and re-created after NOGROUP, at `$`: whatever was added
    to the stream before that moment is never delivered (taskiq-redis's `RedisStreamBroker`
    defaults to `consumer_id="$"`; jaseci-labs/jac #7489: a group "recreated at `$` after
    eviction, silently dropping any messages published to the newly-created stream")."""

    name = "taskq-mutant:group-at-dollar"
    queue_class = _DollarGroupQueue

    async def _group_lost(self, stream: str) -> None:
        try:
            await self.queue.redis.xgroup_create(stream, self.queue.settings.group, id="$", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


class _NoReloadLibrary(Library):
    """taskq's Functions library without the reload: "Function not found" is raised, not healed."""

    async def call(self, function: str, args: Any, *, durable: bool = False) -> Any:
        # `durable` waits for replicas: the zoo runs on one server, where there are none to wait for.
        try:
            return await self._redis.fcall(function, len(self._keys), *self._keys, *args)
        except UNAVAILABLE as exc:
            raise unavailable(exc, f"calling {function}") from exc
        except ResponseError as exc:
            raise await self._translate(exc, function) from exc


class _NoReloadQueue(TaskQueue):
    """Loads the library when the process connects, and never again."""

    async def connect(self) -> None:
        await super().connect()
        self._library = _NoReloadLibrary(self.redis, self.keys)


class NoFunctionReload(_ZooAdapter):
    """Server-side code loaded once, when the process starts: after Redis restarts empty (or
    FUNCTION FLUSH), every call fails with "Function not found" until the workers are restarted
    (gresrun/jesque #100: "If redis restarts, lua scripts aren't reloaded"; bee-queue/bee-queue
    #489: "the script cache is lost, after which the queue will no longer be available").

    The harness's own reads (depth, final state) use plain commands here: taskq's stats
    function would load the library again and hide the bug."""

    name = "taskq-mutant:no-function-reload"
    queue_class = _NoReloadQueue

    async def enqueue(self, tasks: list[TaskSpec]) -> None:
        try:
            await super().enqueue(tasks)
        except TaskqError as exc:  # the script is missing: the enqueue certainly did not run
            raise AdapterRefused(str(exc)) from exc

    async def consume(self, consumer: str, count: int) -> list[Delivered]:
        try:
            return await super().consume(consumer, count)
        except TaskqError as exc:  # logged by the worker loop, which tries again
            raise AdapterUnavailable(str(exc)) from exc

    async def complete(self, consumer: str, delivered: list[Delivered]) -> list[bool]:
        try:
            return await super().complete(consumer, delivered)
        except TaskqError as exc:
            raise AdapterUnavailable(str(exc)) from exc

    async def fail(self, consumer: str, failed: list[tuple[Delivered, str]]) -> list[str]:
        try:
            return await super().fail(consumer, failed)
        except TaskqError as exc:
            raise AdapterUnavailable(str(exc)) from exc

    async def stats(self, queue: TaskQueue | None = None) -> QueueStats:
        queue = queue or self.queue
        redis = queue.redis
        try:
            lengths = [await redis.xlen(stream) for stream in queue.keys.streams]
            pending = [await _pending_count(queue, stream) for stream in queue.keys.streams]
            delayed, dead = await redis.zcard(queue.keys.delayed), await redis.xlen(queue.keys.dlq)
            counters: Any = await redis.hgetall(queue.keys.stats)
        except UNAVAILABLE as exc:
            raise unavailable(exc, "reading the queue's counts") from exc
        flat = [item for pair in counters.items() for item in pair]
        return QueueStats.from_reply([*lengths, *pending, delayed, dead, *flat])


async def _pending_count(queue: TaskQueue, stream: str) -> int:
    try:
        summary: Any = await queue.redis.xpending(stream, queue.settings.group)
    except ResponseError:
        return 0  # no group: nothing is pending
    return int(summary["pending"])


class Exposure(NamedTuple):
    """Where a mutant's bug shows: the scenario that exposes it, the checker that names it, and that
    checker's figure for it (tests/chaos/test_zoo.py, harness/bench/zoo.py)."""

    scenario: str
    checker: str
    figure: str


EXPOSURES: dict[str, Exposure] = {
    "early-ack": Exposure("kill_reclaimers", "delivery", "lost"),
    "fail-ack-first": Exposure("retries_and_dlq", "delivery", "lost"),
    "no-reclaim": Exposure("kill_reclaimers", "recovery", "never_redelivered"),
    "reclaim-lock-leak": Exposure("kill_reclaimers", "recovery", "never_redelivered"),
    "count-reset": Exposure("poison_pill", "retry", "delivery_count_resets"),
    "non-strict-priority": Exposure("priority_backlog", "priority", "inversions"),
    "promote-split": Exposure("retries_and_dlq", "delivery", "duplicated_unexplained"),
    "maxlen-trim": Exposure("priority_backlog", "delivery", "lost"),
    "no-group-recreate": Exposure("redis_restart_empty", "leaks", "ready"),
    "group-at-dollar": Exposure("redis_restart_empty", "leaks", "skipped"),
    "no-function-reload": Exposure("redis_restart_empty", "recovery", "never_back_in_service"),
}

# The zoo, by the name `--queue taskq-mutant:NAME` takes (harness.adapters.mutants merges it).
ZOO: dict[str, type[TaskqAdapter]] = {
    "early-ack": EarlyAck,
    "fail-ack-first": FailAckFirst,
    "no-reclaim": NoReclaim,
    "reclaim-lock-leak": ReclaimLockLeak,
    "count-reset": CountReset,
    "non-strict-priority": NonStrictPriority,
    "promote-split": PromoteSplit,
    "maxlen-trim": MaxlenTrim,
    "no-group-recreate": NoGroupRecreate,
    "group-at-dollar": GroupAtDollar,
    "no-function-reload": NoFunctionReload,
}
