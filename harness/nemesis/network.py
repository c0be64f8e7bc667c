"""Faults on the path between the agents and Redis: through the fault proxy (latency, slow and
dropped replies, resets, a black hole) or a partition (iptables in a network namespace, or
`docker network disconnect` for a container).

`open_routes` decides, before the agents start, how each role reaches Redis: directly, by
its own address of a partitionable server, and through a proxy route of its own when the
plan has proxy faults. The runner's own connection always goes straight to the server, so
progress, drain and the final read never suffer a network fault.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

from harness.errors import SetupError
from harness.history import INFO, INVOKE, OK
from harness.nemesis.base import FaultContext, fault
from harness.plan import FaultEvent, Plan
from harness.providers.base import Provider
from harness.proxy import HEALTHY, FaultProxy, ProxyFaults
from taskq.connection import redacted

ROLES = ("producer", "consumer")
ROLES_OF_TARGET = {"all": ("producer", "consumer"), "consumers": ("consumer",), "producers": ("producer",)}
# The agents' socket timeout is 5 s (harness/adapters/taskq_adapter.py): slow replies outlast it.
PROXY_FAULTS: dict[str, ProxyFaults] = {
    "latency": ProxyFaults(latency_ms=40, jitter_ms=120),
    "slow-replies": ProxyFaults(reply_delay_ms=6000),
    "drop-replies": ProxyFaults(drop_replies=0.3),
    "reset": ProxyFaults(refuse=True),
    "blackhole": ProxyFaults(blackhole=True),
}


@runtime_checkable
class Partitionable(Protocol):
    """A provider whose server can be cut off from some or all clients."""

    # Whether some roles can be cut while others are not (a namespace: yes; a container: all or none).
    partial_cuts: bool

    def url_for(self, role: str) -> str: ...

    def cut(self, roles: Iterable[str]) -> None: ...

    def heal(self) -> None: ...


@dataclass
class AgentRoutes:
    """The URL each agent role connects to, and the proxy in between when there is one."""

    urls: dict[str, str]
    proxy: FaultProxy | None = None

    def close(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()


def needs_namespace(plan: Plan) -> bool:
    """A local server must live in a network namespace of its own to be partitioned."""
    local = plan.redis == "local" or plan.redis.startswith("local:")  # local:BINARY too (Valkey)
    return local and any(event.kind == "partition" for event in plan.faults)


def open_routes(plan: Plan, provider: Provider) -> AgentRoutes:
    """How agents reach Redis in this run; SetupError when a planned network fault cannot be made."""
    kinds = {event.kind for event in plan.faults}
    partitionable = isinstance(provider, Partitionable)
    if "partition" in kinds and not partitionable:
        raise SetupError(
            f"scenario {plan.scenario.name} has partition faults, which --redis {redacted(plan.redis)} cannot make: "
            "use --redis local (as root: a network namespace) or --redis container (docker network disconnect)"
        )
    partial = sorted({e.target for e in plan.faults if e.kind == "partition" and e.target != "all"})
    if partial and isinstance(provider, Partitionable) and not provider.partial_cuts:
        raise SetupError(
            f"scenario {plan.scenario.name} cuts {', '.join(partial)} alone, but --redis {redacted(plan.redis)} "
            "can only be cut off from all clients at once: use target = 'all', or --redis local as root"
        )
    urls = {role: provider.url_for(role) if isinstance(provider, Partitionable) else provider.url for role in ROLES}
    if not kinds & PROXY_FAULTS.keys():
        return AgentRoutes(urls)
    proxy = FaultProxy({role: _address(url) for role, url in urls.items()}, seed=plan.seed)
    proxy.start()
    return AgentRoutes({role: _with_address(url, proxy.address(role)) for role, url in urls.items()}, proxy)


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or parts.hostname is None:
        raise SetupError(f"network faults need a TCP Redis URL (redis:// or rediss://), not {parts.scheme}://")
    return parts.hostname, parts.port or 6379


def _with_address(url: str, address: tuple[str, int]) -> str:
    parts = urlsplit(url)
    userinfo, _, _ = parts.netloc.rpartition("@")
    netloc = f"{userinfo}@" if userinfo else ""
    return urlunsplit(parts._replace(netloc=f"{netloc}{address[0]}:{address[1]}"))


def _start(ctx: FaultContext, event: FaultEvent, process: str) -> None:
    ctx.journal.record(process, INVOKE, "fault", {"kind": event.kind, "target": event.target, "held": []})


async def _proxy_fault(ctx: FaultContext, event: FaultEvent, process: str) -> None:
    """Switch the proxy's fault on the target's routes for duration_s (a reset also cuts what is open)."""
    proxy = ctx.fleet.proxy
    _start(ctx, event, process)
    if proxy is None:
        ctx.journal.record(process, INFO, "fault", {"error": "no proxy between the agents and Redis in this run"})
        return
    routes = ROLES_OF_TARGET[event.target]
    faults = PROXY_FAULTS[event.kind]
    proxy.set_faults(faults, routes)
    reset = 0
    try:
        if event.kind == "reset":
            reset = await asyncio.to_thread(proxy.reset, routes)
        await asyncio.sleep(event.duration_s)
    finally:
        # Heal only what is still this fault's: an overlapping fault of another kind keeps its routes.
        proxy.set_faults(HEALTHY, [route for route in routes if proxy.faults(route) == faults])
    ctx.journal.record(process, OK, "fault", {"reset": reset} if event.kind == "reset" else {})


for _kind in PROXY_FAULTS:
    fault(_kind)(_proxy_fault)


@fault("partition")
async def partition(ctx: FaultContext, event: FaultEvent, process: str) -> None:
    """Cut the target's clients off Redis for duration_s: their packets are dropped, connections hang."""
    provider = ctx.provider
    _start(ctx, event, process)
    if not isinstance(provider, Partitionable):
        ctx.journal.record(process, INFO, "fault", {"error": "the provider cannot be partitioned"})
        return
    try:
        await asyncio.to_thread(provider.cut, ROLES_OF_TARGET[event.target])
    except SetupError as exc:
        ctx.journal.record(process, INFO, "fault", {"error": str(exc)})
        return
    try:
        await asyncio.sleep(event.duration_s)
    finally:
        await asyncio.to_thread(provider.heal)
    ctx.journal.record(process, OK, "fault", {})
