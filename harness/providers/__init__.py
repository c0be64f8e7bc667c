"""Providers: where the Redis under test comes from, and how it is hurt.

A provider gives a URL and, where it can, kills, restarts and pauses the server.
"""

from harness.providers.base import Provider, RedisFaults
from harness.providers.external import ExternalRedis
from harness.providers.local import LocalRedis, RedisConfig, find_redis_server

__all__ = ["ExternalRedis", "LocalRedis", "Provider", "RedisConfig", "RedisFaults", "find_redis_server"]
