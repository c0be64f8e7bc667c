"""Redis (or Valkey) in a Docker container, through testcontainers: `--redis container[:IMAGE]`.

The default image is built from this host's redis-server (harness/providers/image.py), since
this project's machines reach no registry; any other image (redis:7.2, valkey/valkey:8) is
used as testcontainers finds it. The faults where they apply: kill (`docker kill`, SIGKILL)
and restart (`docker start`: same container, same /data, same host port), pause (`docker
pause`, the cgroup freezer), and a partition of all clients (`docker network disconnect`,
then `connect`). The port is published on 127.0.0.1 only.

Ryuk, testcontainers' reaper, is an image of its own that cannot be pulled without a
registry: it is off unless TESTCONTAINERS_RYUK_DISABLED says otherwise, and stop() removes
the container and its network itself.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import redis

from harness.errors import SetupError
from harness.providers.image import DEFAULT_IMAGE, docker_client, ensure_image
from harness.providers.local import PERSISTENCE_ARGS, free_port

CONTAINER_PORT = 6379
ROLES = frozenset({"producer", "consumer"})


def _testcontainers() -> Any:
    """The testcontainers module, with Ryuk off unless the environment asks for it."""
    try:
        from testcontainers.core.config import testcontainers_config  # noqa: PLC0415  test extras only
        from testcontainers.core.container import DockerContainer  # noqa: PLC0415
    except ImportError as exc:
        raise SetupError(f"testcontainers is missing ({exc}): pip install -e '.[test]'") from exc
    if "TESTCONTAINERS_RYUK_DISABLED" not in os.environ:
        testcontainers_config.ryuk_disabled = True
    return DockerContainer


class ContainerRedis:
    """One Redis container of the run's own, on a Docker network of its own."""

    partial_cuts = False

    def __init__(self, workdir: Path, image: str = "", persistence: str = "none") -> None:
        if persistence not in PERSISTENCE_ARGS:
            raise SetupError(f"unknown persistence {persistence!r}: use one of {', '.join(PERSISTENCE_ARGS)}")
        self.workdir = Path(workdir)
        self.image = image or DEFAULT_IMAGE
        self.persistence = persistence
        self.port = free_port()
        self.cut_roles: frozenset[str] = frozenset()
        self._container: Any = None
        self._network: Any = None
        self._docker: Any = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def url_for(self, role: str) -> str:
        return self.url

    def _command(self) -> list[str]:
        return [
            "--bind", "0.0.0.0", "--protected-mode", "no", "--port", str(CONTAINER_PORT), "--dir", "/data",
            "--enable-debug-command", "yes", *PERSISTENCE_ARGS[self.persistence],
        ]  # fmt: skip

    def start(self) -> None:
        if self._container is not None:
            return
        container_class = _testcontainers()
        ensure_image(self.image)
        self._docker = docker_client()
        self._network = self._docker.networks.create(f"taskq-{self.port}-{os.getpid()}", driver="bridge")
        container = container_class(self.image).with_command(self._command())
        # Published on loopback only, on a fixed port, so a restarted container keeps its URL.
        container.ports[f"{CONTAINER_PORT}/tcp"] = ("127.0.0.1", self.port)
        container.with_kwargs(network=self._network.name)
        try:
            container.start()
        except Exception as exc:
            self._container = container
            self.stop()
            raise SetupError(f"the Redis container ({self.image}) did not start: {exc}") from exc
        self._container = container
        self._wait_ready()

    def _wrapped(self) -> Any:
        if self._container is None:
            raise SetupError("the Redis container is not running: start() the provider first")
        return self._container.get_wrapped_container()

    def _wait_ready(self, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            try:
                with redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1) as client:
                    if client.ping():
                        return
            except (redis.exceptions.RedisError, OSError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.05)
        logs = self._logs()
        raise SetupError(
            f"the Redis container on 127.0.0.1:{self.port} did not answer in {timeout_s}s ({last}): {logs}"
        )

    def _logs(self) -> str:
        try:
            text: bytes = self._wrapped().logs(tail=5)
            return " | ".join(text.decode(errors="replace").splitlines()) or "no log"
        except Exception as exc:  # the container may be gone
            return f"no log ({exc})"

    # -- faults ------------------------------------------------------------------------------

    def kill(self) -> None:
        """`docker kill` (SIGKILL): no shutdown save, no fsync beyond what the persistence setting did."""
        wrapped = self._wrapped()
        wrapped.reload()
        if wrapped.status in ("running", "paused"):
            wrapped.kill()
            wrapped.wait(timeout=30)

    def restart(self) -> None:
        """`docker start` the same container: same /data, same published port."""
        self.kill()
        self._wrapped().start()
        self._wait_ready()

    def pause(self) -> None:
        self._wrapped().pause()

    def resume(self) -> None:
        wrapped = self._wrapped()
        wrapped.reload()
        if wrapped.status == "paused":
            wrapped.unpause()

    def cut(self, roles: Iterable[str]) -> None:
        """`docker network disconnect`: a container is cut from every client at once, so `roles` must be all."""
        chosen = frozenset(roles)
        if chosen != ROLES:
            raise SetupError(
                f"a container can only be cut off from all clients (docker network disconnect), not {sorted(chosen)}: "
                "use target = 'all', or --redis local (as root) for a partition of some clients"
            )
        if not self.cut_roles:
            self._network.disconnect(self._wrapped())
        self.cut_roles = chosen

    def heal(self) -> None:
        if self.cut_roles:
            self._network.connect(self._wrapped())
            self.cut_roles = frozenset()

    def stop(self) -> None:
        container, network, docker = self._container, self._network, self._docker
        self._container = self._network = self._docker = None
        try:
            if container is not None:
                container.stop()
        finally:
            if network is not None:
                network.remove()
            if docker is not None:
                docker.close()

    def describe(self) -> dict[str, str]:
        version = "unknown"
        try:
            with redis.Redis.from_url(self.url, socket_timeout=3) as client:
                version = str(client.info("server").get("redis_version"))
        except (redis.exceptions.RedisError, OSError):
            pass
        return {"provider": "container", "image": self.image, "redis_version": version, "persistence": self.persistence}
