"""The latency floors a benchmark is held to: both measure something real on a real server."""

from __future__ import annotations

from harness.bench.floor import hop_floor, ping_floor
from harness.providers.local import LocalRedis


def test_ping_and_hop_floors_report_ordered_percentiles(redis_server: LocalRedis) -> None:
    for figures in (ping_floor(redis_server.url, seconds=0.3, rate=500), hop_floor(redis_server.url, seconds=0.5)):
        assert list(figures) == ["p50", "p90", "p99", "p99.9", "max"]
        values = list(figures.values())
        assert 0 < values[0] <= values[-1] < 1000, figures
        assert values == sorted(values), figures
