"""Throwaway redis-servers for a user's tests: a free loopback port, a folder of their own, a persistence
setting, and a chosen server binary (redis-server, or a compatible one such as valkey-server)."""

from __future__ import annotations

import os
from pathlib import Path

from harness.errors import SetupError
from harness.providers.local import PERSISTENCE_ARGS, LocalRedis, RedisConfig, find_redis_server

# The environment variable every local server of the harness reads its binary from (harness.providers.local).
BINARY_ENV = "REDIS_SERVER"


class ThrowawayRedis(LocalRedis):
    """A LocalRedis whose binary may differ from the harness's default ($REDIS_SERVER, else PATH)."""

    def __init__(self, workdir: Path, config: RedisConfig | None = None, *, binary: str | None = None) -> None:
        super().__init__(workdir, config)
        self.binary = binary or find_redis_server()
        if not os.access(self.binary, os.X_OK):
            raise SetupError(f"redis server binary {self.binary} is not an executable file: fix the path")

    def _command(self) -> list[str]:
        return [self.binary, *super()._command()[1:]]


def throwaway_redis(workdir: Path, *, persistence: str = "none", binary: str | None = None) -> ThrowawayRedis:
    """A started server; SetupError says what to install or which persistence settings exist."""
    if persistence not in PERSISTENCE_ARGS:
        raise SetupError(f"unknown persistence {persistence!r}: use one of {', '.join(PERSISTENCE_ARGS)}")
    server = ThrowawayRedis(workdir, RedisConfig(persistence=persistence), binary=binary)
    server.start()
    return server
