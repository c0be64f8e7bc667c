"""The taskq Functions library: loading it, and one typed method per function.

The library is (re)loaded whenever Redis lost it (a restart without persistence, a
FUNCTION FLUSH): a call that finds no function reloads and runs again. That is safe
because a missing function means the call did not run at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from typing import Any, Final

import msgpack
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from taskq.errors import RedisUnavailable, TaskqError, WrongKeyType
from taskq.keys import QueueKeys

LIBRARY_NAME: Final = "taskq"
LIBRARY_SOURCE: Final = (files("taskq") / "taskq.lua").read_text(encoding="utf-8")
UNAVAILABLE: Final = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError)
# The Redis type of each key in QueueKeys.function_keys order: streams p0..p3, delayed, dlq, stats.
KEY_TYPES: Final = ("stream", "stream", "stream", "stream", "zset", "stream", "hash")

Args = Sequence[str | bytes | int | float]
Items = Sequence[Sequence[Any]]


def pack(items: Items) -> bytes:
    packed: bytes = msgpack.packb(items, use_bin_type=False)  # Redis's Lua cmsgpack predates the bin type
    return packed


def unavailable(exc: BaseException, doing: str) -> RedisUnavailable:
    return RedisUnavailable(
        f"Redis did not answer while {doing} ({type(exc).__name__}: {exc}); "
        "check that it runs and the URL is right; the outcome of a write in flight is unknown"
    )


def wrong_key_type(keys: QueueKeys, foreign: list[str], message: str) -> WrongKeyType:
    named = ", ".join(foreign) or f"a key under {keys.prefix}"
    return WrongKeyType(
        f"queue {keys.name!r} cannot use {named}: wrong Redis type ({message}); "
        f"taskq owns every key under {keys.prefix}: delete or rename the foreign key"
    )


class Library:
    """Calls into taskq.lua for one queue. Every method is one atomic transition."""

    def __init__(self, redis: aioredis.Redis, keys: QueueKeys) -> None:
        self._redis = redis
        self._keys = list(keys.function_keys)
        self._key_names = keys
        self.reloads = 0

    async def load(self) -> bool:
        """Load the library unless Redis already has this exact code. True when loaded."""
        command = ("FUNCTION", "LIST", "LIBRARYNAME", LIBRARY_NAME, "WITHCODE")
        listed: list[list[Any]] = await self._redis.execute_command(*command)  # type: ignore[no-untyped-call]
        for library in listed:
            info = dict(zip(library[::2], library[1::2]))
            code = info.get(b"library_code", b"")
            if info.get(b"library_name") == LIBRARY_NAME.encode() and code.decode() == LIBRARY_SOURCE:
                return False
        await self._redis.function_load(LIBRARY_SOURCE, replace=True)
        return True

    async def call(self, function: str, args: Args) -> Any:
        try:
            try:
                return await self._redis.fcall(function, len(self._keys), *self._keys, *args)
            except ResponseError as exc:
                if "Function not found" not in str(exc):
                    raise
            await self.load()
            self.reloads += 1
            return await self._redis.fcall(function, len(self._keys), *self._keys, *args)
        except UNAVAILABLE as exc:
            raise unavailable(exc, f"calling {function}") from exc
        except ResponseError as exc:
            raise await self._translate(exc, function) from exc

    async def _translate(self, exc: ResponseError, function: str) -> TaskqError:
        message = str(exc)
        if "WRONGTYPE" in message:
            return wrong_key_type(self._key_names, await self.foreign_keys(), message)
        return TaskqError(f"{function} failed in Redis: {message}")

    async def foreign_keys(self) -> list[str]:
        """The queue's keys that exist with a Redis type taskq does not use for them."""
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in self._keys:
                    pipe.type(key)
                kinds: list[bytes] = await pipe.execute()
        except (*UNAVAILABLE, ResponseError):
            return []  # only a better message was at stake
        return [
            f"{key} (a {kind.decode()}, not a {expected})"
            for key, kind, expected in zip(self._keys, kinds, KEY_TYPES, strict=True)
            if kind.decode() not in ("none", expected)
        ]

    # Batches travel as one msgpack argument: packing it is one C call, where redis-py
    # would encode every element of a flat argument list in Python.

    async def enqueue(self, group: str, now: str, tasks: Items) -> int:
        added: int = await self.call("taskq_enqueue", [group, now, pack(tasks)])
        return added

    async def read(self, group: str, consumer: str, count: int, now: str, promote_limit: int) -> list[Any]:
        reply: list[Any] = await self.call("taskq_read", [group, consumer, count, now, promote_limit])
        return reply

    async def ack(self, group: str, receipts: Items) -> list[int]:
        statuses: list[int] = await self.call("taskq_ack", [group, pack(receipts)])
        return statuses

    async def fail(self, group: str, now: str, base_ms: int, max_ms: int, failures: Items) -> list[int]:
        statuses: list[int] = await self.call("taskq_fail", [group, now, base_ms, max_ms, pack(failures)])
        return statuses

    async def bury(self, group: str, now: str, entries: Items) -> list[int]:
        statuses: list[int] = await self.call("taskq_bury", [group, now, pack(entries)])
        return statuses

    async def renew(self, group: str, consumer: str, receipts: Items) -> list[int]:
        statuses: list[int] = await self.call("taskq_renew", [group, consumer, pack(receipts)])
        return statuses

    async def release(self, group: str, consumer: str, receipts: Items) -> list[int]:
        statuses: list[int] = await self.call("taskq_release", [group, consumer, pack(receipts)])
        return statuses

    async def reclaim(self, group: str, consumer: str, min_idle_ms: int, count: int, cap: int, now: str) -> list[Any]:
        reply: list[Any] = await self.call("taskq_reclaim", [group, consumer, min_idle_ms, count, cap, now])
        return reply

    async def promote(self, group: str, now: str, limit: int) -> int:
        promoted: int = await self.call("taskq_promote", [group, now, limit])
        return promoted

    async def requeue_dead(self, group: str, entry_ids: Args) -> list[int]:
        statuses: list[int] = await self.call("taskq_requeue_dead", [group, *entry_ids])
        return statuses

    async def purge_dead(self) -> int:
        purged: int = await self.call("taskq_purge_dead", [])
        return purged

    async def stats(self, group: str) -> list[Any]:
        reply: list[Any] = await self.call("taskq_stats", [group])
        return reply
