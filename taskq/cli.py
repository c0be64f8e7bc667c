"""The taskq command line: a thin layer that parses and forwards to TaskQueue and Worker."""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from functools import wraps
from typing import Any, TypeVar

import click

from taskq.errors import RedisUnavailable, TaskqError
from taskq.queue import TaskQueue
from taskq.task import TaskPriority
from taskq.worker import Handler, Worker, WorkerGroup, WorkerSettings

T = TypeVar("T")

redis_option = click.option(
    "--redis", "redis_url", envvar="TASKQ_REDIS_URL", default="redis://localhost:6379/0", show_default=True,
    help="Redis URL (redis://user:password@host:port/db; rediss:// for TLS; redis+sentinel://h:p,h:p/SERVICE "
    "for a Sentinel-watched primary; redis+cluster://h:p,h:p/ for a cluster).",
)  # fmt: skip
queue_option = click.option("--queue", "name", envvar="TASKQ_QUEUE", default="tasks", show_default=True)


def run_async(command: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., T]:
    """Run an async click command; a TaskqError becomes one line on stderr and exit 2."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return asyncio.run(command(*args, **kwargs))
        except TaskqError as exc:
            click.echo(f"taskq: {exc}", err=True)
            sys.exit(2)

    return wrapper


async def with_queue(redis_url: str, name: str, action: Callable[[TaskQueue], Awaitable[T]], **options: Any) -> T:
    async with TaskQueue(redis_url, name=name, **options) as queue:
        return await action(queue)


def load_handlers(spec: str) -> Mapping[str, Handler]:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise click.BadParameter(f"{spec!r} is not MODULE:ATTRIBUTE, e.g. myapp.tasks:HANDLERS")
    try:
        handlers = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise click.BadParameter(f"cannot load {spec!r}: {exc}") from exc
    if not isinstance(handlers, Mapping) or not all(callable(h) for h in handlers.values()):
        raise click.BadParameter(f"{spec!r} must be a mapping of task type to handler function")
    return handlers


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log what the worker does.")
def main(verbose: bool) -> None:
    """taskq: a priority task queue on Redis Streams."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(message)s")


@main.command()
@click.argument("handlers")
@redis_option
@click.option(
    "--queue", "names", envvar="TASKQ_QUEUE", multiple=True, default=("tasks",), show_default=True,
    help="Queue to serve; repeat it to serve many (on a cluster they spread over the shards).",
)  # fmt: skip
@click.option("--concurrency", default=10, show_default=True, type=click.IntRange(min=1), help="Per queue.")
@click.option("--consumer", default=None, help="Consumer name (default: host-pid-random).")
@click.option("--pending-timeout", default=30.0, show_default=True, type=click.FloatRange(min=0, min_open=True))
@click.option("--shutdown-timeout", default=10.0, show_default=True, type=click.FloatRange(min=0))
@click.option(
    "--delivery-cap",
    default=5,
    show_default=True,
    type=click.IntRange(min=1),
    help="Deliveries without ack or fail (crashed workers) before a task is dead-lettered.",
)
@click.option("--retry-base-delay", default=1.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds before the first retry; doubled each retry, with jitter.")  # fmt: skip
@click.option("--retry-max-delay", default=300.0, show_default=True, type=click.FloatRange(min=0),
              help="Longest delay before a retry.")  # fmt: skip
@click.option("--block-ms", default=1000, show_default=True, type=click.IntRange(min=0),
              help="Longest blocking wait for new tasks (also bounds how late a reclaim runs).")  # fmt: skip
@click.option("--lease-renew-interval", default=None, type=click.FloatRange(min=0, min_open=True),
              help="Seconds between lease renewals [default: a third of --pending-timeout].")  # fmt: skip
@click.option(
    "--replicas-to-wait", default=0, show_default=True, type=click.IntRange(min=0),
    help="After each ack and fail, WAIT for this many replicas (see ReplicationTimeout).",
)  # fmt: skip
@click.option(
    "--connect-timeout", default=30.0, show_default=True, type=click.FloatRange(min=0),
    help="Seconds to keep trying to reach Redis at start (a worker started while Redis restarts waits for it).",
)  # fmt: skip
@run_async
async def worker(
    handlers: str,
    redis_url: str,
    names: tuple[str, ...],
    concurrency: int,
    consumer: str | None,
    pending_timeout: float,
    shutdown_timeout: float,
    delivery_cap: int,
    retry_base_delay: float,
    retry_max_delay: float,
    block_ms: int,
    lease_renew_interval: float | None,
    replicas_to_wait: int,
    connect_timeout: float,
) -> None:
    """Run HANDLERS (MODULE:MAPPING of task type to function) until SIGTERM."""
    loaded = load_handlers(handlers)
    settings = WorkerSettings(
        concurrency=concurrency, consumer=consumer, shutdown_timeout_s=shutdown_timeout,
        lease_renew_interval_s=lease_renew_interval,
    )  # fmt: skip
    options: dict[str, Any] = {
        "pending_timeout": pending_timeout, "delivery_cap": delivery_cap, "replicas_to_wait": replicas_to_wait,
        "retry_base_delay": retry_base_delay, "retry_max_delay_s": max(retry_max_delay, retry_base_delay),
        "block_ms": block_ms,
    }  # fmt: skip
    queues: list[TaskQueue] = []
    try:
        for name in dict.fromkeys(names):  # one client for all: the first queue's
            queues.append(TaskQueue(redis_url, name=name, client=queues[0].redis if queues else None, **options))
            await connect_within(queues[-1], connect_timeout)
        running: Worker | WorkerGroup = (
            Worker(queues[0], loaded, settings) if len(queues) == 1 else WorkerGroup(queues, loaded, settings)
        )
        await running.run()
        click.echo(f"worker {running.consumer} stopped: {dict(running.counts)}", err=True)
    finally:
        for queue in reversed(queues):
            await queue.disconnect()


async def connect_within(queue: TaskQueue, timeout_s: float) -> None:
    """Connect, trying again while Redis cannot be reached, for up to timeout_s; then the last error."""
    deadline = time.monotonic() + timeout_s
    announced = False
    while True:
        try:
            await queue.connect()
            return
        except RedisUnavailable as exc:
            if time.monotonic() >= deadline:
                raise
            if not announced:  # once: what is wrong may be the URL, and the user should not wait to see it
                click.echo(f"taskq: {exc}; trying again for up to {timeout_s:g} s (--connect-timeout)", err=True)
                announced = True
            await asyncio.sleep(0.25)


@main.command()
@click.argument("task_type")
@click.argument("payload", default="{}")
@redis_option
@queue_option
@click.option("--priority", type=click.Choice([p.name for p in TaskPriority], case_sensitive=False), default="NORMAL")
@click.option("--max-retries", default=3, show_default=True, type=click.IntRange(min=0))
@click.option("--timeout", default=300.0, show_default=True, type=click.FloatRange(min=0, min_open=True))
@click.option("--delay", default=0.0, type=click.FloatRange(min=0), help="Seconds until the task is ready.")
@run_async
async def enqueue(
    task_type: str,
    payload: str,
    redis_url: str,
    name: str,
    priority: str,
    max_retries: int,
    timeout: float,
    delay: float,
) -> None:
    """Add one task with a JSON PAYLOAD; prints its id."""
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"PAYLOAD is not JSON ({exc}); quote it, e.g. '{{\"n\": 1}}'") from exc

    async def add(queue: TaskQueue) -> str:
        return await queue.add_task(
            task_type, data, TaskPriority[priority.upper()], max_retries, timeout, delay_s=delay
        )

    click.echo(await with_queue(redis_url, name, add))


