"""Worker: runs handlers for tasks of one queue, with leases, timeouts and a clean shutdown.

Structured concurrency: the reader, the lease renewer and the settler are sibling
tasks of one task group; each handler runs in a task of its own.

- reader: reclaims expired deliveries and reads new ones, never more than free slots.
- renewer: resets the idle time of everything held, well inside pending_timeout, so
  long tasks are not stolen; a handler whose lease was lost anyway is cancelled.
- settler: acks and fails in batches (whatever finished since the last round trip).

Shutdown (SIGTERM, SIGINT or stop()): stop reading, let running handlers finish
within shutdown_timeout_s, cancel the rest and release their deliveries at once.
While Redis is unreachable, results are not retried past shutdown_timeout_s after
stop(): their deliveries return after pending_timeout and run again, and the worker
exits instead of waiting for Redis forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import os
import random
import signal
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from taskq.backoff import Backoff
from taskq.errors import ConfigError, RedisUnavailable
from taskq.queue import Outcome, TaskQueue
from taskq.task import Delivery, Receipt, Task

log = logging.getLogger("taskq.worker")

_current_receipt: contextvars.ContextVar[Receipt] = contextvars.ContextVar("taskq_current_receipt")


def current_receipt() -> Receipt:
    """Inside a handler run by a Worker: the receipt of the delivery being run (its priority, entry,
    delivery count and consumer). `current_receipt().deliveries > 1` means an earlier delivery of this
    task never finished: a worker died or lost its lease while running it."""
    try:
        return _current_receipt.get()
    except LookupError:
        raise RuntimeError("current_receipt() is only available inside a handler a Worker runs") from None


Handler = Callable[[Task], Awaitable[Any]] | Callable[[Task], Any]


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkerSettings:
    concurrency: int = 10
    # Consumer name in the group; unique per process by default.
    consumer: str | None = None
    # Default: a third of the queue's pending_timeout.
    lease_renew_interval_s: float | None = None
    shutdown_timeout_s: float = 10.0
    reconnect_max_delay_s: float = 5.0

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.shutdown_timeout_s < 0:
            raise ConfigError("shutdown_timeout_s must be zero or positive")


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{random.randrange(16**4):04x}"


class Worker:
    """Runs `handlers[task.task_type](task)` for each delivered task until stopped."""

    def __init__(
        self, queue: TaskQueue, handlers: Mapping[str, Handler], settings: WorkerSettings | None = None
    ) -> None:
        self.queue = queue
        self.handlers = dict(handlers)
        self.settings = settings or WorkerSettings()
        self.consumer = self.settings.consumer or default_consumer_name()
        self.counts: Counter[str] = Counter()
        self._running: dict[Receipt, asyncio.Task[None]] = {}
        self._settling: set[Receipt] = set()
        self._outbox: asyncio.Queue[tuple[Receipt, str | None] | None] = asyncio.Queue()
        self._release_later: list[Receipt] = []
        self._stopping = asyncio.Event()
        self._stop_deadline: float | None = None  # after it, unsettled results are given up
        self._slot_free = asyncio.Event()
        self._done = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the worker to shut down gracefully (idempotent, safe from signal handlers)."""
        if self._stop_deadline is None:
            self._stop_deadline = time.monotonic() + self.settings.shutdown_timeout_s
        self._stopping.set()
        self._slot_free.set()

    async def run(self) -> None:
        """Work until stop() or SIGTERM/SIGINT; returns after a graceful shutdown."""
        with _signals_stop(self.stop):
            await self.serve()

    async def serve(self) -> None:
        """Work until stop(), without installing signal handlers (WorkerGroup installs one for all)."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._read_loop())
            group.create_task(self._renew_loop())
            group.create_task(self._settle_loop())

    @property
    def held(self) -> list[Receipt]:
        """Deliveries this worker owns: running or waiting to be settled."""
        return [*self._running, *self._settling]

    # -- reading ------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        interval_s = self.queue.settings.reclaim_interval_s
        next_reclaim = 0.0
        backoff = Backoff(max_s=self.settings.reconnect_max_delay_s)
        try:
            while not self._stopping.is_set():
                free = self.settings.concurrency - len(self._running)
                if free <= 0:
                    self._slot_free.clear()
                    await self._slot_free.wait()
                    continue
                try:
                    batch: list[Delivery] = []
                    if time.monotonic() >= next_reclaim:
                        batch = await self.queue.reclaim(self.consumer, free)
                        next_reclaim = time.monotonic() + interval_s
                        self.counts["reclaimed"] += len(batch)
                    if not batch:
                        wait_ms = max(1, int((next_reclaim - time.monotonic()) * 1000))
                        block_ms = min(self.queue.settings.block_ms, wait_ms)
                        batch = await self.queue.read(self.consumer, free, block_ms=block_ms)
                    backoff.reset()
                except RedisUnavailable as exc:
                    await self._wait_for_redis(exc, backoff)
                    continue
                for delivery in batch:
                    self._start(delivery)
        finally:
            await self._drain_running()
            self._outbox.put_nowait(None)  # every handler has reported: the settler may finish

    async def _wait_for_redis(self, exc: RedisUnavailable, backoff: Backoff) -> None:
        self.counts["redis_errors"] += 1
        delay = backoff.next_delay_s()
        log.warning("worker %s: %s; retrying in %.2fs", self.consumer, exc, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)
        with contextlib.suppress(RedisUnavailable):
            await self.queue.recover_server_state()

    def _start(self, delivery: Delivery) -> None:
        if self._stopping.is_set():
            self._release_later.append(delivery.receipt)  # read after stop(): released below
            return
        if delivery.receipt in self._running or delivery.receipt in self._settling:
            # The same delivery again: a failover rolled the server back to before this worker's read
            # (or reclaim) and it was handed to this worker once more. The handler already running
            # settles it; a second one would only run the task twice.
            self.counts["redelivered_after_rollback"] += 1
            return
        self._running[delivery.receipt] = asyncio.create_task(self._run_handler(delivery))

    # -- running ----------------------------------------------------------------------------

    async def _run_handler(self, delivery: Delivery) -> None:
        task, receipt = delivery.task, delivery.receipt
        error: str | None = None
        handler = self.handlers.get(task.task_type)
        _current_receipt.set(receipt)  # this handler's own context: asyncio copied it for the task
        try:
            if handler is None:
                error = f"no handler for task type {task.task_type!r} (this worker has {sorted(self.handlers)})"
            else:
                try:
                    async with asyncio.timeout(task.timeout):
                        await _call(handler, task)
                except TimeoutError:
                    error = f"timed out after {task.timeout}s"
                    self.counts["timed_out"] += 1
                except Exception as exc:  # any handler error is a failed attempt
                    error = f"{type(exc).__name__}: {exc}"
        except asyncio.CancelledError:
            self._running.pop(receipt, None)
            self._slot_free.set()
            raise
        self._running.pop(receipt, None)
        self._settling.add(receipt)
        self._outbox.put_nowait((receipt, error))
        self._slot_free.set()

    async def _drain_running(self) -> None:
        """Give running handlers shutdown_timeout_s to finish, then cancel and release them."""
        if self._running:
            await asyncio.wait(list(self._running.values()), timeout=self.settings.shutdown_timeout_s)
        leftover = dict(self._running)
        while any(not t.done() for t in leftover.values()):
            # A cancel can be lost when it lands as an inner await completes: repeat it.
            for t in leftover.values():
                t.cancel()
            await asyncio.wait(list(leftover.values()), timeout=0.1)
        to_release = [*leftover, *self._release_later]
        if to_release:
            try:
                await self.queue.release(self.consumer, to_release)
                self.counts["released"] += len(to_release)
            except RedisUnavailable:
                log.warning("could not release %d deliveries; they return after pending_timeout", len(to_release))

    # -- settling ---------------------------------------------------------------------------

    async def _settle_loop(self) -> None:
        backoff = Backoff(max_s=self.settings.reconnect_max_delay_s)
        finished = False
        while not finished:
            batch = [await self._outbox.get()]
            while not self._outbox.empty():
                batch.append(self._outbox.get_nowait())
            settled = [item for item in batch if item is not None]
            finished = len(settled) < len(batch)
            while settled:
                try:
                    await self._settle(settled)
                    backoff.reset()
                    break
                except RedisUnavailable as exc:
                    if self._stop_deadline is not None and time.monotonic() >= self._stop_deadline:
                        self._give_up(settled, exc)
                        break
                    await self._wait_for_redis(exc, backoff)
        self._done.set()

    def _give_up(self, results: list[tuple[Receipt, str | None]], exc: RedisUnavailable) -> None:
        """Stopping, and Redis still unreachable past shutdown_timeout_s: leave these results unsettled."""
        self.counts["unsettled"] += len(results)
        self._settling.difference_update(receipt for receipt, _ in results)
        log.warning(
            "worker %s: stopping with %d result(s) unsettled, Redis unreachable (%s); their tasks return "
            "after pending_timeout and run again",
            self.consumer, len(results), exc,
        )  # fmt: skip

    async def _settle(self, batch: list[tuple[Receipt, str | None]]) -> None:
        acks = [receipt for receipt, error in batch if error is None]
        fails = [(receipt, error) for receipt, error in batch if error is not None]
        outcomes = [*await self.queue.ack(acks), *await self.queue.fail(fails)]
        for outcome in outcomes:
            self.counts[outcome.name.lower()] += 1
        self._settling.difference_update(r for r, _ in batch)

    # -- leases -----------------------------------------------------------------------------

    async def _renew_loop(self) -> None:
        interval_s = self.settings.lease_renew_interval_s or self.queue.settings.pending_timeout_s / 3
        while True:
            try:
                await asyncio.wait_for(self._done.wait(), interval_s)
                return
            except TimeoutError:
                pass
            held = self.held
            try:
                outcomes = await self.queue.renew(self.consumer, held) if held else []
            except RedisUnavailable:
                continue
            for receipt, outcome in zip(held, outcomes, strict=True):
                if outcome is not Outcome.DONE and receipt in self._running:
                    self.counts["lease_lost"] += 1
                    log.warning("worker %s lost the lease of %s: cancelling its handler", self.consumer, receipt)
                    self._running[receipt].cancel()


class WorkerGroup:
    """One process serving many queues (on a cluster, spread over the shards): a Worker per queue, each with
    its own reader, renewer, settler and `concurrency` slots, under one consumer name, stopped together
    by stop() or SIGTERM/SIGINT.

        first = TaskQueue(url, name="emails")
        await first.connect()
        queues = [first, *(TaskQueue(url, name=n, client=first.redis) for n in ("reports", "thumbnails"))]
        for queue in queues[1:]:
            await queue.connect()
        await WorkerGroup(queues, HANDLERS, WorkerSettings(concurrency=10)).run()

    The queues may share one client (`client=`): one connection pool, one cluster slot map.
    """

    def __init__(
        self, queues: Sequence[TaskQueue], handlers: Mapping[str, Handler], settings: WorkerSettings | None = None
    ) -> None:
        if not queues:
            raise ConfigError("a WorkerGroup needs at least one queue")
        settings = settings or WorkerSettings()
        shared = replace(settings, consumer=settings.consumer or default_consumer_name())
        self.workers = [Worker(queue, handlers, shared) for queue in queues]
        self.consumer = self.workers[0].consumer

    @property
    def counts(self) -> Counter[str]:
        return sum((worker.counts for worker in self.workers), Counter())

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()

    async def run(self) -> None:
        """Work until stop() or SIGTERM/SIGINT; returns when every queue's worker has shut down."""
        with _signals_stop(self.stop):
            async with asyncio.TaskGroup() as group:
                for worker in self.workers:
                    group.create_task(worker.serve())


@contextlib.contextmanager
def _signals_stop(stop: Callable[[], None]) -> Iterator[None]:
    """SIGTERM and SIGINT call `stop` while inside (where the loop can install handlers: the main thread)."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread: the caller stops us with stop()
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def _call(handler: Handler, task: Task) -> Any:
    if inspect.iscoroutinefunction(handler):
        return await handler(task)
    result = await asyncio.to_thread(handler, task)
    if inspect.isawaitable(result):
        return await result
    return result
