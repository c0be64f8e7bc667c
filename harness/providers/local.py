"""A local redis-server process: started in a folder of the run, on a free loopback port.

It can be killed (SIGKILL), restarted on the same port and data folder, and paused
(SIGSTOP/SIGCONT), which is what the Redis faults need.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import redis

from harness.errors import SetupError
from harness.providers.binary import find_redis_server, inspect

__all__ = [
    "PERSISTENCE_ARGS", "LocalRedis", "RedisConfig", "TlsFiles",
    "find_redis_server", "free_port", "start_choosing_again", "url_or_fresh_server",
]  # fmt: skip

PERSISTENCE_ARGS: dict[str, tuple[str, ...]] = {
    "none": ("--save", "", "--appendonly", "no"),
    "aof-everysec": ("--save", "", "--appendonly", "yes", "--appendfsync", "everysec"),
    "aof-always": ("--save", "", "--appendonly", "yes", "--appendfsync", "always"),
    "rdb": ("--save", "1 1", "--appendonly", "no"),
}


# Not seeded: two runs with the same seed, side by side, must not pick the same ports.
_PORTS = random.SystemRandom()


def free_port(bus_offset: int = 0) -> int:
    """A free loopback port below the kernel's ephemeral range (with `bus_offset`: P and P + offset both free,
    for a cluster node's bus port).

    A port the kernel hands out (bind to 0) lies in the range it also gives every outgoing connection: a
    client connecting between our choice and the server's bind, or while a killed server restarts, can
    take it ("Address already in use", seen in CI). Below that range only listeners that ask for a port
    by number can collide, and start_choosing_again() covers those.
    """
    highest = min(_ephemeral_low(), 65_536) - 1 - bus_offset
    if highest > 11_000:
        for _ in range(200):
            port = _PORTS.randint(10_000, highest)
            if _bindable(port) and (not bus_offset or _bindable(port + bus_offset)):
                return port
    if bus_offset:
        raise SetupError(f"no free pair of ports (P, P + {bus_offset}) below {highest + bus_offset + 1}")
    with socket.socket() as sock:  # no room below the range (an unusual kernel setting): let the kernel choose
        sock.bind(("127.0.0.1", 0))
        chosen: int = sock.getsockname()[1]
        return chosen


def start_choosing_again(start: Callable[[], None], choose_again: Callable[[], None], attempts: int = 5) -> None:
    """Start a server on the port chosen for it; when another process took that port meanwhile, choose again."""
    for attempt in range(attempts):
        try:
            start()
            return
        except SetupError as exc:
            if "Address already in use" not in str(exc) or attempt == attempts - 1:
                raise
            choose_again()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass(frozen=True, kw_only=True, slots=True)
class TlsFiles:
    cert: Path
    key: Path
    ca: Path


@dataclass(frozen=True, kw_only=True, slots=True)
class RedisConfig:
    """How to run the server: persistence, credentials, TLS, extra directives."""

    persistence: str = "none"
    password: str | None = None
    # ACL users as (name, password, rules), e.g. ("app", "s3cret", "~taskq:* +@all").
    acl_users: tuple[tuple[str, str, str], ...] = ()
    # The user the URL logs in as; None logs in as `default` with `password`.
    url_user: str | None = None
    tls: TlsFiles | None = None
    extra_args: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.persistence not in PERSISTENCE_ARGS:
            raise SetupError(f"unknown persistence {self.persistence!r}: use one of {', '.join(PERSISTENCE_ARGS)}")


class LocalRedis:
    """One redis-server child process bound to 127.0.0.1."""

    # Where it listens and clients connect; a subclass may listen elsewhere (harness/providers/netns.py).
    host = "127.0.0.1"

    def __init__(
        self,
        workdir: Path,
        config: RedisConfig | None = None,
        *,
        port: int | None = None,
        binary: str | None = None,
        choose_port: Callable[[], int] = free_port,
    ) -> None:
        self.workdir = Path(workdir).resolve()  # redis-server changes into --dir before opening its log
        self.config = config or RedisConfig()
        # A port we chose may be taken before the first start binds it: then choose again. One given is kept.
        self._choose_port = None if port else choose_port
        self.port = port or choose_port()
        # Another redis-server-compatible binary (Valkey, a build of one's own); None: find_redis_server().
        self.binary = binary
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        cfg = self.config
        scheme = "rediss" if cfg.tls else "redis"
        auth = ""
        if cfg.url_user is not None:
            user_password = next(p for name, p, _ in cfg.acl_users if name == cfg.url_user)
            auth = f"{quote(cfg.url_user)}:{quote(user_password)}@"
        elif cfg.password is not None:
            auth = f":{quote(cfg.password)}@"
        query = f"?ssl_ca_certs={quote(str(cfg.tls.ca))}" if cfg.tls else ""
        return f"{scheme}://{auth}{self.host}:{self.port}/0{query}"

    def bind_addresses(self) -> tuple[str, ...]:
        return (self.host,)

    @property
    def persistence(self) -> str:
        return self.config.persistence

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def _command(self) -> list[str]:
        cfg = self.config
        binary = self.binary or find_redis_server()
        cmd = [binary, "--bind", *self.bind_addresses(), "--dir", str(self.workdir), "--daemonize", "no"]
        cmd += ["--logfile", str(self.workdir / "redis.log"), *PERSISTENCE_ARGS[cfg.persistence]]
        if cfg.tls:
            cmd += ["--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no"]
            cmd += ["--tls-cert-file", str(cfg.tls.cert), "--tls-key-file", str(cfg.tls.key)]
            cmd += ["--tls-ca-cert-file", str(cfg.tls.ca)]
        else:
            cmd += ["--port", str(self.port)]
        if cfg.password is not None:
            cmd += ["--requirepass", cfg.password]
        for name, password, rules in cfg.acl_users:
            # Each token its own argument: redis-server reads one argument as one word.
            cmd += ["--user", name, "on", f">{password}", *rules.split()]
        return cmd + list(cfg.extra_args)

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        inspect(self.binary or find_redis_server())  # too old for taskq, or no server at all: say so now
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.starts == 0 and self._choose_port is not None:
            start_choosing_again(self._spawn, self.choose_port)
        else:
            self._spawn()  # a restart keeps its port: clients and replicas know it

    def _spawn(self) -> None:
        # Start-up errors (a bad directive) go to stderr before the log file opens.
        with (self.workdir / "redis.stderr").open("ab") as stderr:
            self.process = subprocess.Popen(self._command(), stdout=subprocess.DEVNULL, stderr=stderr)
        self.starts += 1
        self._wait_ready()

    def _wait_ready(self, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise SetupError(f"redis-server exited at start (code {self.process.returncode}): {self._log_tail()}")
            try:
                with redis.Redis.from_url(self.url, socket_timeout=1) as client:
                    if client.ping():
                        return
            except redis.exceptions.BusyLoadingError:
                pass
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
                pass
            time.sleep(0.02)
        raise SetupError(f"redis-server on port {self.port} did not answer within {timeout_s}s: {self._log_tail()}")

    def _log_tail(self) -> str:
        lines = []
        for name in ("redis.stderr", "redis.log"):
            log = self.workdir / name
            lines += log.read_text(errors="replace").splitlines()[-3:] if log.exists() else []
        return " | ".join(lines) or "no log written"

    def choose_port(self) -> None:
        """Another port, for a first start whose port was taken before the server could bind it."""
        assert self._choose_port is not None
        self.starts = 0
        self.port = self._choose_port()

    def _signal(self, sig: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, sig)

    def kill(self) -> None:
        """SIGKILL: no shutdown save, no fsync beyond what the persistence setting did."""
        self._signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait()

    def restart(self) -> None:
        """Start again on the same port and data folder (after kill or stop)."""
        self.kill()
        self.start()

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is None:
            return
        self.resume()
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def describe(self) -> dict[str, str]:
        binary = self.binary or find_redis_server()
        version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
        return {
            "provider": "local",
            "topology": "single",
            **inspect(binary).facts(),
            "redis_version": version.stdout.strip(),
            "persistence": self.config.persistence,
            "tls": str(self.config.tls is not None),
        }

    def __enter__(self) -> LocalRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def url_or_fresh_server(url: str | None) -> Iterator[str]:
    """`url`, or the URL of a fresh local redis-server (in a temporary folder) for the duration."""
    if url is not None:
        yield url
        return
    with tempfile.TemporaryDirectory() as folder:
        server = LocalRedis(Path(folder))
        server.start()
        try:
            yield server.url
        finally:
            server.stop()