@main.command()
@redis_option
@queue_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@run_async
async def stats(redis_url: str, name: str, as_json: bool) -> None:
    """Show ready, pending, delayed and dead counts and the counters."""

    async def read(queue: TaskQueue) -> dict[str, Any]:
        return await queue.get_queue_stats()

    found = await with_queue(redis_url, name, read)
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    for key, value in found.items():
        click.echo(f"{key:>18}  {value}")


@main.group()
def dlq() -> None:
    """Inspect and act on the dead-letter queue."""


@dlq.command("list")
@redis_option
@queue_option
@click.option("--count", default=20, show_default=True, type=click.IntRange(min=1))
@run_async
async def dlq_list(redis_url: str, name: str, count: int) -> None:
    """List dead entries, oldest first."""

    async def read(queue: TaskQueue) -> None:
        for dead in await queue.dlq.entries(count):
            what = f"{dead.task.task_type} {dead.task.task_id}" if dead.task else "raw entry"
            click.echo(f"{dead.entry_id}  {what}  {dead.reason}")

    await with_queue(redis_url, name, read)


@dlq.command("show")
@click.argument("entry_id")
@redis_option
@queue_option
@run_async
async def dlq_show(entry_id: str, redis_url: str, name: str) -> None:
    """Print one dead entry with every attempt's error, as JSON."""

    async def read(queue: TaskQueue) -> None:
        dead = await queue.dlq.get(entry_id)
        if dead is None:
            raise click.ClickException(f"no DLQ entry {entry_id}; `taskq dlq list` shows the ids")
        task = dead.task
        shown = {
            "entry_id": dead.entry_id, "reason": dead.reason, "priority": dead.priority,
            "task": None if task is None else {
                "task_id": task.task_id, "task_type": task.task_type, "payload": task.payload,
                "retry_count": task.retry_count, "max_retries": task.max_retries, "errors": task.errors,
            },
            "raw": None if dead.raw is None else {k: v.decode("utf-8", "replace") for k, v in dead.raw.items()},
        }  # fmt: skip
        click.echo(json.dumps(shown, indent=2, default=str))

    await with_queue(redis_url, name, read)


@dlq.command("requeue")
@click.argument("entry_ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Requeue every task in the DLQ.")
@redis_option
@queue_option
@run_async
async def dlq_requeue(entry_ids: tuple[str, ...], everything: bool, redis_url: str, name: str) -> None:
    """Put dead tasks back with a fresh retry budget."""
    if not entry_ids and not everything:
        raise click.UsageError("name DLQ entry ids, or pass --all")

    async def requeue(queue: TaskQueue) -> int:
        return await queue.dlq.requeue(None if everything else list(entry_ids))

    click.echo(f"requeued {await with_queue(redis_url, name, requeue)}")


@dlq.command("purge")
@click.option("--yes", is_flag=True, help="Confirm: dead tasks are deleted for good.")
@redis_option
@queue_option
@run_async
async def dlq_purge(yes: bool, redis_url: str, name: str) -> None:
    """Delete every dead entry."""
    if not yes:
        raise click.UsageError("purge deletes dead tasks for good: pass --yes to confirm")

    async def purge(queue: TaskQueue) -> int:
        return await queue.dlq.purge()

    click.echo(f"purged {await with_queue(redis_url, name, purge)}")
