"""taskq against a Redis with a password, with an ACL user, and over TLS.

The least broad ACL rules taskq works with (APP_RULES below; found by removing one
command at a time, each removal breaks some operation):

    ~taskq:* resetchannels -@all
    +fcall                                      every transition is one Function call
    +info +function|list +function|load +xgroup|create    connect()
    +xlen +xrange                               DLQ reads outside Functions
    +time +type +exists +del +xadd +xreadgroup +xrange +xlen +xpending +xack +xdel
    +xclaim +zadd +zrange +zrangebyscore +zrem +zcard +hincrby +hgetall
                                                run inside the Functions, which Redis
                                                checks against the caller's ACL too

FUNCTION LOAD is the one server-wide permission: whoever has it can replace any
library. An application user can go without it (APP_RULES_WITHOUT_LOAD) when an
admin loads the library first: connect() only loads it when FUNCTION LIST shows
it missing or different. `~taskq:*` can narrow to one queue: `~taskq:{orders}:*`.

"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import SetupError
from harness.providers.local import LocalRedis, RedisConfig, TlsFiles
from taskq import ConfigError, Delivery, Outcome, RedisUnavailable, TaskqError, TaskQueue
from tests.conftest import redis_server_speaks_tls, start_redis
from tests.integration.workers import REPO, eventually

IN_FUNCTIONS = (
    "+time +type +exists +del +xadd +xreadgroup +xrange +xlen +xpending +xack +xdel +xclaim "
    "+zadd +zrange +zrangebyscore +zrem +zcard +hincrby +hgetall"
)
APP_RULES_WITHOUT_LOAD = f"~taskq:* resetchannels -@all +fcall +info +function|list +xgroup|create {IN_FUNCTIONS}"
APP_RULES = f"{APP_RULES_WITHOUT_LOAD} +function|load"
PASSWORD = "s3cret-Pa55"


def url_for(server: LocalRedis, user: str, password: str) -> str:
    scheme = "rediss" if server.config.tls else "redis"
    query = f"?ssl_ca_certs={server.config.tls.ca}" if server.config.tls else ""
    return f"{scheme}://{user}:{password}@127.0.0.1:{server.port}/0{query}"


async def read_one(queue: TaskQueue) -> Delivery:
    got: list[Delivery] = []

    async def delivered() -> bool:
        got.extend(await queue.read("w", block_ms=100))
        return bool(got)

    await eventually(delivered, timeout_s=5)
    [delivery] = got
    return delivery


async def full_cycle(url: str, name: str) -> None:
    """Add, read, ack; fail into the DLQ and requeue; stats: the whole API works."""
    async with TaskQueue(url, name=name, retry_base_delay=0) as queue:
        task_id = await queue.add_task("job", {"n": 1})
        [delivery] = await queue.read("w", block_ms=0)
        assert delivery.task.task_id == task_id and delivery.task.payload == {"n": 1}
        assert await queue.ack([delivery.receipt]) == [Outcome.DONE]

        await queue.add_task("job", {}, max_retries=0, delay_s=0.001)
        delivery = await read_one(queue)
        assert await queue.renew("w", [delivery.receipt]) == [Outcome.DONE]
        assert await queue.fail_task(delivery.receipt, "boom") is Outcome.DEAD
        [dead] = await queue.dlq.entries()
        assert await queue.dlq.get(dead.entry_id) == dead
        assert await queue.dlq.requeue() == 1
        [delivery] = await queue.read("w", block_ms=0)
        assert await queue.release("w", [delivery.receipt]) == [Outcome.DONE]
        assert await queue.reclaim("w") == []
        [delivery] = await queue.read("w", block_ms=0)
        await queue.complete_task(delivery.receipt)
        assert await queue.dlq.purge() == 0
        stats = await queue.stats()
        assert (stats.counters["tasks_completed"], stats.total_ready, stats.total_pending) == (2, 0, 0)


async def assert_login_refused(url: str, password: str) -> None:
    queue = TaskQueue(url, socket_timeout_s=5)
    with pytest.raises(RedisUnavailable) as caught:
        await queue.connect()
    message = str(caught.value)
    assert "refused the login" in message
    assert "check the user name and password in the URL" in message
    assert password not in message, "a password must never reach logs"
    with pytest.raises(TaskqError):
        queue.redis  # noqa: B018 - nothing left open


# -- password -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def password_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedis]:
    server = start_redis(tmp_path_factory.mktemp("redis-password"), RedisConfig(password=PASSWORD))
    yield server
    server.stop()


async def test_password_full_cycle(password_redis: LocalRedis, queue_name: str) -> None:
    assert PASSWORD in password_redis.url
    await full_cycle(password_redis.url, queue_name)


async def test_wrong_password_is_a_clear_error(password_redis: LocalRedis) -> None:
    await assert_login_refused(f"redis://:not-{PASSWORD}@127.0.0.1:{password_redis.port}/0", f"not-{PASSWORD}")


async def test_missing_password_is_a_clear_error(password_redis: LocalRedis) -> None:
    queue = TaskQueue(f"redis://127.0.0.1:{password_redis.port}/0")
    with pytest.raises(RedisUnavailable, match=r"refused the login.*check the user name and password"):
        await queue.connect()


# -- ACL users -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def acl_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedis]:
    users = (
        ("app", "app-pw", APP_RULES),
        ("broad", "broad-pw", "~taskq:* +@all"),
        ("noload", "noload-pw", APP_RULES_WITHOUT_LOAD),
        ("nopending", "nopending-pw", APP_RULES.replace(" +xpending", "")),
        ("otherkeys", "otherkeys-pw", APP_RULES.replace("~taskq:*", "~other:*")),
        ("admin", "admin-pw", "~* &* +@all"),
    )
    server = start_redis(tmp_path_factory.mktemp("redis-acl"), RedisConfig(acl_users=users))
    yield server
    server.stop()


async def flush_functions(server: LocalRedis) -> None:
    async with TaskQueue(url_for(server, "admin", "admin-pw"), name="admin") as admin:
        await admin.redis.function_flush()


async def test_acl_user_with_the_least_rules_full_cycle(acl_redis: LocalRedis, queue_name: str) -> None:
    await flush_functions(acl_redis)  # the app user loads the library itself
    await full_cycle(url_for(acl_redis, "app", "app-pw"), queue_name)


async def test_acl_user_with_all_commands_on_taskq_keys(acl_redis: LocalRedis, queue_name: str) -> None:
    await flush_functions(acl_redis)
    await full_cycle(url_for(acl_redis, "broad", "broad-pw"), queue_name)


async def test_acl_user_without_function_load_needs_an_admin_to_load_first(
    acl_redis: LocalRedis, queue_name: str
) -> None:
    await flush_functions(acl_redis)
    url = url_for(acl_redis, "noload", "noload-pw")
    with pytest.raises(
        ConfigError, match=r"may not run a command taskq needs \(.*'function\|load'.*load the Functions"
    ):
        await TaskQueue(url, name=queue_name).connect()
    async with TaskQueue(url_for(acl_redis, "admin", "admin-pw"), name=queue_name):
        pass  # the admin's connect loads the library
    await full_cycle(url, queue_name)


async def test_acl_user_missing_a_command_gets_an_error_not_a_silent_no_op(
    acl_redis: LocalRedis, queue_name: str
) -> None:
    async with TaskQueue(url_for(acl_redis, "nopending", "nopending-pw"), name=queue_name) as queue:
        await queue.add_task("job", {})
        [delivery] = await queue.read("w", block_ms=0)
        # Without XPENDING no lease can be checked: that must not read as "lease lost".
        with pytest.raises(TaskqError, match="can't run this command") as caught:
            await queue.ack([delivery.receipt])
        assert type(caught.value) is TaskqError
        with pytest.raises(TaskqError, match="can't run this command"):
            await queue.reclaim("w")


async def test_acl_user_without_the_queue_keys_is_a_clear_error(acl_redis: LocalRedis, queue_name: str) -> None:
    queue = TaskQueue(url_for(acl_redis, "otherkeys", "otherkeys-pw"), name=queue_name)
    with pytest.raises(ConfigError, match=r"may not run a command taskq needs.*grant it with ACL SETUSER"):
        await queue.connect()


async def test_acl_wrong_password_is_a_clear_error(acl_redis: LocalRedis) -> None:
    await assert_login_refused(url_for(acl_redis, "app", "wrong-app-pw"), "wrong-app-pw")


async def test_acl_unknown_user_is_a_clear_error(acl_redis: LocalRedis) -> None:
    await assert_login_refused(url_for(acl_redis, "nobody", "app-pw"), "app-pw")


# -- TLS ---------------------------------------------------------------------------------------


def make_tls_files(folder: Path) -> TlsFiles:
    """A throwaway CA, and a server certificate it signed for IP 127.0.0.1."""
    folder.mkdir(parents=True, exist_ok=True)
    ec_key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True, timeout=30)

    openssl("req", "-x509", *ec_key, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=taskq test CA")
    openssl("req", *ec_key, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (folder / "server.ext").write_text(
        "subjectAltName = IP:127.0.0.1\nbasicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth\n"
    )
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "server.ext",
    )  # fmt: skip
    return TlsFiles(cert=folder / "server.crt", key=folder / "server.key", ca=folder / "ca.crt")


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedis]:
    """A TLS server. Skips only for what the machine lacks (under CI=true a skip fails: tests/conftest.py);
    any other setup error (a certificate problem, a server that would not start) is an error."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (sudo apt-get install -y openssl)")
    if not redis_server_speaks_tls():
        pytest.skip("this redis-server was built without TLS (it refuses the tls-port directive)")
    folder = tmp_path_factory.mktemp("redis-tls")
    config = RedisConfig(password=PASSWORD, tls=make_tls_files(folder / "certs"))
    server = LocalRedis(folder / "redis", config)
    try:
        server.start()
    except SetupError:
        server.stop()
        raise
    yield server
    server.stop()


