"""Bad topology input gets one clear line: an unreachable or half-formed cluster, an unreachable Sentinel, a
Sentinel URL naming a plain server, a plain URL naming a cluster node, a server older than Redis 7 (to taskq
and to the harness), and a scenario whose faults the chosen topology cannot take."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from harness.providers.cluster import cluster_port
from harness.providers.local import LocalRedis, RedisConfig
from taskq import ConfigError, RedisUnavailable, TaskQueue
from taskq.connection import topology_of

REPO = Path(__file__).resolve().parents[2]


def cli(program: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", program, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
        env=dict(os.environ), check=False,
    )  # fmt: skip


def assert_one_line(done: subprocess.CompletedProcess[str], prefix: str, *fragments: str) -> None:
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(prefix), done.stderr
    for fragment in fragments:
        assert fragment in last, last
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+sentinel://127.0.0.1:1/", "must name the Sentinel service"),
        ("redis+sentinel://127.0.0.1:1/a/b/c", "must name the Sentinel service"),
        ("redis+sentinel://127.0.0.1/taskq", "is not host:port"),
        ("redis+cluster:///", "names no host"),
        ("redis+cluster://127.0.0.1:7000/0", "a cluster URL has no path"),
    ],
)
def test_malformed_topology_urls_say_what_a_url_looks_like(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        topology_of(url)


def test_a_sentinel_url_keeps_the_service_db_and_logins() -> None:
    found = topology_of("redis+sentinel://app:s3cret@10.0.0.1:26379,10.0.0.2:26380/mymaster/3?sentinel_password=x")
    assert found is not None
    assert (found.kind, found.service, found.db, found.hosts) == (
        "sentinel", "mymaster", 3, (("10.0.0.1", 26379), ("10.0.0.2", 26380)),
    )  # fmt: skip
    assert (found.username, found.password, found.sentinel_auth) == ("app", "s3cret", {"password": "x"})


async def test_unreachable_sentinels_fail_fast_naming_them() -> None:
    queue = TaskQueue("redis+sentinel://127.0.0.1:1,127.0.0.1:2/taskq", socket_timeout_s=2.0)
    with pytest.raises(RedisUnavailable, match=r"check that the Sentinels at 127\.0\.0\.1:1, 127\.0\.0\.1:2 run"):
        await queue.connect()


async def test_a_sentinel_url_naming_a_plain_server_says_so(redis_server: LocalRedis) -> None:
    queue = TaskQueue(f"redis+sentinel://127.0.0.1:{redis_server.port}/taskq", socket_timeout_s=2.0)
    with pytest.raises(ConfigError, match="not a Sentinel"):
        await queue.connect()


async def test_an_unreachable_cluster_fails_fast() -> None:
    queue = TaskQueue("redis+cluster://127.0.0.1:1/", socket_timeout_s=2.0)
    with pytest.raises(RedisUnavailable, match="cluster is fully formed"):
        await queue.connect()


@pytest.fixture
def lone_cluster_node(tmp_path: Path) -> LocalRedis:
    """A node started in cluster mode that never joined a cluster: no slot is served."""
    args = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
    server = LocalRedis(tmp_path, RedisConfig(extra_args=args), port=cluster_port())
    server.start()
    return server


@pytest.fixture
async def half_formed(lone_cluster_node: LocalRedis) -> AsyncIterator[LocalRedis]:
    yield lone_cluster_node
    lone_cluster_node.stop()


async def test_a_half_formed_cluster_says_to_check_it(half_formed: LocalRedis) -> None:
    queue = TaskQueue(f"redis+cluster://127.0.0.1:{half_formed.port}/", socket_timeout_s=2.0)
    with pytest.raises(RedisUnavailable, match=r"redis-cli --cluster check"):
        await queue.connect()
    await queue.disconnect()


async def test_a_plain_url_naming_a_cluster_node_says_to_use_redis_cluster(half_formed: LocalRedis) -> None:
    queue = TaskQueue(half_formed.url, socket_timeout_s=2.0)
    with pytest.raises(ConfigError, match=r"is a Redis Cluster node .* use redis\+cluster://"):
        await queue.connect()


async def fake_old_redis(version: str) -> asyncio.Server:
    """A server that speaks just enough RESP to say it is Redis `version` (INFO) and OK to anything else."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            if not line.startswith(b"*"):
                continue
            words = [await _bulk(reader) for _ in range(int(line[1:]))]
            if words and words[0].upper() == b"INFO":
                body = f"# Server\r\nredis_version:{version}\r\nrun_id:x\r\n".encode()
                writer.write(b"$%d\r\n%s\r\n" % (len(body), body))
            else:
                writer.write(b"+OK\r\n")
            await writer.drain()
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


async def _bulk(reader: asyncio.StreamReader) -> bytes:
    size = int((await reader.readline())[1:])
    return (await reader.readexactly(size + 2))[:-2]


async def test_a_server_older_than_redis_7_is_refused_naming_both_versions() -> None:
    server = await fake_old_redis("6.2.6")
    port = server.sockets[0].getsockname()[1]
    try:
        queue = TaskQueue(f"redis://127.0.0.1:{port}/0", socket_timeout_s=2.0)
        with pytest.raises(ConfigError, match=r"is version 6\.2\.6, but taskq needs Redis 7\.0 or later"):
            await queue.connect()
    finally:
        server.close()
        await server.wait_closed()


def test_taskq_cli_gives_one_line_for_unreachable_sentinels() -> None:
    done = cli("taskq", "stats", "--redis", "redis+sentinel://127.0.0.1:1/taskq")
    assert_one_line(done, "taskq: ", "cannot reach Redis at redis+sentinel://127.0.0.1:1/taskq")


def test_harness_refuses_topology_faults_on_one_server(tmp_path: Path) -> None:
    done = cli("harness", "run", "sentinel_failover", "--duration", "1", "--out", str(tmp_path))
    assert_one_line(done, "harness: ", "topology faults (failover)", "--redis replicated[:N] or --redis cluster")


def test_harness_refuses_a_split_brain_on_a_cluster(tmp_path: Path) -> None:
    done = cli("harness", "run", "sentinel_partition", "--redis", "cluster", "--duration", "1", "--out", str(tmp_path))
    assert_one_line(done, "harness: ", "(split-brain)", "use --redis replicated[:N]")


def test_harness_names_the_version_of_an_old_binary(tmp_path: Path) -> None:
    old = tmp_path / "redis-server"
    old.write_text("#!/bin/sh\necho 'Redis server v=6.0.16 sha=00000000:0 malloc=jemalloc-5.1.0 bits=64'\n")
    old.chmod(old.stat().st_mode | stat.S_IEXEC)
    done = cli("harness", "run", "steady", "--redis", f"replicated:{old}", "--out", str(tmp_path / "runs"))
    assert_one_line(done, "harness: ", "is Redis 6.0.16, but taskq needs Redis 7.0.0 or later")
    done = cli("harness", "run", "steady", "--redis", "local:/no/such/valkey-server", "--out", str(tmp_path / "runs"))
    assert_one_line(done, "harness: ", "/no/such/valkey-server is not an executable file")
