"""Faults on a replicated or clustered Redis: failover, split brain, manual promotion of a lagging
replica (`--redis replicated[:N]`), and for a cluster, failover, slot migration and a whole shard's
death (`--redis cluster`).

Each fault journals `fault` invoke with the topology before it (`topology`: every node's role and
replication offset, or the cluster's shards) and `fault` ok with the topology after it, under its own
nemesis process. What the delivery checker needs to bound the loss goes into the invoke:
"persistence" ("replicated" for a failover: what the promoted replica had is what survives) and
"durable_until_ns", the sync point: the nemesis reads the primary's replication offset, waits until
the replicas have reached it, and only then strikes, so that every write acknowledged before that
reading is on every replica. Writes acknowledged after it may be lost with the old primary (or
discarded with a deposed one, for a split brain); a loss outside that window is a bug.

All of these act on the queue's own shard: the primary the Sentinels name, or the cluster node
serving the queue's slot (every key of a queue is in one slot).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from harness.errors import SetupError
from harness.faults import TOPOLOGY_KINDS
from harness.history import INFO, INVOKE, OK
from harness.nemesis.base import FaultContext, fault
from harness.nemesis.redis import aim
from harness.plan import FaultEvent, Plan
from harness.providers import parse_spec
from harness.providers.base import Provider
from harness.providers.cluster import ClusterRedis, slot_of
from harness.providers.nodes import DataNode, wait_until
from harness.providers.replicated import ReplicatedRedis
from taskq.connection import redacted
from taskq.keys import QueueKeys

# How long the nemesis waits for the replicas to reach the primary's offset before it strikes anyway
# (then the checker's window starts at the beginning: nothing is known to be durable).
SYNC_PATIENCE_S = 2.0
REJOIN_TIMEOUT_S = 30.0
REPLICATED_ONLY = frozenset({"split-brain", "promote-lagging"})
CLUSTER_ONLY = frozenset({"slot-migration", "shard-kill"})


def require_topology(plan: Plan, provider: Provider) -> None:
    """Before the run: topology faults need the topology they act on."""
    _require(plan, isinstance(provider, ReplicatedRedis), isinstance(provider, ClusterRedis))


def require_topology_spec(plan: Plan) -> None:
    """The same check from the --redis spec alone, before anything starts (a cluster takes seconds to make)."""
    try:
        topology = parse_spec(plan.redis)[0]
    except SetupError:
        topology = ""  # a URL or a container: the provider-based check says what it needs
    _require(plan, topology == "replicated", topology == "cluster")


def _require(plan: Plan, replicated: bool, cluster: bool) -> None:
    kinds = {event.kind for event in plan.faults} & TOPOLOGY_KINDS
    if not kinds:
        return
    wrong = sorted(k for k in kinds if (k in REPLICATED_ONLY and not replicated) or (k in CLUSTER_ONLY and not cluster))
    if not (replicated or cluster) or wrong:
        named = ", ".join(wrong or sorted(kinds))
        needs = "--redis cluster" if set(wrong) <= CLUSTER_ONLY and wrong else "--redis replicated[:N]"
        if not wrong:
            needs = "--redis replicated[:N] or --redis cluster"
        raise SetupError(
            f"scenario {plan.scenario.name} has topology faults ({named}), which --redis {redacted(plan.redis)} "
            f"cannot take: use {needs}"
        )


def _journal_start(ctx: FaultContext, event: FaultEvent, process: str, **facts: Any) -> None:
    ctx.journal.record(process, INVOKE, "fault", {"kind": event.kind, "target": event.target, "held": [], **facts})


def _could_not(ctx: FaultContext, process: str, why: str) -> None:
    ctx.journal.record(process, INFO, "fault", {"error": why})


def _queue_key(ctx: FaultContext) -> str:
    return QueueKeys(ctx.plan.queue_name).stream(0)


def sync_point(primary: DataNode, replicas: list[DataNode], patience_s: float = SYNC_PATIENCE_S) -> int | None:
    """The monotonic time (ns) up to which every acknowledged write is on every replica in `replicas`:
    the time the primary's offset was read, once they have all reached it; None if they never did."""
    read_ns = time.monotonic_ns()
    target = primary.offset()
    if target is None:
        return None
    deadline = time.monotonic() + patience_s
    while time.monotonic() < deadline:
        offsets = [replica.offset() for replica in replicas]
        if all(offset is not None and offset >= target for offset in offsets):
            return read_ns
        time.sleep(0.001)
    return None


