"""Fixtures shared by every test: a real redis-server and a fresh queue name per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.errors import SetupError
from harness.providers.local import LocalRedis, RedisConfig, find_redis_server
from taskq import TaskQueue


def start_redis(workdir: Path, config: RedisConfig | None = None) -> LocalRedis:
    """Start a redis-server for a test, or fail with how to install it."""
    try:
        find_redis_server()
    except SetupError as exc:
        pytest.fail(str(exc), pytrace=False)
    server = LocalRedis(workdir, config)
    server.start()
    return server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedis]:
    """One server for the session; tests stay apart through unique queue names."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[LocalRedis]:
    """A server of the test's own, for tests that kill, restart, pause or flush it."""
    server = start_redis(tmp_path / "redis")
    yield server
    server.stop()


@pytest.fixture
def queue_name() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


QueueFactory = Callable[..., TaskQueue]


@pytest.fixture
async def make_queue(redis_server: LocalRedis, queue_name: str) -> AsyncIterator[QueueFactory]:
    """Builds connected queues on the session server (same name unless overridden); closes them after."""
    made: list[TaskQueue] = []

    def make(url: str | None = None, **options: Any) -> TaskQueue:
        options.setdefault("name", queue_name)
        options.setdefault("pending_timeout", 0.5)
        options.setdefault("retry_base_delay", 0)
        queue = TaskQueue(url or redis_server.url, **options)
        made.append(queue)
        return queue

    yield make
    for queue in made:
        await queue.disconnect()


@pytest.fixture
async def queue(make_queue: QueueFactory) -> TaskQueue:
    made = make_queue()
    await made.connect()
    return made
