"""Providers: where the Redis under test comes from, and how it is hurt.

A provider gives a URL and, where it can, kills, restarts and pauses the server.
`--redis` names one: `local` (a redis-server of the run's own; in a network namespace of
its own when the scenario partitions it), `container[:IMAGE]` (Redis in a Docker container
through testcontainers; by default an image built from this host's redis-server), or a
redis:// / rediss:// URL of an existing server (used as is, never hurt).
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import SetupError
from harness.providers.base import Provider, RedisFaults
from harness.providers.container import ContainerRedis
from harness.providers.external import ExternalRedis
from harness.providers.image import docker_client
from harness.providers.local import LocalRedis, RedisConfig, find_redis_server
from taskq.connection import redacted

__all__ = [
    "ContainerRedis",
    "ExternalRedis",
    "LocalRedis",
    "Provider",
    "RedisConfig",
    "RedisFaults",
    "find_redis_server",
    "make_provider",
]

URL_SCHEMES = ("redis://", "rediss://", "unix://")
CONTAINER = "container"
# Harness runs may put the server to sleep (the debug-sleep fault), from this host only.
HARNESS_DIRECTIVES = ("--enable-debug-command", "local")


def make_provider(spec: str, workdir: Path, persistence: str = "none", *, isolated: bool = False) -> Provider:
    """The provider `spec` names; SetupError says what is accepted. `isolated`: a local server in a
    network namespace of its own, so that partitions can cut clients off (needs root)."""
    if spec == "local":
        config = RedisConfig(persistence=persistence, extra_args=HARNESS_DIRECTIVES)
        if isolated:
            from harness.providers.netns import NetnsRedis  # noqa: PLC0415  only partition runs need it

            return NetnsRedis(workdir, config)
        return LocalRedis(workdir, config)
    if spec == CONTAINER or spec.startswith(f"{CONTAINER}:"):
        return ContainerRedis(workdir, spec.partition(":")[2], persistence)
    if spec.startswith(URL_SCHEMES):
        return ExternalRedis(spec)
    raise SetupError(
        f"--redis {redacted(spec)!r} is not understood: use local, container[:IMAGE], or a redis:// or rediss:// URL"
    )


def check_provider(spec: str) -> None:
    """Fail before a run starts when the provider cannot work: a missing binary, a dead URL."""
    if spec == "local":
        find_redis_server()
    elif spec == CONTAINER or spec.startswith(f"{CONTAINER}:"):
        docker_client().close()
    elif spec.startswith(URL_SCHEMES):
        ExternalRedis(spec).start()
    else:
        make_provider(spec, Path("."))
