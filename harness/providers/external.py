"""An external Redis given by URL: used as is, never hurt (no Redis faults on it)."""

from __future__ import annotations

import redis

from harness.errors import SetupError
from taskq.connection import redacted


class ExternalRedis:
    def __init__(self, url: str) -> None:
        self._url = url

    @property
    def url(self) -> str:
        return self._url

    def start(self) -> None:
        """Check that it answers, so a wrong URL fails before the run starts."""
        try:
            with redis.Redis.from_url(self._url, socket_timeout=3, socket_connect_timeout=3) as client:
                client.ping()
        except (redis.exceptions.RedisError, OSError, ValueError) as exc:
            raise SetupError(
                f"cannot reach Redis at {redacted(self._url)} ({exc}); start it, fix the URL, or use --redis local"
            ) from exc

    def stop(self) -> None:
        pass

    def describe(self) -> dict[str, str]:
        with redis.Redis.from_url(self._url, socket_timeout=3) as client:
            info = client.info("server")
        return {"provider": "external", "redis_version": str(info.get("redis_version")), "url": redacted(self._url)}
