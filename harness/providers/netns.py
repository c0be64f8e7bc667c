"""Redis in a network namespace of its own, behind a veth pair, so that clients can be cut off.

One namespace per run:

    host      veth tqh<tag>   10.213.N.1/24   (where every client connects from)
    namespace veth tqn<tag>   10.213.N.2      the runner's own address, never cut
                              10.213.N.3      producers
                              10.213.N.4      consumers

redis-server runs inside the namespace (`ip netns exec`), bound to those three addresses
only: they exist on this host's veth pair and nowhere else. A partition is iptables DROP
rules inside the namespace on the addresses of the roles cut off (their connections hang,
as on a real partition, rather than being refused); healing flushes the rules. Building a
namespace needs root, `ip` (iproute2) and `iptables`.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from harness.errors import SetupError
from harness.providers.local import LocalRedis, RedisConfig

ROLE_HOSTS = {"admin": 2, "producer": 3, "consumer": 4}
SUBNET_PREFIX = "10.213"


def partition_unavailable() -> str:
    """Why partitions cannot be made here, or "" when they can."""
    if os.geteuid() != 0:
        return (
            "partition faults need root (a network namespace, a veth pair and iptables rules): "
            "run as root (sudo), or choose a scenario without partition faults"
        )
    missing = [tool for tool in ("ip", "iptables") if shutil.which(tool) is None]
    if missing:
        return (
            f"partition faults need {' and '.join(missing)}: "
            "install them with `sudo apt-get install -y iproute2 iptables`"
        )
    return ""


def _run(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=30)
    if done.returncode != 0:
        raise SetupError(
            f"`{' '.join(command)}` failed (exit {done.returncode}): {done.stderr.strip() or done.stdout.strip()}; "
            "partitions need root and a kernel with network namespaces and veth"
        )
    return done.stdout


class NetnsRedis(LocalRedis):
    """A LocalRedis inside a network namespace; `cut(roles)` partitions those roles' clients from it."""

    partial_cuts = True

    def __init__(
        self, workdir: Path, config: RedisConfig | None = None, *, port: int | None = None, binary: str | None = None
    ) -> None:
        super().__init__(workdir, config, port=port, binary=binary)
        tag = f"{random.randrange(16**8):08x}"
        self.namespace = f"taskq-{tag}"
        self.host_if, self.ns_if = f"tqh{tag}", f"tqn{tag}"
        self.subnet = f"{SUBNET_PREFIX}.{self._free_subnet()}"
        self.host = self._address("admin")
        self.cut_roles: frozenset[str] = frozenset()
        self._built = False

    def _address(self, role: str) -> str:
        return f"{self.subnet}.{ROLE_HOSTS[role]}"

    @staticmethod
    def _free_subnet() -> int:
        if shutil.which("ip") is None:
            return 0  # start() refuses with the reason (partition_unavailable) before this matters
        used = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True, check=False).stdout
        free = [n for n in range(1, 255) if f" {SUBNET_PREFIX}.{n}." not in used]
        if not free:
            raise SetupError(f"no free {SUBNET_PREFIX}.N.0/24 subnet for a namespace: delete stale `ip netns` ones")
        return random.choice(free)

    def bind_addresses(self) -> tuple[str, ...]:
        return tuple(self._address(role) for role in ROLE_HOSTS)

    def url_for(self, role: str) -> str:
        """The URL clients of `role` ("producer", "consumer") use: their own address, so it can be cut alone."""
        return self.url.replace(f"//{self.host}:", f"//{self._address(role)}:", 1).replace(
            f"@{self.host}:", f"@{self._address(role)}:", 1
        )

    def _command(self) -> list[str]:
        # Clients come from the host over the veth pair, which protected mode and `local` DEBUG refuse;
        # the addresses exist on this host only.
        command = [*super()._command(), "--protected-mode", "no", "--enable-debug-command", "yes"]
        return ["ip", "netns", "exec", self.namespace, *command]

    def start(self) -> None:
        if not self._built:
            self._build()
        try:
            super().start()
        except BaseException:
            self.stop()
            raise

    def _build(self) -> None:
        why = partition_unavailable()
        if why:
            raise SetupError(why)
        ns = self.namespace
        try:
            _run("ip", "netns", "add", ns)
            _run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if, "netns", ns)
            _run("ip", "addr", "add", f"{self.subnet}.1/24", "dev", self.host_if)
            _run("ip", "link", "set", self.host_if, "up")
            for role in ROLE_HOSTS:
                _run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{self._address(role)}/24", "dev", self.ns_if)
            _run("ip", "netns", "exec", ns, "ip", "link", "set", self.ns_if, "up")
            _run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        except SetupError:
            self._teardown()
            raise
        self._built = True

    def cut(self, roles: Iterable[str]) -> None:
        """Drop every packet between Redis and the clients of `roles` (both ways), until heal()."""
        chosen = frozenset(roles) - self.cut_roles
        unknown = chosen - {"producer", "consumer"}
        if unknown:
            raise SetupError(f"cannot cut {sorted(unknown)}: a partition cuts producer and/or consumer clients")
        for role in sorted(chosen):
            address = self._address(role)
            self._iptables("-A", "INPUT", "-d", address, "-j", "DROP")
            self._iptables("-A", "OUTPUT", "-s", address, "-j", "DROP")
        self.cut_roles |= chosen

    def heal(self) -> None:
        """Remove every partition rule."""
        self._iptables("-F", "INPUT")
        self._iptables("-F", "OUTPUT")
        self.cut_roles = frozenset()

    def _iptables(self, *rule: str) -> None:
        _run("ip", "netns", "exec", self.namespace, "iptables", "-w", *rule)

    def stop(self) -> None:
        try:
            if self._built:
                with contextlib.suppress(SetupError):
                    self.heal()  # a cut SIGTERM would otherwise never reach a client
            super().stop()
        finally:
            self._teardown()

    def _teardown(self) -> None:
        subprocess.run(["ip", "netns", "del", self.namespace], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True, check=False)
        self._built = False

    def describe(self) -> dict[str, str]:
        return {**super().describe(), "provider": "local-netns", "namespace": self.namespace}
