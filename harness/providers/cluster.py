"""A Redis Cluster of three primaries and three replicas, local processes on loopback: `--redis cluster`.

Created the way an operator does it, with `redis-cli --cluster create ... --cluster-replicas 1`
(redis-cli from this host drives Valkey nodes as well). The URL is
`redis+cluster://127.0.0.1:P1,127.0.0.1:P2,.../` (taskq/connection.py reads it). A node silent
for 1 s (cluster-node-timeout) is failed over by its replica; `cluster-require-full-coverage no`
keeps the other shards serving while one shard is down.

What the cluster faults (harness/nemesis/topology.py) need: the node serving a slot, the replica
of a primary, killing and restarting nodes (a node keeps its identity in nodes.conf and rejoins),
moving one slot between primaries with its ASK window held open, and a snapshot of the shards.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from redis.crc import key_slot

from harness.errors import SetupError
from harness.providers.binary import ServerBinary
from harness.providers.local import free_port
from harness.providers.nodes import LOOPBACK, DataNode, LinkUsers, admin, check_persistence, wait_until

PRIMARIES = 3
NODE_TIMEOUT_MS = 1000
START_TIMEOUT_S = 30.0
FAILOVER_TIMEOUT_S = 30.0
CLI_HINT = "install redis-cli (`sudo apt-get install -y redis-tools`, or redis-server which brings it)"
MIGRATE_BATCH = 100


@dataclass(frozen=True, slots=True)
class NodeView:
    """One line of CLUSTER NODES."""

    node_id: str
    port: int
    role: str  # "master" or "slave"
    primary_id: str | None
    failed: bool
    slots: tuple[tuple[int, int], ...]

    def serves(self, slot: int) -> bool:
        return any(lo <= slot <= hi for lo, hi in self.slots)


def redis_cli() -> str:
    found = shutil.which("redis-cli")
    if found is None:
        raise SetupError(f"the cluster is created with redis-cli, which was not found: {CLI_HINT}")
    return found


class ClusterRedis:
    """Three shards (a primary and a replica each) of one run."""

    topology = "cluster"

    def __init__(self, workdir: Path, binary: ServerBinary, *, persistence: str = "none") -> None:
        check_persistence(persistence)
        self.workdir = Path(workdir).resolve()
        self.binary = binary
        self.persistence = persistence
        links = LinkUsers(tuple(f"node-{i}" for i in range(PRIMARIES * 2)))
        extra = (
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--cluster-require-full-coverage", "no",
            "--cluster-replica-validity-factor", "0", "--cluster-allow-reads-when-down", "no",
        )  # fmt: skip
        self.nodes = [
            DataNode(
                f"node-{i}", self.workdir / f"node-{i}", binary, persistence,
                extra=extra, links=links, choose_port=cluster_port,
            )
            for i in range(PRIMARIES * 2)
        ]  # fmt: skip

    # -- the Provider protocol ------------------------------------------------------------------

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"{LOOPBACK}:{node.port}" for node in self.nodes) + "/"

    def start(self) -> None:
        cli = redis_cli()
        try:
            for node in self.nodes:
                node.start()
            command = [cli, "--cluster", "create", *(f"{LOOPBACK}:{n.port}" for n in self.nodes)]
            command += ["--cluster-replicas", "1", "--cluster-yes"]
            done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=START_TIMEOUT_S)
            (self.workdir / "cluster-create.log").write_text(done.stdout + done.stderr)
            if done.returncode != 0:
                tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-2:])
                raise SetupError(f"redis-cli --cluster create failed (exit {done.returncode}): {tail}")
            wait_until("every node seeing the cluster ok, its shards and their replicas", self.healthy, START_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.stop()

    def describe(self) -> dict[str, str]:
        return {
            "provider": "cluster", "topology": f"cluster: {PRIMARIES} primaries, {PRIMARIES} replicas "
            f"(node timeout {NODE_TIMEOUT_MS} ms)", **self.binary.facts(), "persistence": self.persistence,
            "redis_version": self.binary.label,
        }  # fmt: skip

    # -- what the cluster faults use -------------------------------------------------------------

    def node_by_port(self, port: int) -> DataNode | None:
        return next((node for node in self.nodes if node.port == port), None)

    def view(self) -> list[NodeView]:
        """CLUSTER NODES as the first live node sees it."""
        for node in self.nodes:
            if not node.alive():
                continue
            try:
                with admin(node.port, 1.0) as client:
                    text = client.execute_command("CLUSTER", "NODES")
            except (redis.RedisError, OSError):
                continue
            return _parse_nodes(text.decode() if isinstance(text, bytes) else str(text))
        return []

    def owner(self, slot: int) -> DataNode | None:
        """The live primary serving `slot` now."""
        for view in self.view():
            if view.role == "master" and not view.failed and view.serves(slot):
                return self.node_by_port(view.port)
        return None

    def replicas_of(self, primary: DataNode) -> list[DataNode]:
        views = self.view()
        primary_id = next((v.node_id for v in views if v.port == primary.port), None)
        found = [self.node_by_port(v.port) for v in views if v.primary_id == primary_id and primary_id]
        return [node for node in found if node is not None]

    def snapshot(self) -> dict[str, Any]:
        """Each node's role, its primary and its slot ranges: journaled before and after a fault."""
        by_id = {v.node_id: v for v in self.view()}
        nodes = []
        for view in by_id.values():
            node = self.node_by_port(view.port)
            shown: dict[str, Any] = {"name": node.name if node else str(view.port), "port": view.port,
                                     "role": view.role, "failed": view.failed}  # fmt: skip
            if view.slots:
                shown["slots"] = [list(span) for span in view.slots]
            if view.primary_id in by_id:
                shown["primary_port"] = by_id[view.primary_id].port
            nodes.append(shown)
        return {"nodes": sorted(nodes, key=lambda n: n["port"])}

    def healthy(self) -> bool:
        """Every live node says cluster_state ok, every slot is served, and each primary has a replica."""
        for node in self.nodes:
            if not node.alive():
                return False
            try:
                with admin(node.port, 1.0) as client:
                    state = client.execute_command("CLUSTER", "INFO")
            except (redis.RedisError, OSError):
                return False
            text = state.decode() if isinstance(state, bytes) else str(state)
            if "cluster_state:ok" not in text or "cluster_slots_ok:16384" not in text:
                return False
        views = self.view()
        primaries = [v for v in views if v.role == "master" and v.slots and not v.failed]
        with_replica = {v.primary_id for v in views if v.role == "slave" and not v.failed}
        if len(primaries) != PRIMARIES or not all(p.node_id in with_replica for p in primaries):
            return False
        # Every replica in sync with its primary (the link users can log in), not only known to the cluster.
        replicas = [self.node_by_port(v.port) for v in views if v.role == "slave" and not v.failed]
        return all(node is not None and node.offset() is not None for node in replicas)

    def wait_owner_changed(self, slot: int, old: DataNode, timeout_s: float = FAILOVER_TIMEOUT_S) -> DataNode:
        def moved() -> bool:
            found = self.owner(slot)
            return found is not None and found is not old

        wait_until(f"slot {slot} failing over away from {old.name}", moved, timeout_s)
        new = self.owner(slot)
        assert new is not None
        return new

    def wait_healthy(self, timeout_s: float = FAILOVER_TIMEOUT_S) -> None:
        wait_until("the cluster healing (every node ok, every shard with a replica)", self.healthy, timeout_s)

    def node_id(self, node: DataNode) -> str:
        with admin(node.port) as client:
            found = client.execute_command("CLUSTER", "MYID")
        return found.decode() if isinstance(found, bytes) else str(found)

    def begin_migration(self, slot: int, source: DataNode, target: DataNode) -> None:
        """Mark `slot` importing on `target` and migrating on `source`: from now on clients get ASK (and
        TRYAGAIN for multi-key commands over keys split between the two) until finish_migration()."""
        source_id, target_id = self.node_id(source), self.node_id(target)
        with admin(target.port) as client:
            client.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        with admin(source.port) as client:
            client.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)

    def finish_migration(self, slot: int, source: DataNode, target: DataNode) -> int:
        """Move every key of `slot` (MIGRATE, as redis-cli --cluster reshard does), then give the slot to
        `target` on every primary. Returns how many keys moved."""
        moved = 0
        with admin(source.port, 30.0) as client:
            while True:
                keys = client.execute_command("CLUSTER", "GETKEYSINSLOT", slot, MIGRATE_BATCH)
                if not keys:
                    break
                client.execute_command("MIGRATE", LOOPBACK, target.port, "", 0, 30_000, "KEYS", *keys)
                moved += len(keys)
        target_id = self.node_id(target)
        for node in [target, source, *(n for n in self.nodes if n not in (target, source))]:
            if not node.alive():
                continue
            with contextlib.suppress(redis.RedisError, OSError), admin(node.port) as client:
                if node in (target, source) or self._is_primary(node):
                    client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        return moved

    def reshard(self, source: DataNode, target: DataNode, slots: int) -> str:
        """`redis-cli --cluster reshard`: move `slots` slots from `source` to `target` (the tool's log)."""
        command = [
            redis_cli(), "--cluster", "reshard", f"{LOOPBACK}:{source.port}", "--cluster-from", self.node_id(source),
            "--cluster-to", self.node_id(target), "--cluster-slots", str(slots), "--cluster-yes",
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
        if done.returncode != 0:
            raise SetupError(f"redis-cli --cluster reshard failed (exit {done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def _is_primary(self, node: DataNode) -> bool:
        return node.role() == "master"


def cluster_port() -> int:
    """A free port whose cluster bus port (10,000 higher) is free too."""
    return free_port(bus_offset=10_000)


def slot_of(key: str) -> int:
    return int(key_slot(key.encode()))


def _parse_nodes(text: str) -> list[NodeView]:
    views = []
    for line in text.strip().splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        address, flags = parts[1], parts[2].split(",")
        port = int(address.split("@")[0].rsplit(":", 1)[1])
        role = "master" if "master" in flags else "slave"
        slots = []
        for span in parts[8:]:
            if span.startswith("["):
                continue  # a slot being imported or migrated, not served
            lo, _, hi = span.partition("-")
            slots.append((int(lo), int(hi or lo)))
        failed = "fail" in flags or "fail?" in flags or "noaddr" in flags
        views.append(NodeView(parts[0], port, role, None if parts[3] == "-" else parts[3], failed, tuple(slots)))
    return views
