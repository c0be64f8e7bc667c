"""Faults on the Redis server: SIGKILL and restart, SIGSTOP/SIGCONT, CLIENT PAUSE, DEBUG SLEEP,
CLIENT KILL, and FLUSHALL.

Each handler journals `fault` invoke when it strikes and `fault` ok once the server is whole
again (restarted, resumed, awake), under its own nemesis process. Like the worker faults, it
first waits (briefly) for its aim: a consumer holding tasks, or one settling them. A fault
that may lose acknowledged writes (redis-kill, flushall) journals in its invoke what the
checkers need to bound the loss: "persistence" (the server's setting, or "flushed"), and for
RDB "durable_until_ns" (when the last snapshot was taken). They run against a server the
harness owns (a local redis-server or a container), never an external URL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from harness.errors import HarnessError, SetupError
from harness.faults import FAULT_KINDS, TOPOLOGY_KINDS
from harness.fleet import consumer_state
from harness.history import INFO, INVOKE, OK
from harness.nemesis.base import FaultContext, fault
from harness.plan import FaultEvent, Plan
from harness.providers.base import Provider, RedisFaults
from taskq.connection import redacted

REDIS_KINDS = frozenset(name for name, kind in FAULT_KINDS.items() if kind.role == "redis") - TOPOLOGY_KINDS
CLIENT_KILL_EVERY_S = 0.1
AIM_PATIENCE_S = 1.0
# Only the end of a consumer's journal says what it does now (its last delivery and settle).
AIM_TAIL_BYTES = 64 * 1024
NS_PER_S = 1_000_000_000


def require_redis_faults(plan: Plan, provider: Provider) -> None:
    """Before the run: Redis faults need a server the harness may hurt; topology faults, their topology."""
    from harness.nemesis.topology import require_topology  # noqa: PLC0415  it imports this module

    require_topology(plan, provider)
    kinds = sorted({event.kind for event in plan.faults} & REDIS_KINDS)
    if kinds and not isinstance(provider, RedisFaults):
        raise SetupError(
            f"scenario {plan.scenario.name} has Redis faults ({', '.join(kinds)}), but --redis {redacted(plan.redis)} "
            "is a server the harness must not hurt: use --redis local or --redis container"
        )


async def aim(ctx: FaultContext, aim: str) -> None:
    """Wait (briefly) until the queue is where the fault should hit: some consumer holds tasks
    ("holding": their leases and acks are at stake), or has an ack or fail in flight ("settling":
    the fault splits it). After AIM_PATIENCE_S it strikes anyway; "any" strikes at once."""
    deadline = time.monotonic() + AIM_PATIENCE_S
    while aim != "any" and time.monotonic() < deadline:
        agents = [agent for agent in ctx.fleet.consumers.values() if agent.alive()]
        if any(consumer_state(agent.journal, AIM_TAIL_BYTES).on_target(aim) for agent in agents):
            return
        await asyncio.sleep(0.002)


def _start(ctx: FaultContext, event: FaultEvent, process: str, **facts: Any) -> None:
    ctx.journal.record(process, INVOKE, "fault", {"kind": event.kind, "target": event.target, "held": [], **facts})


def _could_not(ctx: FaultContext, process: str, why: str) -> None:
    ctx.journal.record(process, INFO, "fault", {"error": why})


def _hurtable(ctx: FaultContext, event: FaultEvent, process: str) -> RedisFaults | None:
    provider = ctx.provider
    if isinstance(provider, RedisFaults):
        return provider
    _start(ctx, event, process)
    _could_not(ctx, process, "the provider cannot hurt its server: use --redis local or container")
    return None


@asynccontextmanager
async def _admin(ctx: FaultContext, timeout_s: float = 5.0) -> AsyncIterator[aioredis.Redis]:
    """The nemesis's own connection (never retried: a fault command runs once)."""
    client = aioredis.Redis.from_url(
        ctx.provider.url, protocol=2, socket_timeout=timeout_s, socket_connect_timeout=5.0, retry=Retry(NoBackoff(), 0)
    )
    try:
        yield client
    finally:
        await client.aclose()


async def _loss_facts(ctx: FaultContext) -> dict[str, Any]:
    """What bounds the writes a crash may lose: the persistence setting, and for RDB the last snapshot."""
    persistence = str(getattr(ctx.provider, "persistence", "unknown"))
    facts: dict[str, Any] = {"persistence": persistence}
    if persistence == "rdb":
        try:
            async with _admin(ctx) as client:
                info = await client.info("persistence")
        except (RedisError, OSError):
            return facts  # no snapshot time: the checker assumes everything may be lost
        # The snapshot holds the data as of its fork; last_save is whole seconds, so one more is taken off.
        taken_s = float(info["rdb_last_save_time"]) - max(0.0, float(info.get("rdb_last_bgsave_time_sec", 0))) - 1
        facts["durable_until_ns"] = time.monotonic_ns() - int((time.time() - taken_s) * NS_PER_S)
    return facts


