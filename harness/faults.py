"""The fault kinds a scenario may name, and what each one aims at.

Data only: the nemesis registers a handler for each kind (harness/nemesis/), and
scenario files are checked against this table before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FaultKind:
    name: str
    # What the fault hits: "consumer" (one consumer process, chosen by the seed),
    # "redis" (the server), or "network" (the path between clients and Redis).
    role: str
    what: str

    @property
    def default_target(self) -> str:
        return {"consumer": "consumer", "redis": "redis", "network": "all"}[self.role]


FAULT_KINDS: dict[str, FaultKind] = {
    kind.name: kind
    for kind in (
        FaultKind("kill", "consumer", "SIGKILL a consumer; a new one takes its slot after duration_s"),
        FaultKind("pause", "consumer", "SIGSTOP a consumer for duration_s, then SIGCONT"),
        FaultKind("term", "consumer", "SIGTERM a consumer (graceful); a new one starts after duration_s"),
        FaultKind("kill-main", "consumer", "SIGKILL only a worker's main process (its children live on); restart"),
        FaultKind("kill-child", "consumer", "SIGKILL one child process of a hosted worker (pool process, work-horse)"),
        # Redis (harness/nemesis/redis.py): a local redis-server or a container.
        FaultKind("redis-kill", "redis", "SIGKILL redis-server; restart it after duration_s, same port and data"),
        FaultKind("redis-pause", "redis", "SIGSTOP redis-server (docker pause) for duration_s, then SIGCONT"),
        FaultKind("client-pause", "redis", "CLIENT PAUSE ALL for duration_s: every command waits"),
        FaultKind("debug-sleep", "redis", "DEBUG SLEEP duration_s: the server's one thread sleeps"),
        FaultKind("client-kill", "redis", "CLIENT KILL every client connection, again every 0.1 s for duration_s"),
        FaultKind("flushall", "redis", "FLUSHALL and FUNCTION FLUSH: Redis loses everything the queue stored"),
        # Network (harness/nemesis/network.py): a proxy between agents and Redis, or a partition.
        FaultKind("latency", "network", "add 40 ms + up to 120 ms of jitter to every chunk, both ways"),
        FaultKind("slow-replies", "network", "hold replies 6 s, past the agents' 5 s socket timeout"),
        FaultKind("drop-replies", "network", "drop 30% of replies; a connection that lost one stays silent"),
        FaultKind("reset", "network", "TCP RST every connection, and every new one, for duration_s"),
        FaultKind("blackhole", "network", "nothing passes either way for duration_s"),
        FaultKind("partition", "network", "cut the target's clients off Redis (iptables in a netns, or docker)"),
        # Topologies (harness/nemesis/topology.py): --redis replicated[:N] or cluster.
        FaultKind(
            "failover",
            "redis",
            "SIGKILL the queue's primary; Sentinel or the cluster promotes a replica, and "
            "the old primary comes back as its replica after duration_s",
        ),
        FaultKind(
            "split-brain",
            "redis",
            "cut the primary off its replicas and Sentinels, not its clients, for "
            "duration_s: a replica is promoted, and the old primary's writes are discarded when it rejoins",
        ),
        FaultKind(
            "promote-lagging",
            "redis",
            "cut one replica's link for duration_s, then REPLICAOF NO ONE on it, "
            "point the Sentinels and the other nodes at it (a manual failover to a lagging replica)",
        ),
        FaultKind(
            "slot-migration",
            "redis",
            "move the queue's cluster slot to another primary under load, the "
            "migration held open duration_s (ASK and TRYAGAIN), then its keys MIGRATEd and the slot handed over",
        ),
        FaultKind(
            "shard-kill",
            "redis",
            "SIGKILL the queue's whole cluster shard (primary and replica); restart both after duration_s",
        ),
    )
}

# Faults that act on a topology's nodes (harness/nemesis/topology.py), not on one server's process.
TOPOLOGY_KINDS = frozenset({"failover", "split-brain", "promote-lagging", "slot-migration", "shard-kill"})

# When a consumer fault strikes: once the victim holds tasks, while it settles them
# (an ack or fail in flight), or at once.
FAULT_AIMS = ("holding", "settling", "failing", "any")

# A consumer fault's victim chosen when it strikes, not when it is planned: the consumer holding tasks
# it took over from another one (so the recovery path itself is hit; harness/nemesis/worker.py).
RECLAIMER = "reclaimer"


def targets_for(kind: FaultKind, consumers: int) -> tuple[str, ...]:
    """The targets a fault of `kind` may name in a run with `consumers` consumer slots."""
    if kind.role == "consumer":
        return ("consumer", RECLAIMER, *(f"consumer-{i}" for i in range(consumers)))
    if kind.role == "network":
        return ("all", "consumers", "producers")
    return ("redis",)
