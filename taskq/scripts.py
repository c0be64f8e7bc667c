"""The taskq Functions library: loading it, and one typed method per function.

The library is (re)loaded whenever Redis lost it (a restart without persistence, a
FUNCTION FLUSH, a failover to a server that never had it, a slot moved to a primary without
it): a call that finds no function reloads and runs again. That is safe because a missing
function means the call did not run at all. On a Redis Cluster the library is loaded on
every primary.

Durability (`replicas_to_wait`): a write transition (enqueue, ack, fail, bury) is followed on
the same connection by WAIT, which blocks until that many replicas have the write or the
timeout passes. WAIT never rolls a write back: when too few replicas confirm in time, the
write stands on the primary and ReplicationTimeout says so (with the call's result); a
failover before the replicas catch up may still lose it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from importlib.resources import files
from typing import Any, Final

import msgpack
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ClusterError,
    MovedError,
    RedisClusterException,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from taskq.connection import Client
from taskq.errors import RedisUnavailable, ReplicationTimeout, TaskqError, WrongKeyType
from taskq.keys import QueueKeys

LIBRARY_NAME: Final = "taskq"
LIBRARY_SOURCE: Final = (files("taskq") / "taskq.lua").read_text(encoding="utf-8")
# Redis did not answer, or (a cluster) the slot was not served: moving (TRYAGAIN, redirections without end),
# or its shard down (CLUSTERDOWN). Not one of these says the command ran.
UNAVAILABLE: Final = (
    RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError,
    ClusterError, RedisClusterException, TryAgainError, ClusterDownError,
)  # fmt: skip
# The Redis type of each key in QueueKeys.function_keys order: streams p0..p3, delayed, dlq, stats.
KEY_TYPES: Final = ("stream", "stream", "stream", "stream", "zset", "stream", "hash")

Args = Sequence[str | bytes | int | float]
Items = Sequence[Sequence[Any]]
# A cluster call's redirections (the slot moved, or is moving) before it gives up: each one means
# the command did not run, so it is safe to send again.
REDIRECTIONS: Final = 50
# Replies of a server whose role changed under the call (a failover, a demoted primary): a WAIT (or a
# blocking read) unblocked with the write already done, a write refused by a new replica, a replica
# not synced. The outcome is unknown, as if the server had not answered.
_STATE_CHANGED: Final = ("UNBLOCKED", "READONLY", "MASTERDOWN", "LOADING")
TRYAGAIN_SLEEP_S: Final = 0.02


def pack(items: Items) -> bytes:
    packed: bytes = msgpack.packb(items, use_bin_type=False)  # Redis's Lua cmsgpack predates the bin type
    return packed


def unavailable(exc: BaseException, doing: str) -> RedisUnavailable:
    if isinstance(exc, (ClusterError, RedisClusterException, TryAgainError, ClusterDownError)):
        return RedisUnavailable(
            f"the cluster did not serve the queue's slot while {doing} ({type(exc).__name__}: {exc}): the slot "
            "is being migrated or its shard is down; try again (redis-cli --cluster check HOST:PORT shows which)"
        )
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
    """Calls into taskq.lua for one queue. Every method is one atomic transition.

    `replicas_to_wait` > 0: each write transition waits (WAIT) for that many replicas, at most
    `replica_wait_timeout_ms`, and raises ReplicationTimeout when fewer confirmed.
    """

    def __init__(
        self, redis: Client, keys: QueueKeys, *, replicas_to_wait: int = 0, replica_wait_timeout_ms: int = 1000
    ) -> None:
        self._redis = redis
        self._keys = list(keys.function_keys)
        self._key_names = keys
        self._wait = (replicas_to_wait, replica_wait_timeout_ms) if replicas_to_wait > 0 else None
        self.reloads = 0

    async def load(self) -> bool:
        """Load the library where Redis lacks this exact code (every primary of a cluster). True when loaded."""
        redis = self._redis
        if not isinstance(redis, RedisCluster):
            return await _load_on(redis, None)
        await redis.initialize()
        loaded = [await _load_on(redis, node) for node in redis.get_primaries()]
        return any(loaded)

    async def call(self, function: str, args: Args, *, durable: bool = False) -> Any:
        """FCALL `function`; with `durable` and replicas_to_wait set, WAIT for the replicas after it."""
        wait = self._wait if durable else None
        try:
            try:
                return await self._call_once(function, args, wait)
            except ResponseError as exc:
                if "Function not found" not in str(exc):
                    raise
            await self.load()
            self.reloads += 1
            return await self._call_once(function, args, wait)
        except UNAVAILABLE as exc:
            raise unavailable(exc, f"calling {function}") from exc
        except ResponseError as exc:
            if str(exc).startswith(_STATE_CHANGED):
                raise unavailable(exc, f"calling {function}") from exc
            raise await self._translate(exc, function) from exc

    async def _call_once(self, function: str, args: Args, wait: tuple[int, int] | None) -> Any:
        if wait is None:
            return await self._redis.fcall(function, len(self._keys), *self._keys, *args)
        if isinstance(self._redis, RedisCluster):
            result, confirmed = await self._cluster_call_and_wait(function, args, wait)
        else:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.fcall(function, len(self._keys), *self._keys, *args)
                pipe.execute_command("WAIT", *wait)
                result, confirmed = await pipe.execute(raise_on_error=False)
        if isinstance(result, BaseException):
            raise result
        if isinstance(confirmed, BaseException):
            raise confirmed
        if int(confirmed) < wait[0]:
            raise ReplicationTimeout(function, int(confirmed), wait[0], wait[1], result)
        return result

    async def _cluster_call_and_wait(self, function: str, args: Args, wait: tuple[int, int]) -> tuple[Any, Any]:
        """FCALL and WAIT on one connection to the primary of the queue's slot (WAIT counts the replicas
        that have this connection's writes), following MOVED and ASK by hand: each means nothing ran."""
        redis = self._redis
        assert isinstance(redis, RedisCluster)
        node, asking = redis.get_node_from_key(self._keys[0]), False
        for _ in range(REDIRECTIONS):
            pipe = redis.pipeline()
            if asking:
                pipe.execute_command("ASKING", target_nodes=node)
            pipe.execute_command("FCALL", function, len(self._keys), *self._keys, *args, target_nodes=node)
            pipe.execute_command("WAIT", *wait, target_nodes=node)
            replies = await pipe.execute(raise_on_error=False, allow_redirections=False)
            result, asking = replies[-2], False
            if isinstance(result, AskError):
                node, asking = redis.get_node(host=result.host, port=result.port) or node, True
            elif isinstance(result, MovedError):
                await redis.execute_command("EXISTS", self._keys[0])  # follows MOVED: the slot map is refreshed
                node = redis.get_node_from_key(self._keys[0])
            elif isinstance(result, TryAgainError):
                await asyncio.sleep(TRYAGAIN_SLEEP_S)
            else:
                return result, replies[-1]
        raise RedisUnavailable(
            f"the cluster did not serve the queue's slot while calling {function} ({REDIRECTIONS} redirections or "
            "TRYAGAIN): the slot is being migrated; nothing ran: try again once the resharding is over"
        )

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
        added: int = await self.call("taskq_enqueue", [group, now, pack(tasks)], durable=True)
        return added

    async def read(self, group: str, consumer: str, count: int, now: str, promote_limit: int) -> list[Any]:
        reply: list[Any] = await self.call("taskq_read", [group, consumer, count, now, promote_limit])
        return reply

    async def ack(self, group: str, receipts: Items) -> list[int]:
        statuses: list[int] = await self.call("taskq_ack", [group, pack(receipts)], durable=True)
        return statuses

    async def fail(self, group: str, now: str, base_ms: int, max_ms: int, failures: Items) -> list[int]:
        statuses: list[int] = await self.call("taskq_fail", [group, now, base_ms, max_ms, pack(failures)], durable=True)
        return statuses

    async def bury(self, group: str, now: str, entries: Items) -> list[int]:
        statuses: list[int] = await self.call("taskq_bury", [group, now, pack(entries)], durable=True)
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


async def _load_on(redis: Client, node: Any) -> bool:
    """Load the library on one server (`node` of a cluster, or the one server of `redis`) unless it has it."""
    target = {} if node is None else {"target_nodes": node}
    command = ("FUNCTION", "LIST", "LIBRARYNAME", LIBRARY_NAME, "WITHCODE")
    listed: list[list[Any]] = await redis.execute_command(*command, **target)
    for library in listed:
        info = dict(zip(library[::2], library[1::2]))
        code = info.get(b"library_code", b"")
        if info.get(b"library_name") == LIBRARY_NAME.encode() and code.decode() == LIBRARY_SOURCE:
            return False
    await redis.execute_command("FUNCTION", "LOAD", "REPLACE", LIBRARY_SOURCE, **target)
    return True
