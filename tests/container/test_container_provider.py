"""Redis in a container (harness/providers/container.py) on an image built from this host's
redis-server (harness/providers/image.py): the faults where they apply, and a harness run on it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness.errors import SetupError
from harness.providers.container import ContainerRedis
from harness.providers.image import docker_client, redis_version, shared_libraries
from harness.providers.local import find_redis_server

pytestmark = [pytest.mark.container, pytest.mark.usefixtures("docker_engine")]
REPO = Path(__file__).resolve().parents[2]
TEST_IMAGE = "taskq-harness/redis:test"


def harness(*args: str, timeout_s: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout_s,
        check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def image() -> str:
    done = harness("image", "build", "--tag", TEST_IMAGE)
    assert done.returncode == 0, done.stderr
    assert TEST_IMAGE in done.stdout
    return TEST_IMAGE


@pytest.fixture
def container(image: str, tmp_path: Path) -> Iterator[ContainerRedis]:
    provider = ContainerRedis(tmp_path, image, "aof-always")
    provider.start()
    yield provider
    provider.stop()


def client(url: str, timeout_s: float = 2.0) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0))


def test_the_image_holds_the_hosts_redis_server(image: str) -> None:
    with closing(docker_client()) as docker:
        labels = docker.images.get(image).labels
    assert labels["org.taskq.redis-version"] == redis_version(find_redis_server())
    assert any("libc.so" in library for library in shared_libraries(find_redis_server()))


def test_published_on_loopback_only_and_killed_and_restarted_with_its_data(container: ContainerRedis) -> None:
    with closing(docker_client()) as docker:
        ports = docker.api.inspect_container(container._wrapped().id)["HostConfig"]["PortBindings"]
    assert ports["6379/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(container.port)}]
    with client(container.url) as c:
        c.set("k", "v")
    url = container.url
    container.kill()
    with pytest.raises(redis.exceptions.ConnectionError), client(url) as c:
        c.ping()
    container.restart()
    assert container.url == url
    with client(url) as c:
        assert c.get("k") == b"v"  # AOF always, same container: the write survived the SIGKILL
    assert container.describe()["redis_version"] == redis_version(find_redis_server())


def test_paused_and_resumed(container: ContainerRedis) -> None:
    container.pause()
    try:
        with pytest.raises(redis.exceptions.TimeoutError), client(container.url, timeout_s=0.3) as c:
            c.ping()
    finally:
        container.resume()
    with client(container.url) as c:
        assert c.ping()


def test_cut_off_all_clients_and_healed(container: ContainerRedis) -> None:
    with pytest.raises(SetupError, match="all clients"):
        container.cut(["consumer"])
    container.cut(["producer", "consumer"])
    with pytest.raises(redis.exceptions.ConnectionError), client(container.url, timeout_s=0.5) as c:
        c.ping()
    container.heal()
    deadline = time.monotonic() + 10
    while True:
        try:
            with client(container.url) as c:
                assert c.ping()
            break
        except redis.exceptions.ConnectionError:
            assert time.monotonic() < deadline, "the container did not come back after docker network connect"
            time.sleep(0.1)


@pytest.mark.slow
def test_a_redis_crash_scenario_on_a_container(image: str, tmp_path: Path) -> None:
    done = harness(
        "run", "redis_crash_aof_always", "--redis", f"container:{image}", "--duration", "5", "--seed", "3",
        "--out", str(tmp_path),
    )  # fmt: skip
    [verdict_file] = tmp_path.glob("*/verdict.json")
    verdict = json.loads(verdict_file.read_text())
    assert (done.returncode, verdict["valid"]) == (0, True), done.stderr[-3000:]
    assert verdict["redis"]["provider"] == "container"
    assert verdict["faults"]["applied"] >= 1


def test_a_partition_of_some_clients_is_refused_before_the_run(image: str, tmp_path: Path) -> None:
    done = harness(
        "run", "partition_consumers", "--redis", f"container:{image}", "--duration", "2", "--out", str(tmp_path)
    )
    assert done.returncode == 2
    assert "can only be cut off from all clients" in done.stderr
