"""Server processes of a topology (replicated, cluster): data nodes and Sentinels, each a child process
on a loopback port with a folder of its own in the run folder, and the admin calls the providers and
the topology nemesis make on them (INFO, ROLE, replication offsets).

The links between servers (replica to primary, Sentinel to server) log in as Redis users of their
own, created on every data node at start; clients and the harness log in as APP_USER. In a replicated
topology the `default` user is off, so a connection whose login fails can do nothing at all. That is
what lets a fault cut the primary off from its replicas and Sentinels while clients still reach it
(harness/nemesis/topology.py): switching the link users off on the primary and killing their
connections fails every link (replicas cannot sync, Sentinels' PINGs get NOAUTH) the way a partition
does, on any machine and without root.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness.errors import SetupError
from harness.providers.binary import ServerBinary
from harness.providers.local import PERSISTENCE_ARGS, LocalRedis, RedisConfig, free_port

LOOPBACK = "127.0.0.1"
REPLICA_USER_PREFIX = "taskq-replica-"
SENTINEL_USER = "taskq-sentinel"
APP_USER = "taskq-app"
# One password for every server this process starts (loopback only): links, clients, admin.
RUN_PASSWORD = secrets.token_hex(12)
_ALL = ("on", f">{RUN_PASSWORD}", "allcommands", "allkeys", "allchannels")
ADMIN_TIMEOUT_S = 3.0
# A replica's first sync right away (the default waits 5 s for more replicas to share one RDB transfer).
REPLICATION_ARGS = ("--repl-diskless-sync-delay", "0", "--repl-diskless-sync", "yes")


@dataclass(frozen=True, slots=True)
class LinkUsers:
    """The Redis users that server-to-server links log in as (one password for this run): one per
    replica (so that one replica's link can be cut alone) and one for the Sentinels."""

    nodes: tuple[str, ...]
    password: str = RUN_PASSWORD

    @property
    def users(self) -> tuple[str, ...]:
        """The link users (not the clients'): what a cut switches off."""
        return (*(replica_user(name) for name in self.nodes), SENTINEL_USER)

    def node_args(self, *, default_user: bool) -> tuple[str, ...]:
        users = tuple(arg for user in (*self.users, APP_USER) for arg in ("--user", user, *_ALL))
        return users if default_user else (*users, "--user", "default", "off")

    def replica_args(self, primary_port: int) -> tuple[str, ...]:
        return ("--replicaof", LOOPBACK, str(primary_port))


def replica_user(node_name: str) -> str:
    """The user `node_name` logs in as when it replicates from a primary."""
    return f"{REPLICA_USER_PREFIX}{node_name}"


def admin(port: int, timeout_s: float = ADMIN_TIMEOUT_S, *, sentinel: bool = False) -> redis.Redis:
    """A short-lived admin client for a server of the topology (never retried); Sentinels take no login."""
    login: dict[str, Any] = {} if sentinel else {"username": APP_USER, "password": RUN_PASSWORD}
    return redis.Redis(
        host=LOOPBACK, port=port, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0), **login,
    )  # fmt: skip


def app_url(port: int) -> str:
    """How a client reaches one data node: as APP_USER."""
    return f"redis://{APP_USER}:{RUN_PASSWORD}@{LOOPBACK}:{port}/0"


def info(port: int, section: str, timeout_s: float = ADMIN_TIMEOUT_S) -> dict[str, Any] | None:
    """INFO `section` of the server on `port`, or None when it does not answer."""
    try:
        with admin(port, timeout_s) as client:
            found: dict[str, Any] = client.info(section)
            return found
    except (redis.RedisError, OSError):
        return None


