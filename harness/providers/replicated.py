"""A primary, N replicas and three Sentinels, all local processes on loopback: `--redis replicated[:N]`.

Clients find the primary through the Sentinels: the URL is
`redis+sentinel://127.0.0.1:S1,127.0.0.1:S2,127.0.0.1:S3/taskq/0` (taskq/connection.py reads it).
Each server has a folder of its own under the run's Redis folder (node-0 is the first primary,
sentinel-0..2). Sentinels declare a primary down after 2 s of silence (quorum 2) and promote the
replica with the most data.

What the topology faults (harness/nemesis/topology.py) need from it: which node is the primary
now (as the Sentinels say), killing and restarting one node (the old primary comes back as a
replica of the new one), cutting the primary off from its replicas and Sentinels while clients
still reach it (harness/providers/nodes.py says how), and a snapshot of roles and offsets for the
journal.
"""

from __future__ import annotations

import contextlib
from functools import partial
from pathlib import Path
from typing import Any

import redis

from harness.errors import SetupError
from harness.providers.binary import ServerBinary
from harness.providers.local import start_choosing_again
from harness.providers.nodes import (
    APP_USER,
    LOOPBACK,
    RUN_PASSWORD,
    SENTINEL_USER,
    DataNode,
    LinkUsers,
    SentinelProcess,
    SentinelTiming,
    admin,
    check_persistence,
    replica_user,
    wait_until,
)

SERVICE = "taskq"
SENTINELS = 3
DEFAULT_REPLICAS = 2
START_TIMEOUT_S = 20.0
FAILOVER_TIMEOUT_S = 30.0


