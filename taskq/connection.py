"""Opens Redis connections with the defaults taskq relies on."""

from __future__ import annotations

import re

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from taskq.errors import ConfigError

REDACTED = "***"


def redacted(url: str) -> str:
    """`url` with its password replaced by ***, for error messages, logs and saved plans."""
    url = re.sub(r"(//[^/@:]*:)[^/?#]*@", rf"\1{REDACTED}@", url)  # up to the last @ of the host part
    return re.sub(r"([?&]password=)[^&]*", rf"\1{REDACTED}", url)


def open_redis(url: str, *, socket_timeout_s: float) -> aioredis.Redis:
    """A client for `url` (redis://, rediss://, unix://; user, password and TLS options in the URL).

    redis-py resends a command after a connection error by default; for a write that
    may already have run (an enqueue) that is a silent duplicate, so taskq turns those
    retries off and decides per operation what is safe to repeat.
    """
    try:
        return aioredis.Redis.from_url(
            url,
            protocol=2,
            retry=Retry(NoBackoff(), 0),
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=min(socket_timeout_s, 5.0),
        )
    except ValueError as exc:
        raise ConfigError(
            f"invalid Redis URL {redacted(url)!r} ({exc}); "
            "use redis://[user:password@]host:port/db or rediss:// for TLS"
        ) from exc