class DataNode(LocalRedis):
    """One data server of a topology: a LocalRedis with a name, the link users, and replication settings."""

    def __init__(
        self,
        name: str,
        folder: Path,
        binary: ServerBinary,
        persistence: str,
        *,
        extra: tuple[str, ...],
        links: LinkUsers,
        default_user: bool = True,
        choose_port: Callable[[], int] = free_port,
    ) -> None:
        self.name = name
        # Every node, the primary too, knows how to log in to a primary: a Sentinel may make it a replica.
        login = ("--masteruser", replica_user(name), "--masterauth", links.password)
        self.base_args = (*links.node_args(default_user=default_user), *login, *REPLICATION_ARGS, *extra)
        config = RedisConfig(persistence=persistence, extra_args=self.base_args)
        super().__init__(folder, config, binary=binary.path, choose_port=choose_port)

    @property
    def url(self) -> str:
        return app_url(self.port)

    def set_replica_of(self, primary_port: int | None, links: LinkUsers) -> None:
        """How the next start() begins: as a replica of `primary_port`, or as a primary (None)."""
        args = self.base_args if primary_port is None else (*self.base_args, *links.replica_args(primary_port))
        self.config = replace(self.config, extra_args=args)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def role(self) -> str:
        """ "master", "slave", or "down"."""
        found = info(self.port, "replication", timeout_s=1.0) if self.alive() else None
        return "down" if found is None else str(found.get("role", "down"))

    def offset(self) -> int | None:
        """This server's replication offset: how much of the primary's stream it has applied."""
        found = info(self.port, "replication", timeout_s=1.0) if self.alive() else None
        if found is None:
            return None
        if found.get("role") == "master":
            return int(found.get("master_repl_offset", 0))
        if found.get("master_link_status") != "up":
            return None  # not (or not yet) replicating: what it holds is not the primary's stream
        return int(found.get("slave_repl_offset", 0))

    def snapshot(self) -> dict[str, Any]:
        """Name, port, role and offset, for a fault's journal entry."""
        found = info(self.port, "replication", timeout_s=1.0) if self.alive() else None
        if found is None:
            return {"name": self.name, "port": self.port, "role": "down"}
        role = str(found.get("role"))
        shown: dict[str, Any] = {"name": self.name, "port": self.port, "role": role}
        if role == "master":
            shown["offset"] = int(found.get("master_repl_offset", 0))
            shown["replicas"] = int(found.get("connected_slaves", 0))
        else:
            shown["offset"] = int(found.get("slave_repl_offset", 0))
            shown["primary_port"] = int(found.get("master_port", 0))
            shown["link"] = str(found.get("master_link_status", ""))
        return shown


class SentinelProcess:
    """One Sentinel watching the primary called `service`, with a config file it may rewrite."""

    def __init__(self, name: str, folder: Path, binary: ServerBinary, *, timing: SentinelTiming) -> None:
        self.name = name
        self.folder = Path(folder).resolve()
        self.binary = binary
        self.timing = timing
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def choose_port(self, service: str, primary_port: int, links: LinkUsers) -> None:
        """Another port, for when the one chosen was taken before this Sentinel could bind it."""
        self.port = free_port()
        self.write_config(service, primary_port, links)

    def write_config(self, service: str, primary_port: int, links: LinkUsers) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        t = self.timing
        lines = [
            f"port {self.port}", f"bind {LOOPBACK}", f"dir {self.folder}", "daemonize no",
            f"logfile {self.folder / 'sentinel.log'}",
            f"sentinel monitor {service} {LOOPBACK} {primary_port} {t.quorum}",
            f"sentinel down-after-milliseconds {service} {t.down_after_ms}",
            f"sentinel failover-timeout {service} {t.failover_timeout_ms}",
            f"sentinel parallel-syncs {service} 2",
            f"sentinel auth-user {service} {SENTINEL_USER}", f"sentinel auth-pass {service} {links.password}",
        ]  # fmt: skip
        (self.folder / "sentinel.conf").write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        with (self.folder / "sentinel.stderr").open("ab") as stderr:
            command = [self.binary.path, str(self.folder / "sentinel.conf"), "--sentinel"]
            self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.folder / "sentinel.log").read_text(errors="replace") if self.folder.exists() else ""
                raise SetupError(f"Sentinel {self.name} exited at start: {' | '.join(log.splitlines()[-3:])}")
            try:
                with admin(self.port, 1.0, sentinel=True) as client:
                    if client.ping():
                        return
            except (redis.RedisError, OSError):
                time.sleep(0.02)
        raise SetupError(f"Sentinel {self.name} on port {self.port} did not answer within 10 s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def primary_port(self, service: str) -> int | None:
        """The primary this Sentinel names for `service` now, or None when it cannot say."""
        try:
            with admin(self.port, 1.0, sentinel=True) as client:
                found = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", service)
        except (redis.RedisError, OSError):
            return None
        return int(found[1]) if found else None


@dataclass(frozen=True, kw_only=True, slots=True)
class SentinelTiming:
    """How fast Sentinels act: a primary silent for down_after_ms is down; quorum Sentinels must agree."""

    quorum: int = 2
    # Not 1000: a Sentinel PINGs once a second, and one that has just switched to a new primary has not heard
    # from it yet; with 1000 ms it may call the new primary down at once and fail over again (seen here, with
    # acknowledged acks lost in that second, unplanned failover).
    down_after_ms: int = 2000
    failover_timeout_ms: int = 4000


def check_persistence(persistence: str) -> None:
    if persistence not in PERSISTENCE_ARGS:
        raise SetupError(f"unknown persistence {persistence!r}: use one of {', '.join(PERSISTENCE_ARGS)}")


def wait_until(what: str, done: Any, timeout_s: float, poll_s: float = 0.05) -> None:
    """Poll `done()` until it is true; SetupError naming `what` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(poll_s)
    raise SetupError(f"{what} did not happen within {timeout_s:g} s: see the server logs in the run folder")
