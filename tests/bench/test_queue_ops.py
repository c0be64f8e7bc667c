"""Microbenchmarks of taskq's operations against a real redis-server (tests/conftest.py starts it).

    .venv/bin/pytest tests/bench --benchmark-autosave          # results kept in .benchmarks/
    .venv/bin/pytest tests/bench --benchmark-compare           # against the last saved run
    .venv/bin/pytest tests/bench --benchmark-json=reports/micro.json

Each benchmark times one call of the public API on its own queue; work a call needs
beforehand (tasks to read, deliveries to reclaim, due retries to promote) is made in
untimed setup. Batches are BATCH tasks; `extra_info["tasks_per_call"]` says how many.
The asyncio loop is driven with run_until_complete, which adds a few microseconds to
every call alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from harness.providers import LocalRedis
from taskq import QueueSettings, Task, TaskQueue
from taskq.task import Delivery

pytestmark = pytest.mark.bench

BATCH = 50
ROUNDS = 200
PAYLOAD = {"tid": "t", "ms": 0.0, "due": 1_700_000_000_000_000_000, "text": "x" * 64}


class Clock:
    """An injected epoch-ms clock, so due retries and delayed tasks come due without waiting."""

    def __init__(self) -> None:
        self.now_ms = 1_700_000_000_000

    def __call__(self) -> int:
        return self.now_ms


class Bench:
    """A connected queue on a loop of its own; run() drives one coroutine to completion."""

    def __init__(self, url: str, settings: QueueSettings) -> None:
        self.loop = asyncio.new_event_loop()
        self.queue = TaskQueue(url, settings=settings)
        self.run(self.queue.connect())
        self.made = 0

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return self.loop.run_until_complete(coroutine)

    def tasks(self, n: int) -> list[Task]:
        first, self.made = self.made, self.made + n
        return [Task(f"t{i}", "bench", PAYLOAD, max_retries=1_000_000) for i in range(first, self.made)]

    def close(self) -> None:
        self.run(self.queue.disconnect())
        self.loop.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_bench(redis_server: LocalRedis, queue_name: str, clock: Clock) -> Iterator[Callable[..., Bench]]:
    made: list[Bench] = []

    def make(**options: Any) -> Bench:
        settings = QueueSettings(name=queue_name, batch_size=BATCH, block_ms=0, retry_base_delay_s=0,
                                 clock_ms=clock, **options)  # fmt: skip
        made.append(Bench(redis_server.url, settings))
        return made[-1]

    yield make
    for bench in made:
        bench.close()


def test_enqueue_one(benchmark: Any, make_bench: Callable[..., Bench]) -> None:
    bench = make_bench()
    benchmark.extra_info["tasks_per_call"] = 1
    benchmark(lambda: bench.run(bench.queue.add_tasks(bench.tasks(1))))


def test_enqueue_bulk(benchmark: Any, make_bench: Callable[..., Bench]) -> None:
    bench = make_bench()
    benchmark.extra_info["tasks_per_call"] = BATCH
    benchmark(lambda: bench.run(bench.queue.add_tasks(bench.tasks(BATCH))))


def test_read_and_ack_batch(benchmark: Any, make_bench: Callable[..., Bench]) -> None:
    bench = make_bench()
    queue = bench.queue

    def setup() -> tuple[tuple[()], dict[str, Any]]:
        bench.run(queue.add_tasks(bench.tasks(BATCH)))
        return (), {}

    async def read_and_ack() -> None:
        deliveries = await queue.read("c", BATCH)
        await queue.ack([d.receipt for d in deliveries])

    benchmark.extra_info["tasks_per_call"] = BATCH
    benchmark.pedantic(lambda: bench.run(read_and_ack()), setup=setup, rounds=ROUNDS, warmup_rounds=5)
    assert bench.run(queue.stats()).total_ready == 0


def test_fail_and_retry_batch(benchmark: Any, make_bench: Callable[..., Bench]) -> None:
    bench = make_bench()
    queue = bench.queue
    held: list[Delivery] = []

    def setup() -> tuple[tuple[()], dict[str, Any]]:
        bench.run(queue.add_tasks(bench.tasks(BATCH)))
        held[:] = bench.run(queue.read("c", BATCH))
        return (), {}

    benchmark.extra_info["tasks_per_call"] = BATCH
    benchmark.pedantic(
        lambda: bench.run(queue.fail([(d.receipt, "planned failure") for d in held])),
        setup=setup, rounds=ROUNDS, warmup_rounds=5,
    )  # fmt: skip
    assert bench.run(queue.stats()).counters["tasks_retried"] >= ROUNDS * BATCH


def test_reclaim_batch(benchmark: Any, make_bench: Callable[..., Bench], clock: Clock) -> None:
    bench = make_bench(pending_timeout_s=0.001)
    queue = bench.queue
    reclaimed: list[Delivery] = []

    def setup() -> tuple[tuple[()], dict[str, Any]]:
        if reclaimed:
            bench.run(queue.ack([d.receipt for d in reclaimed]))
        bench.run(queue.add_tasks(bench.tasks(BATCH)))
        bench.run(queue.read("dead-worker", BATCH))
        bench.run(asyncio.sleep(0.005))  # idle past the 1 ms visibility timeout
        return (), {}

    def reclaim() -> None:
        reclaimed[:] = bench.run(queue.reclaim("live-worker", BATCH))

    benchmark.extra_info["tasks_per_call"] = BATCH
    benchmark.pedantic(reclaim, setup=setup, rounds=ROUNDS, warmup_rounds=5)
    assert len(reclaimed) == BATCH


def test_promote_batch(benchmark: Any, make_bench: Callable[..., Bench], clock: Clock) -> None:
    bench = make_bench(promote_limit=BATCH)
    queue = bench.queue

    def setup() -> tuple[tuple[()], dict[str, Any]]:
        bench.run(queue.add_tasks(bench.tasks(BATCH), delay_s=1.0))
        clock.now_ms += 2000  # every delayed task is due now
        return (), {}

    promoted: list[int] = []
    benchmark.extra_info["tasks_per_call"] = BATCH
    benchmark.pedantic(lambda: promoted.append(bench.run(queue.promote())), setup=setup, rounds=ROUNDS, warmup_rounds=5)
    assert set(promoted) == {BATCH}