class ReplicatedRedis:
    """Primary, replicas and Sentinels of one run."""

    topology = "replicated"

    def __init__(
        self, workdir: Path, binary: ServerBinary, *, replicas: int = DEFAULT_REPLICAS, persistence: str = "none"
    ) -> None:
        check_persistence(persistence)
        if replicas < 1:
            raise SetupError(f"replicated:{replicas}: a replicated topology needs at least 1 replica")
        self.workdir = Path(workdir).resolve()
        self.binary = binary
        self.persistence = persistence
        self.links = LinkUsers(tuple(f"node-{i}" for i in range(replicas + 1)))
        self.timing = SentinelTiming()
        self.nodes = [
            DataNode(
                f"node-{i}",
                self.workdir / f"node-{i}",
                binary,
                persistence,
                extra=(),
                links=self.links,
                default_user=False,
            )
            for i in range(replicas + 1)
        ]
        self.sentinels = [
            SentinelProcess(f"sentinel-{i}", self.workdir / f"sentinel-{i}", binary, timing=self.timing)
            for i in range(SENTINELS)
        ]
        self.cut_node: DataNode | None = None

    # -- the Provider protocol ------------------------------------------------------------------

    @property
    def url(self) -> str:
        hosts = ",".join(f"{LOOPBACK}:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{APP_USER}:{RUN_PASSWORD}@{hosts}/{SERVICE}/0"

    def start(self) -> None:
        first = self.nodes[0]
        try:
            first.set_replica_of(None, self.links)
            first.start()
            for node in self.nodes[1:]:
                node.set_replica_of(first.port, self.links)
                node.start()
            for sentinel in self.sentinels:
                sentinel.write_config(SERVICE, first.port, self.links)
                start_choosing_again(sentinel.start, partial(sentinel.choose_port, SERVICE, first.port, self.links))
            wait_until("every replica's first sync", self._replicas_in_sync, START_TIMEOUT_S)
            wait_until("the Sentinels seeing every replica and each other", self._sentinels_ready, START_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for sentinel in self.sentinels:
            with contextlib.suppress(Exception):
                sentinel.stop()
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.stop()

    def describe(self) -> dict[str, str]:
        primary = self.primary()
        return {
            "provider": "replicated", "topology": f"replicated: 1 primary, {len(self.nodes) - 1} replicas, "
            f"{len(self.sentinels)} Sentinels (quorum {self.timing.quorum}, down after {self.timing.down_after_ms} ms)",
            **self.binary.facts(), "persistence": self.persistence,
            "redis_version": f"{self.binary.label}", "primary_at_end": primary.name if primary else "none",
            "sentinel_failovers": str(self.config_epoch()),
        }  # fmt: skip

    # -- what the topology faults use ------------------------------------------------------------

    def node_by_port(self, port: int | None) -> DataNode | None:
        return next((node for node in self.nodes if node.port == port), None)

    def primary(self) -> DataNode | None:
        """The primary as most Sentinels name it now."""
        ports = [s.primary_port(SERVICE) for s in self.sentinels]
        named = [p for p in ports if p is not None]
        if not named:
            return None
        return self.node_by_port(max(set(named), key=named.count))

    def replicas_of(self, primary: DataNode) -> list[DataNode]:
        return [node for node in self.nodes if node is not primary]

    def snapshot(self) -> dict[str, Any]:
        """Roles and offsets of every node, the primary the Sentinels name and their config epoch (one more per
        failover they carried out): journaled before and after a fault."""
        primary = self.primary()
        return {
            "primary": primary.name if primary else None, "epoch": self.config_epoch(),
            "nodes": [node.snapshot() for node in self.nodes],
        }  # fmt: skip

    def config_epoch(self) -> int | None:
        """The highest config epoch a Sentinel reports for the service: how many failovers they have made
        (a manual promotion re-registers the service and starts it again)."""
        epochs = []
        for sentinel in self.sentinels:
            try:
                with admin(sentinel.port, 1.0, sentinel=True) as client:
                    epochs.append(
                        int(dict(_pairs(client.execute_command("SENTINEL", "MASTER", SERVICE)))["config-epoch"])
                    )
            except (redis.RedisError, OSError, KeyError, ValueError):
                continue
        return max(epochs) if epochs else None

    def wait_new_primary(self, old: DataNode, timeout_s: float = FAILOVER_TIMEOUT_S) -> DataNode:
        """Block until the Sentinels name another primary than `old` and it answers as one."""

        def promoted() -> bool:
            found = self.primary()
            return found is not None and found is not old and found.role() == "master"

        wait_until(f"a failover away from {old.name}", promoted, timeout_s)
        new = self.primary()
        assert new is not None
        return new

    def restart_as_replica(self, node: DataNode, primary: DataNode) -> None:
        """Start `node` again as a replica of `primary` (never as a second primary, not even for a moment)."""
        node.kill()
        node.set_replica_of(primary.port, self.links)
        node.start()

    def wait_synced(self, node: DataNode, timeout_s: float = FAILOVER_TIMEOUT_S) -> None:
        def synced() -> bool:
            found = node.snapshot()
            return found.get("role") == "slave" and found.get("link") == "up"

        wait_until(f"{node.name} syncing as a replica", synced, timeout_s)

    def cut_off(self, node: DataNode, users: tuple[str, ...] | None = None) -> None:
        """Cut `node` off from its replicas and the Sentinels (or only from the links of `users`), not from
        clients: on it, the link users are switched off and their connections killed, so every link to it
        fails (replicas and Sentinels reconnect, and are refused) until heal()."""
        chosen = self.links.users if users is None else users
        with admin(node.port) as client:
            for user in chosen:
                client.execute_command("ACL", "SETUSER", user, "off")
                client.execute_command("CLIENT", "KILL", "USER", user)
        self.cut_node = node

    def heal(self) -> None:
        node, self.cut_node = self.cut_node, None
        if node is None or not node.alive():
            return
        with admin(node.port) as client:
            for user in self.links.users:
                client.execute_command("ACL", "SETUSER", user, "on")

    def demote(self, node: DataNode, primary: DataNode) -> None:
        """REPLICAOF `primary` on `node`, at once: what the Sentinels do to a deposed primary they can reach
        again, only after their next INFO round (up to 10 s, then up to a failover timeout more)."""
        node.set_replica_of(primary.port, self.links)
        with admin(node.port) as client:
            client.execute_command("REPLICAOF", LOOPBACK, primary.port)

    def replication_user(self, node: DataNode) -> str:
        return replica_user(node.name)

    def promote(self, chosen: DataNode, old: DataNode) -> None:
        """A manual failover to `chosen`, as an operator does it: REPLICAOF NO ONE on it, the Sentinels told
        to watch it instead (SENTINEL REMOVE, MONITOR, SET), then every other node made its replica."""
        with admin(chosen.port) as client:
            client.execute_command("REPLICAOF", "NO", "ONE")
        t = self.timing
        for sentinel in self.sentinels:
            with admin(sentinel.port, sentinel=True) as client:
                client.execute_command("SENTINEL", "REMOVE", SERVICE)
                client.execute_command("SENTINEL", "MONITOR", SERVICE, LOOPBACK, chosen.port, t.quorum)
                settings = {
                    "down-after-milliseconds": t.down_after_ms, "failover-timeout": t.failover_timeout_ms,
                    "parallel-syncs": 2, "auth-user": SENTINEL_USER, "auth-pass": self.links.password,
                }  # fmt: skip
                for name, value in settings.items():
                    client.execute_command("SENTINEL", "SET", SERVICE, name, value)
        for node in self.nodes:
            if node is chosen or not node.alive():
                continue
            node.set_replica_of(chosen.port, self.links)
            with admin(node.port) as client:
                client.execute_command("CONFIG", "SET", "masteruser", replica_user(node.name))
                client.execute_command("CONFIG", "SET", "masterauth", self.links.password)
                client.execute_command("REPLICAOF", LOOPBACK, chosen.port)

    def _replicas_in_sync(self) -> bool:
        return all(node.snapshot().get("link") == "up" for node in self.nodes[1:])

    def _sentinels_ready(self) -> bool:
        try:
            for sentinel in self.sentinels:
                with admin(sentinel.port, 1.0, sentinel=True) as client:
                    master = dict(_pairs(client.execute_command("SENTINEL", "MASTER", SERVICE)))
                    if int(master.get("num-slaves", 0)) < len(self.nodes) - 1:
                        return False
                    if int(master.get("num-other-sentinels", 0)) < len(self.sentinels) - 1:
                        return False
        except (redis.RedisError, OSError):
            return False
        return True


def _pairs(reply: Any) -> list[tuple[str, str]]:
    """SENTINEL MASTER's reply (redis-py parses it into a dict; raw, it is a flat list) as text pairs."""

    def text(value: Any) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    items = reply.items() if isinstance(reply, dict) else zip(reply[::2], reply[1::2])
    return [(text(k), text(v)) for k, v in items]
