"""What a run cost in CPU: the server's side, read from Redis itself (INFO cpu).

With the agents' own CPU time (journals/*.stats.json) this gives CPU per completed task,
a figure that noisy neighbours barely move: they take wall-clock time from a run, not
CPU time from its processes. A queue that does more work per task (another round
trip, a heavier script) shows it here however busy the machine was.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import RedisError


async def redis_cpu_s(url: str) -> float | None:
    """CPU seconds (user + system) the server has used since it started; None when it cannot be asked."""
    client = aioredis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
    try:
        info = await client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    except (RedisError, OSError, KeyError, ValueError):
        return None
    finally:
        await client.aclose()


def spent(start: float | None, end: float | None) -> float | None:
    """CPU seconds between two readings; None when either is missing or the server restarted between them."""
    if start is None or end is None or end < start:
        return None
    return round(end - start, 3)
