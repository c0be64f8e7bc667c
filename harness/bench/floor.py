"""The machine's own latency floor, on a redis-server on loopback, paced.

No queue can deliver a task faster than one round trip from the producer plus the
wake-up of the consumer, so these floors, measured on the same machine, say what a
latency benchmark's figures can be held to:

- ping: redis-py PING round trips from one process;
- hop: one process XADDs its clock reading, another, blocked in XREADGROUP, takes the
  difference when the entry arrives: the enqueue-to-start of a queue that does nothing
  but the two Redis commands, between two Python processes (CLOCK_MONOTONIC is shared).

On a quiet machine both take a fraction of a millisecond; on a shared one their tails
are the neighbours' CPU time.

    python -m harness.bench.floor [--seconds S] [--rate R] [--redis URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import redis.asyncio as aioredis
from hdrh.histogram import HdrHistogram

from harness.agents.common import URL_ENV
from harness.agents.pacer import Pacer
from harness.providers.local import url_or_fresh_server

PERCENTILES = (50.0, 90.0, 99.0, 99.9)
HOP_GROUP = "floor"


def _figures(histogram: HdrHistogram) -> dict[str, float]:
    """Percentiles in ms of a histogram of microseconds."""
    figures = {f"p{p:g}": histogram.get_value_at_percentile(p) / 1000 for p in PERCENTILES}
    figures["max"] = histogram.get_max_value() / 1000
    return figures


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
    with url_or_fresh_server(url) as target:
        return _figures(asyncio.run(_pings(target, seconds, rate)))


async def _hop_consumer(url: str, stream: str, count: int) -> None:
    """The receiving process: prints "ready" once blocked-read capable, then the figures as JSON."""
    histogram = HdrHistogram(1, 60_000_000, 3)
    redis = aioredis.Redis.from_url(url, socket_timeout=None)
    await redis.xgroup_create(stream, HOP_GROUP, id="$", mkstream=True)
    print("ready", flush=True)
    received = 0
    while received < count:
        reply: Any = await redis.xreadgroup(HOP_GROUP, "c", {stream: ">"}, count=100, block=2000)
        arrived = time.monotonic_ns()
        if not reply:
            break  # the sender is gone
        for _, entries in reply:
            for _, fields in entries:
                histogram.record_value(max(1, (arrived - int(fields[b"t"])) // 1000))
                received += 1
    await redis.aclose()
    print(json.dumps(_figures(histogram)), flush=True)


async def _hop_sender(url: str, stream: str, count: int, rate: float) -> None:
    redis = aioredis.Redis.from_url(url)
    pacer = Pacer()
    try:
        interval_ns = int(1e9 / rate)
        start = time.monotonic_ns()
        for n in range(count):
            await pacer.until(start + n * interval_ns)
            await redis.xadd(stream, {"t": str(time.monotonic_ns())})
    finally:
        pacer.close()
        await redis.aclose()


def hop_floor(url: str | None = None, *, seconds: float = 5.0, rate: float = 200.0) -> dict[str, float]:
    """Sender-to-receiver percentiles in ms of `rate` XADDs a second between two processes."""
    count = int(seconds * rate)
    stream = f"floor:{uuid.uuid4().hex[:8]}"
    with url_or_fresh_server(url) as target:
        receiver = subprocess.Popen(
            [sys.executable, "-m", "harness.bench.floor", "--hop-receiver", stream, str(count)],
            stdout=subprocess.PIPE, text=True, env={**os.environ, URL_ENV: target},
        )  # fmt: skip
        try:
            assert receiver.stdout is not None
            if receiver.stdout.readline().strip() != "ready":
                raise RuntimeError("the hop receiver did not start")
            asyncio.run(_hop_sender(target, stream, count, rate))
            figures: dict[str, float] = json.loads(receiver.communicate(timeout=30)[0])
            return figures
        finally:
            if receiver.poll() is None:
                receiver.kill()


def main() -> None:
    if sys.argv[1:2] == ["--hop-receiver"]:
        stream, count = sys.argv[2:4]
        asyncio.run(_hop_consumer(os.environ[URL_ENV], stream, int(count)))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=2000.0, help="PINGs per second, paced (hops: a tenth)")
    parser.add_argument("--redis", default=None, help="a URL (default: a fresh local redis-server)")
    args = parser.parse_args()
    for what, figures in (
        ("redis-py PING round trip", ping_floor(args.redis, seconds=args.seconds, rate=args.rate)),
        ("XADD to XREADGROUP, two processes", hop_floor(args.redis, seconds=args.seconds, rate=args.rate / 10)),
    ):
        shown = ", ".join(f"{k} {v:.3f}" for k, v in figures.items())
        print(f"{what} on this machine (ms): {shown}")


if __name__ == "__main__":
    main()
