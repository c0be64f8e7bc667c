"""Task handlers for worker processes started by the tests (`taskq worker tests.integration.handlers:HANDLERS`).

Payloads carry a `marker` folder: a handler writes `<task_id>.started` when it begins
and appends to `<task_id>.done` when it finishes, so tests can see from outside
what a worker process did.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from taskq import Task


def _mark(task: Task, suffix: str) -> None:
    folder = task.payload.get("marker")
    if folder:
        with (Path(folder) / f"{task.task_id}.{suffix}").open("a") as out:
            out.write(f"{os.getpid()}\n")


async def sleep(task: Task) -> None:
    _mark(task, "started")
    await asyncio.sleep(task.payload.get("seconds", 0))
    _mark(task, "done")


async def hang_once(task: Task) -> None:
    """Hangs on its first run; a later run (after the first worker died) finishes at once."""
    first_run = not (Path(task.payload["marker"]) / f"{task.task_id}.started").exists()
    _mark(task, "started")
    if first_run:
        await asyncio.sleep(60)
    _mark(task, "done")


async def crash(task: Task) -> None:
    """A poison task: it kills the worker process that runs it."""
    _mark(task, "started")
    os._exit(17)


async def fail(task: Task) -> None:
    _mark(task, "started")
    raise RuntimeError(task.payload.get("message", "planned failure"))


HANDLERS: dict[str, Any] = {"sleep": sleep, "hang_once": hang_once, "crash": crash, "fail": fail}
