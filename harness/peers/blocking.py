"""The client side of a synchronous queue library (celery, rq, dramatiq, huey) inside the async harness."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis

from harness.adapters.base import AdapterUnavailable


class BlockingCalls:
    """Runs a library's blocking calls on one thread of their own, one at a time, as its client expects; a
    connection error of the library's becomes AdapterUnavailable naming it, which the harness reads as
    "Redis did not answer", never as a verdict."""

    def __init__(self, library: str, errors: tuple[type[BaseException], ...] = ()) -> None:
        self.library = library
        self.errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError, *errors)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{library}-client")

    async def __call__(self, fn: Callable[[], Any]) -> Any:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
        except self.errors as exc:
            raise AdapterUnavailable(f"{self.library}: {type(exc).__name__}: {exc}") from exc

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False)
