"""The fault proxy against a real redis-server: what each fault does to a client, and that the
connection it leaves behind never hands a client someone else's reply."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness.errors import SetupError
from harness.providers.local import LocalRedis
from harness.proxy import FaultProxy, ProxyFaults

TIMEOUT_S = 0.5


@pytest.fixture
def proxy(redis_server: LocalRedis) -> Iterator[FaultProxy]:
    upstream = ("127.0.0.1", redis_server.port)
    with FaultProxy({"producer": upstream, "consumer": upstream}, seed=1) as running:
        yield running


def client(proxy: FaultProxy, route: str = "consumer", timeout_s: float = TIMEOUT_S) -> redis.Redis:
    host, port = proxy.address(route)
    return redis.Redis(host=host, port=port, socket_timeout=timeout_s, retry=Retry(NoBackoff(), 0))


@pytest.fixture
def key() -> str:
    return f"proxy-test-{uuid.uuid4().hex[:8]}"


def test_listens_on_loopback_and_passes_traffic(proxy: FaultProxy, key: str) -> None:
    assert {proxy.address(route)[0] for route in proxy.routes} == {"127.0.0.1"}
    with client(proxy) as c:
        c.set(key, "v")
        assert c.get(key) == b"v"
    assert proxy.counts["connections"] >= 1


def test_latency_delays_every_round_trip_and_keeps_order(proxy: FaultProxy, key: str) -> None:
    proxy.set_faults(ProxyFaults(latency_ms=30, jitter_ms=40), ["consumer"])
    with client(proxy, timeout_s=5) as c:
        started = time.monotonic()
        c.ping()
        assert time.monotonic() - started >= 0.06  # 30 ms each way at least
        pipe = c.pipeline(transaction=False)
        for _ in range(200):
            pipe.incr(key)
        assert pipe.execute() == list(range(1, 201))  # jitter never reorders a connection's bytes
    with client(proxy, "producer") as other:
        started = time.monotonic()
        other.ping()
        assert time.monotonic() - started < 0.03  # the other route is untouched


def test_a_reply_held_past_the_timeout_ran_and_never_reaches_the_next_command(proxy: FaultProxy, key: str) -> None:
    with client(proxy) as c:
        c.set(key, "before")
        proxy.set_faults(ProxyFaults(reply_delay_ms=1500))
        with pytest.raises(redis.exceptions.TimeoutError):
            c.set(key, "during")
        proxy.heal()
        time.sleep(1.2)  # the held reply is now due: it must not be read as the next command's
        assert c.get(key) == b"during"  # the command ran; the client only lost its answer
        assert c.echo("mine") == b"mine"


def test_dropped_replies_leave_the_connection_silent(proxy: FaultProxy, key: str) -> None:
    with client(proxy) as c:
        c.ping()  # connected (a new connection's handshake would lose its reply first)
        proxy.set_faults(ProxyFaults(drop_replies=1.0))
        with pytest.raises(redis.exceptions.TimeoutError):
            c.set(key, "dropped")
        proxy.heal()
        assert c.get(key) == b"dropped"  # a new connection: the write had happened
    assert proxy.counts["dropped_chunks"] >= 1


def test_a_black_hole_passes_nothing_either_way(proxy: FaultProxy, key: str) -> None:
    with client(proxy) as c:
        c.ping()
        proxy.set_faults(ProxyFaults(blackhole=True))
        with pytest.raises(redis.exceptions.TimeoutError):
            c.set(key, "lost")
        proxy.heal()
        assert c.get(key) is None  # the request never reached Redis


def test_reset_cuts_open_connections_and_refuse_new_ones(proxy: FaultProxy, key: str) -> None:
    with client(proxy, timeout_s=5) as c:
        c.ping()
        proxy.set_faults(ProxyFaults(reply_delay_ms=3000), ["consumer"])
        resets: list[int] = []
        cut = threading.Timer(0.3, lambda: resets.append(proxy.reset(["consumer"])))
        cut.start()
        with pytest.raises(redis.exceptions.ConnectionError):
            c.ping()  # waiting for its reply when the connection is reset
        cut.join()
        assert resets == [1]
        proxy.set_faults(ProxyFaults(refuse=True), ["consumer"])
        with pytest.raises(redis.exceptions.ConnectionError):
            c.ping()
        proxy.heal()
        assert c.ping()


def test_redis_going_away_closes_the_client_side(tmp_path: object, key: str) -> None:
    server = LocalRedis(tmp_path / "redis")  # type: ignore[operator]
    server.start()
    try:
        with FaultProxy({"consumer": ("127.0.0.1", server.port)}) as proxy, client(proxy) as c:
            c.ping()
            server.kill()
            with pytest.raises(redis.exceptions.ConnectionError):
                c.ping()
            server.start()
            assert c.ping()
    finally:
        server.stop()


def test_misuse_says_what_to_do() -> None:
    with pytest.raises(SetupError, match="at least one route"):
        FaultProxy({})
    with pytest.raises(SetupError, match="probability"):
        ProxyFaults(drop_replies=2)
    with FaultProxy({"consumer": ("127.0.0.1", 1)}) as proxy:
        with pytest.raises(SetupError, match="no route 'producer'"):
            proxy.address("producer")
        with pytest.raises(SetupError, match="use \\['consumer'\\]"):
            proxy.set_faults(ProxyFaults(), ["nope"])
    with pytest.raises(SetupError, match="not running"):
        FaultProxy({"consumer": ("127.0.0.1", 1)}).reset()
