"""What a run cost in CPU: the server's side, read from Redis itself (INFO cpu).

With the agents' own CPU time (journals/*.stats.json) this gives CPU per completed task,
a figure that noisy neighbours barely move: they take wall-clock time from a run, not
CPU time from its processes. A queue that does more work per task (another round
trip, a heavier script) shows it here however busy the machine was.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from taskq.connection import close_redis, open_redis
from taskq.errors import TaskqError


async def redis_cpu_s(url: str) -> float | None:
    """CPU seconds (user + system) the server has used since it started; None when it cannot be asked.
    For a cluster, all its nodes together; for a Sentinel URL, the primary's (a failover resets it)."""
    try:
        client = open_redis(url, socket_timeout_s=2.0)
    except TaskqError:
        return None
    try:
        if isinstance(client, RedisCluster):
            found: Any = await client.info("cpu", target_nodes=RedisCluster.ALL_NODES)
            infos = list(found.values()) if found and isinstance(next(iter(found.values())), dict) else [found]
        else:
            infos = [await client.info("cpu")]
        return sum(float(info["used_cpu_user"]) + float(info["used_cpu_sys"]) for info in infos)
    except (RedisError, OSError, KeyError, ValueError, TypeError, StopIteration):
        return None
    finally:
        await close_redis(client)


def spent(start: float | None, end: float | None) -> float | None:
    """CPU seconds between two readings; None when either is missing or the server restarted between them."""
    if start is None or end is None or end < start:
        return None
    return round(end - start, 3)
