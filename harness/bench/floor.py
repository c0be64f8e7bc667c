"""The machine's own latency floor: PING round trips to a redis-server on loopback, paced.

No queue can deliver a task faster than one round trip from the producer plus the
wake-up of the consumer, so this floor, measured just before a latency benchmark on
the same machine, says what its figures can be held to. On a quiet machine a
redis-py PING takes a fraction of a millisecond; on a shared one its tail is the
neighbours' CPU time.

    python -m harness.bench.floor [--seconds S] [--rate R] [--redis URL]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis
from hdrh.histogram import HdrHistogram

from harness.agents.pacer import Pacer
from harness.providers import LocalRedis

PERCENTILES = (50.0, 90.0, 99.0, 99.9)


async def _pings(url: str, seconds: float, rate: float) -> HdrHistogram:
    histogram = HdrHistogram(1, 60_000_000, 3)
    redis = aioredis.Redis.from_url(url)
    pacer = Pacer()
    try:
        await redis.ping()
        interval_ns = int(1e9 / rate)
        start = time.monotonic_ns()
        for n in range(int(seconds * rate)):
            await pacer.until(start + n * interval_ns)
            sent = time.monotonic_ns()
            await redis.ping()
            histogram.record_value(max(1, (time.monotonic_ns() - sent) // 1000))
    finally:
        pacer.close()
        await redis.aclose()
    return histogram


def ping_floor(url: str | None = None, *, seconds: float = 3.0, rate: float = 2000.0) -> dict[str, float]:
    """PING round-trip percentiles in ms (a fresh local redis-server unless `url` is given)."""
    if url is not None:
        histogram = asyncio.run(_pings(url, seconds, rate))
    else:
        with tempfile.TemporaryDirectory() as folder:
            server = LocalRedis(Path(folder))
            server.start()
            try:
                histogram = asyncio.run(_pings(server.url, seconds, rate))
            finally:
                server.stop()
    figures = {f"p{p:g}": histogram.get_value_at_percentile(p) / 1000 for p in PERCENTILES}
    figures["max"] = histogram.get_max_value() / 1000
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=2000.0, help="PINGs per second, paced")
    parser.add_argument("--redis", default=None, help="a URL (default: a fresh local redis-server)")
    args = parser.parse_args()
    figures = ping_floor(args.redis, seconds=args.seconds, rate=args.rate)
    shown = ", ".join(f"{k} {v:.3f}" for k, v in figures.items())
    print(f"redis-py PING round trip on this machine (ms): {shown}")


if __name__ == "__main__":
    main()