@pytest.mark.tls
async def test_tls_full_cycle(tls_redis: LocalRedis, queue_name: str) -> None:
    assert tls_redis.url.startswith("rediss://")
    await full_cycle(tls_redis.url, queue_name)


@pytest.mark.tls
async def test_tls_wrong_password_is_a_clear_error(tls_redis: LocalRedis) -> None:
    url = tls_redis.url.replace(f":{PASSWORD}@", ":wrong-tls-pw@")
    await assert_login_refused(url, "wrong-tls-pw")


@pytest.mark.tls
async def test_tls_server_not_trusted_is_a_clear_error(tls_redis: LocalRedis) -> None:
    queue = TaskQueue(f"rediss://:{PASSWORD}@127.0.0.1:{tls_redis.port}/0", socket_timeout_s=5)  # no CA given
    with pytest.raises(RedisUnavailable, match="CERTIFICATE_VERIFY_FAILED") as caught:
        await queue.connect()
    assert PASSWORD not in str(caught.value)


@pytest.mark.tls
async def test_plain_connection_to_a_tls_port_fails_fast(tls_redis: LocalRedis) -> None:
    queue = TaskQueue(f"redis://:{PASSWORD}@127.0.0.1:{tls_redis.port}/0", socket_timeout_s=2, block_ms=100)
    with pytest.raises(RedisUnavailable, match="rediss:// for TLS"):
        await queue.connect()


# -- the harness against a secured Redis -------------------------------------------------------


def run_harness_against(url: str, password: str, out: Path) -> None:
    """A short harness run over `url`: valid, and the password is nowhere in its output or folder."""
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", "steady", "--duration", "1.5", "--seed", "3", "--redis", url,
         "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "verdict: valid" in done.stdout
    assert password not in done.stdout + done.stderr, "a password must never reach logs"
    [folder] = out.iterdir()
    holding = [p for p in folder.rglob("*") if p.is_file() and password.encode() in p.read_bytes()]
    assert holding == [], "a password must never be saved in a run folder"
    replay = subprocess.run(
        [sys.executable, "-m", "harness", "replay", str(folder), "--out", str(out / "replays")],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert replay.returncode == 2 and "give the URL again with --redis URL" in replay.stderr


@pytest.mark.tls
def test_harness_over_tls_with_a_password(tls_redis: LocalRedis, tmp_path: Path) -> None:
    run_harness_against(url_for(tls_redis, "default", PASSWORD), PASSWORD, tmp_path)


def test_harness_as_an_acl_user(acl_redis: LocalRedis, tmp_path: Path) -> None:
    run_harness_against(url_for(acl_redis, "broad", "broad-pw"), "broad-pw", tmp_path)