@fault("redis-kill")
async def redis_kill(ctx: FaultContext, event: FaultEvent, process: str) -> None:
    """SIGKILL redis-server (docker kill); after duration_s start it again on the same port and data."""
    provider = _hurtable(ctx, event, process)
    if provider is None:
        return
    await aim(ctx, event.aim)
    _start(ctx, event, process, **await _loss_facts(ctx))
    killed_at = time.monotonic()
    try:
        await asyncio.to_thread(provider.kill)
        await asyncio.sleep(event.duration_s)
    finally:
        try:
            await asyncio.to_thread(provider.restart)
        except HarnessError as exc:
            _could_not(ctx, process, f"Redis did not come back: {exc}")
            raise
    ctx.journal.record(process, OK, "fault", {"down_s": round(time.monotonic() - killed_at, 3)})


@fault("redis-pause")
async def redis_pause(ctx: FaultContext, event: FaultEvent, process: str) -> None:
    """SIGSTOP redis-server (docker pause) for duration_s: connections stay open, nothing answers."""
    provider = _hurtable(ctx, event, process)
    if provider is None:
        return
    await aim(ctx, event.aim)
    _start(ctx, event, process)
    try:
        await asyncio.to_thread(provider.pause)
        await asyncio.sleep(event.duration_s)
    finally:
        await asyncio.to_thread(provider.resume)
    ctx.journal.record(process, OK, "fault", {})


@fault("client-pause")
async def client_pause(ctx: FaultContext, event: FaultEvent, process: str) -> None:
    """CLIENT PAUSE ALL: Redis holds every client's commands until the pause runs out."""
    if _hurtable(ctx, event, process) is None:
        return
    await aim(ctx, event.aim)
    _start(ctx, event, process)
    try:
        async with _admin(ctx) as client:
            await client.execute_command("CLIENT", "PAUSE", max(1, int(event.duration_s * 1000)), "ALL")  # type: ignore[no-untyped-call]
    except (RedisError, OSError) as exc:
        _could_not(ctx, process, f"CLIENT PAUSE failed: {exc}")
        return
    await asyncio.sleep(event.duration_s)  # the pause ends by itself (UNPAUSE would wait behind it)
    ctx.journal.record(process, OK, "fault", {})


@fault("debug-sleep")
async def debug_sleep(ctx: FaultContext, event: FaultEvent, process: str) -> None:
    """DEBUG SLEEP: the server's one thread sleeps for duration_s; nothing is read or answered."""
    if _hurtable(ctx, event, process) is None:
        return
    await aim(ctx, event.aim)
    _start(ctx, event, process)
    try:
        async with _admin(ctx, timeout_s=event.duration_s + 10) as client:
            await client.execute_command("DEBUG", "SLEEP", f"{event.duration_s:g}")  # type: ignore[no-untyped-call]
    except (RedisError, OSError) as exc:
        _could_not(ctx, process, f"DEBUG SLEEP failed ({exc}): the server needs enable-debug-command local or yes")
        return
    ctx.journal.record(process, OK, "fault", {})


@fault("client-kill")
async def client_kill(ctx: FaultContext, event: FaultEvent, process: str) -> None:
    """CLIENT KILL TYPE normal (every connection but the nemesis's own), again and again for duration_s."""
    if _hurtable(ctx, event, process) is None:
        return
    await aim(ctx, event.aim)
    _start(ctx, event, process)
    killed = 0
    try:
        async with _admin(ctx) as client:
            end = time.monotonic() + event.duration_s
            while True:
                killed += int(await client.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"))  # type: ignore[no-untyped-call]
                if time.monotonic() >= end:
                    break
                await asyncio.sleep(CLIENT_KILL_EVERY_S)
    except (RedisError, OSError) as exc:
        _could_not(ctx, process, f"CLIENT KILL failed after {killed} connection(s): {exc}")
        return
    ctx.journal.record(process, OK, "fault", {"killed": killed})


@fault("flushall")
async def flushall(ctx: FaultContext, event: FaultEvent, process: str) -> None:
    """FLUSHALL and FUNCTION FLUSH: every key and the Functions library are gone, as after a
    restart without persistence (but the server and its connections stay)."""
    if _hurtable(ctx, event, process) is None:
        return
    await aim(ctx, event.aim)
    _start(ctx, event, process, persistence="flushed")
    try:
        async with _admin(ctx) as client:
            await client.flushall()
            await client.function_flush()
    except (RedisError, OSError) as exc:
        _could_not(ctx, process, f"FLUSHALL failed: {exc}")
        return
    ctx.journal.record(process, OK, "fault", {})
