from __future__ import annotations

from harness.bench.cost import redis_cpu_s, spent
from harness.providers import LocalRedis


def test_spent_is_none_when_a_reading_is_missing_or_the_server_restarted() -> None:
    assert spent(1.0, 3.5) == 2.5
    assert spent(None, 3.0) is None and spent(1.0, None) is None
    assert spent(5.0, 0.1) is None  # counters reset: a restart between the readings


async def test_the_server_reports_its_cpu_time(redis_server: LocalRedis) -> None:
    used = await redis_cpu_s(redis_server.url)
    assert used is not None and used >= 0
    assert await redis_cpu_s("redis://127.0.0.1:1/0") is None  # nobody there: no figure, no crash
