"""Network faults (harness/nemesis/network.py): routes of the agents to Redis, proxy faults switched on and
off by their handlers, and partitions of a redis-server in a network namespace (root only)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness.errors import SetupError
from harness.fleet import Fleet
from harness.history import Journal, Op, read_journal
from harness.nemesis import FAULTS, FaultContext
from harness.nemesis.network import PROXY_FAULTS, AgentRoutes, needs_namespace, open_routes
from harness.plan import FaultEvent, Plan, make_plan
from harness.providers.external import ExternalRedis
from harness.providers.local import LocalRedis
from harness.providers.netns import NetnsRedis, partition_unavailable
from harness.proxy import HEALTHY
from harness.scenario import load_scenario
from tests.integration.workers import eventually


def plan_for(scenario: str, redis_spec: str = "local") -> Plan:
    return make_plan(load_scenario(scenario), seed=1, queue="taskq", redis=redis_spec, queue_name="q")


async def _completed() -> int:
    return 0


async def strike(
    provider: Any, routes: AgentRoutes, kind: str, target: str, folder: Path, duration_s: float
) -> list[Op]:
    path = folder / f"nemesis-{kind}-{time.monotonic_ns()}.jsonl"
    fleet = Fleet(folder, folder / "plan.json", provider.url, urls=routes.urls, proxy=routes.proxy)
    with Journal(path) as journal:
        ctx = FaultContext(fleet=fleet, journal=journal, provider=provider, plan=plan_for("steady"),
                           completed=_completed)  # fmt: skip
        event = FaultEvent(kind=kind, target=target, duration_s=duration_s, at_s=0.0)
        await asyncio.wait_for(FAULTS[kind](ctx, event, "nemesis-0"), timeout=30)
    return read_journal(path)


def client(url: str, timeout_s: float = 1.0) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0)
    )


def test_agents_go_straight_to_redis_without_network_faults(redis_server: LocalRedis) -> None:
    routes = open_routes(plan_for("kill_workers"), redis_server)
    assert routes.proxy is None
    assert routes.urls == {"producer": redis_server.url, "consumer": redis_server.url}


def test_proxy_faults_give_each_role_a_route_of_its_own(redis_server: LocalRedis) -> None:
    routes = open_routes(plan_for("latency_spikes"), redis_server)
    try:
        assert routes.proxy is not None
        assert routes.urls["producer"] != routes.urls["consumer"]
        for role, url in routes.urls.items():
            assert url.startswith("redis://127.0.0.1:")
            assert url.endswith(f":{routes.proxy.address(role)[1]}/0")
            with client(url) as c:
                assert c.ping()
    finally:
        routes.close()


def test_partition_and_proxy_faults_need_a_server_that_allows_them(redis_server: LocalRedis) -> None:
    with pytest.raises(SetupError, match="cannot make: use --redis local \\(as root"):
        open_routes(plan_for("partition_consumers"), redis_server)
    assert needs_namespace(plan_for("partition_consumers"))
    assert not needs_namespace(plan_for("partition_consumers", "container"))
    with pytest.raises(SetupError, match="TCP Redis URL"):
        open_routes(plan_for("latency_spikes", "unix:///tmp/redis.sock"), ExternalRedis("unix:///tmp/redis.sock"))


@pytest.mark.parametrize(("kind", "target"), [("latency", "consumers"), ("slow-replies", "producers")])
async def test_a_proxy_fault_hits_its_target_only_and_heals(
    redis_server: LocalRedis, tmp_path: Path, kind: str, target: str
) -> None:
    routes = open_routes(plan_for("dropped_replies"), redis_server)
    assert routes.proxy is not None
    hit, spared = ("consumer", "producer") if target == "consumers" else ("producer", "consumer")
    try:
        task = asyncio.create_task(strike(redis_server, routes, kind, target, tmp_path, duration_s=0.5))
        proxy = routes.proxy

        async def in_effect() -> bool:
            return bool(proxy.faults(hit) == PROXY_FAULTS[kind])

        await eventually(in_effect, timeout_s=5, what=f"{kind} applied to the {hit}s")
        assert routes.proxy.faults(spared) == HEALTHY
        ops = await task
        assert [op["type"] for op in ops] == ["invoke", "ok"]
        assert {routes.proxy.faults(role) for role in ("producer", "consumer")} == {HEALTHY}
    finally:
        routes.close()


async def test_a_reset_cuts_what_is_open(redis_server: LocalRedis, tmp_path: Path) -> None:
    routes = open_routes(plan_for("connection_resets"), redis_server)
    try:
        with client(routes.urls["consumer"]) as c:
            c.ping()
            ops = await strike(redis_server, routes, "reset", "all", tmp_path, duration_s=0.1)
        assert ops[1]["value"] == {"reset": 1}
    finally:
        routes.close()


async def test_a_proxy_fault_without_a_proxy_is_journaled_as_not_applied(
    redis_server: LocalRedis, tmp_path: Path
) -> None:
    ops = await strike(redis_server, AgentRoutes({}), "blackhole", "all", tmp_path, duration_s=0.1)
    assert [op["type"] for op in ops] == ["invoke", "info"]


def test_without_root_a_partition_is_refused_with_the_reason(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert "need root" in partition_unavailable()
    with pytest.raises(SetupError, match="run as root \\(sudo\\), or choose a scenario without partition faults"):
        NetnsRedis(tmp_path).start()


# -- partitions: root only --------------------------------------------------------------------


@pytest.fixture
def namespaced(tmp_path: Path) -> Iterator[NetnsRedis]:
    why = partition_unavailable()
    if why:
        pytest.skip(why)
    server = NetnsRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    assert server.namespace not in listed, "stop() left the namespace behind"


@pytest.mark.root
def test_a_namespaced_server_listens_on_its_own_addresses_only(namespaced: NetnsRedis) -> None:
    hosts = {
        url.split("//")[1].split(":")[0] for url in (namespaced.url, *map(namespaced.url_for, ("producer", "consumer")))
    }
    assert len(hosts) == 3
    assert all(host.startswith("10.213.") for host in hosts)
    with pytest.raises(redis.exceptions.ConnectionError), client(f"redis://127.0.0.1:{namespaced.port}/0") as c:
        c.ping()


@pytest.mark.root
async def test_a_partition_cuts_the_target_off_and_heals(namespaced: NetnsRedis, tmp_path: Path) -> None:
    routes = open_routes(plan_for("partition_consumers"), namespaced)
    task = asyncio.create_task(strike(namespaced, routes, "partition", "consumers", tmp_path, duration_s=2.0))
    cut = (redis.exceptions.TimeoutError, redis.exceptions.ConnectionError)

    async def consumers_cut_off() -> bool:
        try:
            with client(routes.urls["consumer"], timeout_s=0.3) as consumer:
                await asyncio.to_thread(consumer.ping)
        except cut:
            return True
        return False

    await eventually(consumers_cut_off, timeout_s=1.5, what="the consumers' route cut")
    for url in (routes.urls["producer"], namespaced.url):  # producers and the runner's own are not cut
        with client(url) as other:
            assert await asyncio.to_thread(other.ping)
    ops = await task
    assert [op["type"] for op in ops] == ["invoke", "ok"]
    assert namespaced.cut_roles == frozenset()
    with client(routes.urls["consumer"]) as consumer:
        assert consumer.ping()


@pytest.mark.root
def test_a_namespaced_server_is_killed_and_restarted_in_place(namespaced: NetnsRedis) -> None:
    with client(namespaced.url) as c:
        c.set("k", "v")
    namespaced.kill()
    namespaced.restart()
    with client(namespaced.url) as c:
        assert c.ping()
