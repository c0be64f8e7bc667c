"""Throwaway redis-servers for a user's tests: a free loopback port, a folder of their own, a persistence
setting, and a chosen server binary (redis-server, or a compatible one such as valkey-server)."""

from __future__ import annotations

from pathlib import Path

from harness.errors import SetupError
from harness.providers.local import PERSISTENCE_ARGS, LocalRedis, RedisConfig


def throwaway_redis(workdir: Path, *, persistence: str = "none", binary: str | None = None) -> LocalRedis:
    """A started server (binary None: $REDIS_SERVER, else redis-server on PATH); SetupError says what to
    install, or which persistence settings exist."""
    if persistence not in PERSISTENCE_ARGS:
        raise SetupError(f"unknown persistence {persistence!r}: use one of {', '.join(PERSISTENCE_ARGS)}")
    server = LocalRedis(workdir, RedisConfig(persistence=persistence), binary=binary)
    server.start()
    return server
