"""Providers: where the Redis under test comes from, and how it is hurt.

A provider gives a URL and, where it can, kills, restarts and pauses the server.
`--redis` names one: `local` (a redis-server of the run's own), or a redis:// /
rediss:// URL of an existing server (used as is, never hurt).
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import SetupError
from harness.providers.base import Provider, RedisFaults
from harness.providers.external import ExternalRedis
from harness.providers.local import LocalRedis, RedisConfig, find_redis_server

__all__ = [
    "ExternalRedis",
    "LocalRedis",
    "Provider",
    "RedisConfig",
    "RedisFaults",
    "find_redis_server",
    "make_provider",
]

URL_SCHEMES = ("redis://", "rediss://", "unix://")


def make_provider(spec: str, workdir: Path, persistence: str = "none") -> Provider:
    """The provider `spec` names; SetupError says what is accepted."""
    if spec == "local":
        return LocalRedis(workdir, RedisConfig(persistence=persistence))
    if spec.startswith(URL_SCHEMES):
        return ExternalRedis(spec)
    raise SetupError(f"--redis {spec!r} is not understood: use local, or a redis:// or rediss:// URL")


def check_provider(spec: str) -> None:
    """Fail before a run starts when the provider cannot work: a missing binary, a dead URL."""
    if spec == "local":
        find_redis_server()
    elif spec.startswith(URL_SCHEMES):
        ExternalRedis(spec).start()
    else:
        make_provider(spec, Path("."))
