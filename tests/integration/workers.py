"""Start real worker processes (`python -m taskq worker ...`) and wait on what they leave behind."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from taskq import RedisUnavailable, Task, TaskQueue, Worker

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def start_worker(
    redis_url: str,
    queue: str,
    *,
    consumer: str,
    pending_timeout: float = 0.5,
    delivery_cap: int = 5,
    extra: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "taskq", "worker", "tests.integration.handlers:HANDLERS",
        "--redis", redis_url, "--queue", queue, "--consumer", consumer, "--concurrency", "2",
        "--pending-timeout", str(pending_timeout), "--delivery-cap", str(delivery_cap), "--shutdown-timeout", "1",
        *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


async def wait_for_file(path: Path, timeout_s: float = 10.0) -> str:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout_s}s")
        await asyncio.sleep(0.01)
    return path.read_text()


def stop_worker(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> str:
    """SIGTERM, wait, and return what it wrote to stderr."""
    if process.poll() is None:
        process.terminate()
    try:
        _, err = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    return err.decode(errors="replace")


class RunningWorker:
    """An in-process Worker running in a background task; stopped gracefully on exit."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Worker:
        self._task = asyncio.create_task(self.worker.run())
        return self.worker

    async def __aexit__(self, *exc: object) -> None:
        self.worker.stop()
        assert self._task is not None
        await asyncio.wait_for(self._task, 15)


async def eventually(predicate: Callable[[], Awaitable[bool]], timeout_s: float = 10.0, what: str = "") -> None:
    """Poll an async predicate until true, or fail after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not true within {timeout_s}s: {what or predicate}")
        await asyncio.sleep(0.02)


async def poll_until(
    fetch: Callable[[], Awaitable[T]], timeout_s: float = 10.0, what: str = "", every_s: float = 0.02
) -> T:
    """Call `fetch` until it returns something truthy, and return that; fail after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while not (found := await fetch()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing within {timeout_s}s: {what or fetch}")
        await asyncio.sleep(every_s)
    return found


async def add_retrying(queue: TaskQueue, tasks: list[Task]) -> None:
    """What an application does after a connection error: try again until the server is back."""
    for _ in range(50):
        try:
            await queue.add_tasks(tasks)
            return
        except RedisUnavailable:
            await asyncio.sleep(0.1)
    raise AssertionError("Redis did not come back")
