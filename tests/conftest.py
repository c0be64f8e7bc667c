"""Fixtures shared by every test: a real redis-server and a fresh queue name per test; and, in CI,
no silent skips of the tests that need more than Python.

Tests marked `root` (network namespaces, iptables), `container` (a Docker engine) or `tls` (a
redis-server built with TLS, and openssl) skip where the machine lacks what they need. Locally that
is a skip with its reason. Under CI=true it is a failure, unless the machine truly cannot run them:
not root, no docker binary (none could be installed), a redis-server built without TLS. Anything
else (iptables missing, a Docker engine that did not start, openssl missing) is what `.ci/run`
installs and starts before the tests, so its absence is a broken CI, not a pass.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.errors import SetupError
from harness.providers.local import LocalRedis, RedisConfig, find_redis_server
from taskq import TaskQueue

IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@functools.cache
def redis_server_speaks_tls() -> bool:
    """Whether this redis-server was built with TLS: one without it refuses the tls-port directive."""
    try:
        binary = find_redis_server()
    except SetupError:
        return False
    done = subprocess.run([binary, "--port", "0", "--tls-port", "0", "--save", ""], capture_output=True, text=True,
                          timeout=10, check=False)  # fmt: skip
    return "Bad directive" not in done.stdout + done.stderr


def _cannot_run_root() -> str:
    return "" if os.geteuid() == 0 else "not root"


def _cannot_run_container() -> str:
    return "" if shutil.which("docker") else "no docker binary on this machine (.ci/run could not install docker.io)"


def _cannot_run_tls() -> str:
    return "" if redis_server_speaks_tls() else "this redis-server was built without TLS"


# Per marker: why this machine truly cannot run such a test ("" when it can), and what provides it.
MACHINE_LIMITS: dict[str, tuple[Callable[[], str], str]] = {
    "root": (_cannot_run_root, "iproute2 and iptables (apt-get install -y iproute2 iptables)"),
    "container": (_cannot_run_container, "a running Docker engine (.ci/run installs docker.io and starts dockerd)"),
    "tls": (_cannot_run_tls, "openssl and a TLS-enabled redis-server (apt-get install -y openssl redis-server)"),
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "tls: needs a redis-server built with TLS, and openssl")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """Under CI=true, a root, container or TLS test that skipped on a machine that can run it fails."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        failure = ci_skip_failure(item, _skip_reason(report))
        if failure:
            report.outcome = "failed"
            report.longrepr = failure


def ci_skip_failure(item: pytest.Item, reason: str) -> str:
    """The failure message for a CI skip of a marked test this machine can run, or "" to keep the skip."""
    for marker, (cannot, needs) in MACHINE_LIMITS.items():
        if item.get_closest_marker(marker) is None:
            continue
        why_not = cannot()
        if why_not:
            return ""
        return (
            f"CI=true: this {marker} test skipped ({reason}), but this machine can run it: it needs {needs}. "
            "Install or start that before the tests (.ci/run does), or run without CI=true to allow the skip."
        )
    return ""


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def start_redis(workdir: Path, config: RedisConfig | None = None) -> LocalRedis:
    """Start a redis-server for a test, or fail with how to install it."""
    try:
        find_redis_server()
    except SetupError as exc:
        pytest.fail(str(exc), pytrace=False)
    server = LocalRedis(workdir, config)
    server.start()
    return server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedis]:
    """One server for the session; tests stay apart through unique queue names."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[LocalRedis]:
    """A server of the test's own, for tests that kill, restart, pause or flush it."""
    server = start_redis(tmp_path / "redis")
    yield server
    server.stop()


@pytest.fixture
def queue_name() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


QueueFactory = Callable[..., TaskQueue]


@pytest.fixture
async def make_queue(redis_server: LocalRedis, queue_name: str) -> AsyncIterator[QueueFactory]:
    """Builds connected queues on the session server (same name unless overridden); closes them after."""
    made: list[TaskQueue] = []

    def make(url: str | None = None, **options: Any) -> TaskQueue:
        options.setdefault("name", queue_name)
        options.setdefault("pending_timeout", 0.5)
        options.setdefault("retry_base_delay", 0)
        queue = TaskQueue(url or redis_server.url, **options)
        made.append(queue)
        return queue

    yield make
    for queue in made:
        await queue.disconnect()


@pytest.fixture
async def queue(make_queue: QueueFactory) -> TaskQueue:
    made = make_queue()
    await made.connect()
    return made