async def _run(call: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(call)


async def _start_on_primary(
    ctx: FaultContext,
    event: FaultEvent,
    process: str,
    provider: ReplicatedRedis | ClusterRedis,
    find: Callable[[], DataNode | None],
    missing: str,
    **facts: Any,
) -> DataNode | None:
    """Aim, find the primary the fault hurts and journal the fault's start: the topology before it, and up
    to when every acknowledged write was on the primary's replicas (later ones a failover may lose)."""
    await aim(ctx, event.aim)
    before = await _run(provider.snapshot)
    old: DataNode | None = await _run(find)
    if old is None:
        _journal_start(ctx, event, process, topology=before, **facts)
        _could_not(ctx, process, missing)
        return None
    durable = await _run(lambda: sync_point(old, provider.replicas_of(old)))
    _journal_start(ctx, event, process, persistence="replicated", durable_until_ns=durable, topology=before,
                   victim=old.name, **facts)  # fmt: skip
    return old


@fault("failover")
async def failover(ctx: FaultContext, event: FaultEvent, process: str) -> None:
    """SIGKILL the queue's primary; wait for the promotion; after duration_s restart it as a replica."""
    provider = ctx.provider
    if isinstance(provider, ReplicatedRedis):
        await _sentinel_failover(ctx, event, process, provider)
    elif isinstance(provider, ClusterRedis):
        await _cluster_failover(ctx, event, process, provider)
    else:
        _journal_start(ctx, event, process)
        _could_not(ctx, process, "a failover needs --redis replicated[:N] or --redis cluster")


async def _sentinel_failover(ctx: FaultContext, event: FaultEvent, process: str, provider: ReplicatedRedis) -> None:
    old = await _start_on_primary(ctx, event, process, provider, provider.primary, "the Sentinels name no primary")
    if old is None:
        return
    killed_at = time.monotonic()
    await _run(old.kill)
    try:
        new = await _run(lambda: provider.wait_new_primary(old))
    except SetupError as exc:
        await _run(lambda: _restart_as_primary(provider, old))
        _could_not(ctx, process, f"no replica was promoted ({exc}); {old.name} restarted as the primary")
        return
    promoted_s = time.monotonic() - killed_at
    await asyncio.sleep(max(0.0, event.duration_s - promoted_s))
    await _run(lambda: provider.restart_as_replica(old, new))
    await _run(lambda: provider.wait_synced(old))
    ctx.journal.record(process, OK, "fault", {"promoted": new.name, "promoted_after_s": round(promoted_s, 3),
                                              "topology": await _run(provider.snapshot)})  # fmt: skip


def _restart_as_primary(provider: ReplicatedRedis, node: DataNode) -> None:
    node.set_replica_of(None, provider.links)
    node.start()


@fault("split-brain")
async def split_brain(ctx: FaultContext, event: FaultEvent, process: str) -> None:
    """Cut the primary off its replicas and Sentinels (not its clients) for duration_s. The Sentinels
    promote a replica; clients still connected to the old primary keep writing to it; after the heal the
    Sentinels make it a replica of the new one, and what it acknowledged alone is discarded."""
    provider = ctx.provider
    if not isinstance(provider, ReplicatedRedis):
        _journal_start(ctx, event, process)
        _could_not(ctx, process, "a split brain needs --redis replicated[:N]")
        return
    missing = "the Sentinels name no primary"
    old = await _start_on_primary(ctx, event, process, provider, provider.primary, missing, split_brain=True)
    if old is None:
        return
    cut_at = time.monotonic()
    await _run(lambda: provider.cut_off(old))
    promoted: str | None = None
    try:
        new = await _run(lambda: provider.wait_new_primary(old, timeout_s=max(event.duration_s, 15.0)))
        promoted = new.name
    except SetupError:
        new = old  # no promotion while cut: the old primary stays the primary, nothing is discarded
    await asyncio.sleep(max(0.0, event.duration_s - (time.monotonic() - cut_at)))
    await _run(provider.heal)
    if promoted is not None:
        # The deposed primary rejoins as a replica now, not after the Sentinels' next rounds (10-25 s here):
        # the same discarding of what it acknowledged alone, at a time the journal can say.
        await _run(lambda: provider.demote(old, new))
        with contextlib.suppress(SetupError):  # the journal's topology says whether it rejoined
            await _run(lambda: provider.wait_synced(old, REJOIN_TIMEOUT_S))
    ctx.journal.record(process, OK, "fault", {"promoted": promoted, "topology": await _run(provider.snapshot)})


@fault("promote-lagging")
async def promote_lagging(ctx: FaultContext, event: FaultEvent, process: str) -> None:
    """Cut one replica's replication link for duration_s (it falls behind), then promote it by hand:
    REPLICAOF NO ONE on it, the Sentinels told to watch it, the other nodes made its replicas."""
    provider = ctx.provider
    if not isinstance(provider, ReplicatedRedis):
        _journal_start(ctx, event, process)
        _could_not(ctx, process, "a manual promotion needs --redis replicated[:N]")
        return
    await aim(ctx, event.aim)
    before = await _run(provider.snapshot)
    old = await _run(provider.primary)
    chosen = next(iter(provider.replicas_of(old)), None) if old is not None else None
    if old is None or chosen is None:
        _journal_start(ctx, event, process, topology=before)
        _could_not(ctx, process, "no primary with a replica to promote")
        return
    durable = await _run(lambda: sync_point(old, [chosen]))
    _journal_start(ctx, event, process, persistence="replicated", durable_until_ns=durable, topology=before,
                   victim=old.name, promoted=chosen.name)  # fmt: skip
    await _run(lambda: provider.cut_off(old, (provider.replication_user(chosen),)))
    await asyncio.sleep(event.duration_s)
    lag = await _run(lambda: (old.offset() or 0) - (chosen.offset() or 0))
    await _run(lambda: provider.promote(chosen, old))
    await _run(provider.heal)
    with contextlib.suppress(SetupError):
        await _run(lambda: provider.wait_synced(old, REJOIN_TIMEOUT_S))
    ctx.journal.record(process, OK, "fault", {"promoted": chosen.name, "lag_bytes": lag,
                                              "topology": await _run(provider.snapshot)})  # fmt: skip


async def _cluster_failover(ctx: FaultContext, event: FaultEvent, process: str, provider: ClusterRedis) -> None:
    """SIGKILL the primary serving the queue's slot; its replica takes over; the old one rejoins as a replica."""
    slot = slot_of(_queue_key(ctx))
    missing = f"no live primary serves slot {slot}"
    old = await _start_on_primary(ctx, event, process, provider, lambda: provider.owner(slot), missing, slot=slot)
    if old is None:
        return
    killed_at = time.monotonic()
    await _run(old.kill)
    try:
        new = await _run(lambda: provider.wait_owner_changed(slot, old))
    except SetupError as exc:
        await _run(old.start)
        _could_not(ctx, process, f"no replica took slot {slot} over ({exc}); {old.name} restarted")
        return
    promoted_s = time.monotonic() - killed_at
    await asyncio.sleep(max(0.0, event.duration_s - promoted_s))
    await _run(old.start)  # nodes.conf: it rejoins, as a replica of the node that took its slots
    with contextlib.suppress(SetupError):
        await _run(provider.wait_healthy)
    ctx.journal.record(process, OK, "fault", {"promoted": new.name, "promoted_after_s": round(promoted_s, 3),
                                              "topology": await _run(provider.snapshot)})  # fmt: skip


@fault("shard-kill")
async def shard_kill(ctx: FaultContext, event: FaultEvent, process: str) -> None:
    """SIGKILL the primary serving the queue's slot and its replicas; restart them after duration_s.
    What survives is what the nodes' persistence kept (with none: nothing of that shard)."""
    provider = ctx.provider
    if not isinstance(provider, ClusterRedis):
        _journal_start(ctx, event, process)
        _could_not(ctx, process, "a shard kill needs --redis cluster")
        return
    await aim(ctx, event.aim)
    slot = slot_of(_queue_key(ctx))
    before = await _run(provider.snapshot)
    primary = await _run(lambda: provider.owner(slot))
    if primary is None:
        _journal_start(ctx, event, process, topology=before, slot=slot)
        _could_not(ctx, process, f"no live primary serves slot {slot}")
        return
    shard = [primary, *await _run(lambda: provider.replicas_of(primary))]
    _journal_start(ctx, event, process, persistence=provider.persistence, topology=before, slot=slot,
                   victims=[node.name for node in shard])  # fmt: skip
    for node in shard:
        await _run(node.kill)
    await asyncio.sleep(event.duration_s)
    for node in shard:
        await _run(node.start)
    with contextlib.suppress(SetupError):
        await _run(provider.wait_healthy)
    ctx.journal.record(process, OK, "fault", {"topology": await _run(provider.snapshot)})


@fault("slot-migration")
async def slot_migration(ctx: FaultContext, event: FaultEvent, process: str) -> None:
    """Move the queue's slot to another primary while the load runs, the way `redis-cli --cluster reshard`
    moves each slot (SETSLOT IMPORTING and MIGRATING, GETKEYSINSLOT and MIGRATE, SETSLOT NODE), with the
    migration held open for duration_s: meanwhile clients get ASK and TRYAGAIN, afterwards MOVED."""
    provider = ctx.provider
    if not isinstance(provider, ClusterRedis):
        _journal_start(ctx, event, process)
        _could_not(ctx, process, "a slot migration needs --redis cluster")
        return
    await aim(ctx, event.aim)
    slot = slot_of(_queue_key(ctx))
    before = await _run(provider.snapshot)
    source = await _run(lambda: provider.owner(slot))
    primaries = [n for n in provider.nodes if n is not source and await _run(n.role) == "master"]
    if source is None or not primaries:
        _journal_start(ctx, event, process, topology=before, slot=slot)
        _could_not(ctx, process, f"slot {slot} has no live owner, or there is no other primary to move it to")
        return
    target = primaries[0]
    _journal_start(ctx, event, process, topology=before, slot=slot, source=source.name, to=target.name)
    try:
        await _run(lambda: provider.begin_migration(slot, source, target))
        await asyncio.sleep(event.duration_s)
        moved = await _run(lambda: provider.finish_migration(slot, source, target))
        await _run(lambda: wait_until(f"slot {slot} served by {target.name}", lambda: provider.owner(slot) is target,
                                      REJOIN_TIMEOUT_S))  # fmt: skip
    except (SetupError, OSError, Exception) as exc:
        _could_not(ctx, process, f"the migration of slot {slot} failed: {type(exc).__name__}: {exc}")
        return
    ctx.journal.record(process, OK, "fault", {"keys_moved": moved, "topology": await _run(provider.snapshot)})
