"""arq under the harness (--queue peer:arq[:VARIANT], harness/peers/arq.py): the adapter against a real
redis-server and arq's own worker, a short steady run through the `harness` command, and one finding
replayed from its stored plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.adapters.base import QueueOptions, TaskSpec
from harness.hosted.base import WorkerLaunch
from harness.providers.local import LocalRedis
from tests.peers.common import (
    PEER_PYTHON,
    REPO,
    checker,
    harness,
    importable,
    invalid_checkers,
    needs_library_here,
    needs_library_somewhere,
    run_here_in_peer_environment,
    verdict_in,
)

pytestmark = pytest.mark.peers
FINDING_PLAN = REPO / "reports" / "findings" / "plans" / "arq-killed-job-invisible.json"


def tasks(queue_name: str, *names: str, prio: int = 1) -> list[TaskSpec]:
    # arq's job keys (arq:job:<id>) are not per queue: ids unique to the test keep tests apart.
    tids = [f"{queue_name}-{name}" for name in names]
    return [TaskSpec(tid=tid, priority=prio, max_retries=1, payload={"tid": tid, "ms": 0}) for tid in tids]


async def connected(url: str, queue_name: str, variant: str = "default") -> Any:
    from harness.peers.arq import VARIANTS  # noqa: PLC0415  arq is importable only in .venv-redis5

    adapter = VARIANTS[variant]()
    await adapter.connect(url, queue_name, QueueOptions())
    return adapter


@needs_library_here("arq")
async def test_adapter_enqueues_and_reads_ready_jobs(redis_server: LocalRedis, queue_name: str) -> None:
    adapter = await connected(redis_server.url, queue_name)
    sent = tasks(queue_name, "a", "b", "c")
    await adapter.enqueue(sent)
    await adapter.enqueue(sent[:1])  # a resend: arq refuses a job id it holds, the task is there once
    depth = await adapter.depth()
    assert (depth["ready"], depth["pending"], depth["delayed"]) == (3, 0, 0)
    final = await adapter.final_state()
    assert sorted(final.ready) == sorted((t.tid, 1) for t in sent)
    assert (final.pending, final.delayed, final.dead, final.foreign) == ([], [], [], 0)
    await adapter.close()


@needs_library_here("arq")
async def test_adapter_reads_jobs_in_progress_and_deferred(redis_server: LocalRedis, queue_name: str) -> None:
    from arq.constants import in_progress_key_prefix  # noqa: PLC0415

    from harness.peers.arq import HOLDER_UNKNOWN  # noqa: PLC0415

    adapter = await connected(redis_server.url, queue_name)
    running, deferred, ready = tasks(queue_name, "running", "deferred", "ready")
    await adapter.enqueue([running, deferred, ready])
    redis = adapter._client()
    # What arq's worker writes when it starts a job, and when a job raises Retry(defer=60).
    await redis.psetex(in_progress_key_prefix + running.tid, 60_000, b"1")
    await redis.zincrby(queue_name, 60_000, deferred.tid)
    depth = await adapter.depth()
    assert (depth["ready"], depth["pending"], depth["delayed"]) == (1, 1, 1)
    final = await adapter.final_state()
    assert final.ready == [(ready.tid, 1)]
    assert final.pending == [(running.tid, 1, HOLDER_UNKNOWN)]
    assert final.delayed == [deferred.tid]
    await adapter.close()


@needs_library_here("arq")
async def test_adapter_reads_failed_jobs_as_dead(own_redis: LocalRedis, queue_name: str) -> None:
    """On a server of its own: depth counts finished jobs from the server's key count."""
    redis_server = own_redis
    from arq.connections import RedisSettings  # noqa: PLC0415
    from arq.worker import Retry, Worker, func  # noqa: PLC0415

    from harness.peers.arq import TASK_NAME, dumps, loads  # noqa: PLC0415

    async def job(ctx: dict[str, Any], payload: dict[str, Any]) -> None:
        if payload["tid"].endswith("boom"):
            raise ValueError("boom")
        if payload["tid"].endswith("again"):
            raise Retry()

    adapter = await connected(redis_server.url, queue_name)
    ok, boom, again = tasks(queue_name, "ok", "boom", "again")
    await adapter.enqueue([ok, boom, again])
    worker = Worker(
        functions=[func(job, name=TASK_NAME, max_tries=2)], queue_name=queue_name, burst=True, poll_delay=0.01,
        redis_settings=RedisSettings.from_dsn(redis_server.url), handle_signals=False,
        job_serializer=dumps, job_deserializer=loads,
    )  # fmt: skip
    await worker.main()
    await worker.pool.aclose(close_connection_pool=True)
    final = await adapter.final_state()
    dead = {tid: (reason, attempts, errors) for tid, reason, attempts, errors in final.dead}
    assert sorted(dead) == sorted([boom.tid, again.tid])
    assert dead[boom.tid][0].startswith("failed on try 1: ValueError: boom")
    assert dead[boom.tid][1:] == (0, -1)
    # Tried twice (the max), then a third start that gives up without running the function.
    assert dead[again.tid][0].startswith("retries exhausted: ") and "max 2 retries exceeded" in dead[again.tid][0]
    assert dead[again.tid][1:] == (1, -1)
    assert final.ready == final.pending == final.delayed == []
    assert (await adapter.depth())["completed"] == 3
    await adapter.close()


@needs_library_here("arq")
async def test_adapter_closes_while_redis_is_down(own_redis: LocalRedis, queue_name: str) -> None:
    """A producer closes its client when the run ends, perhaps in the middle of a Redis fault."""
    adapter = await connected(own_redis.url, queue_name)
    await adapter.enqueue(tasks(queue_name, "down"))
    own_redis.stop()
    await adapter.close()


@needs_library_here("arq")
def test_worker_command_is_arqs_own_cli_with_the_url_in_env(tmp_path: Path) -> None:
    from harness.peers.arq import VARIANTS  # noqa: PLC0415

    url = "redis://user:secret@127.0.0.1:6399/0"
    launch = WorkerLaunch(process="consumer-0#1", journal=tmp_path / "j", plan_path=tmp_path / "p", folder=tmp_path,
                          url=url, queue_name="q", options=QueueOptions(), concurrency=7)  # fmt: skip
    command = VARIANTS["short-timeout"]().worker(launch)
    assert command.argv[1:] == ["-m", "arq", "harness.peers.arq.WorkerSettings"]
    assert url not in " ".join(command.argv)
    assert command.env["HARNESS_ARQ_URL"] == url
    assert command.env["HARNESS_ARQ_MAX_JOBS"] == "7"
    assert VARIANTS["short-timeout"]().promises.visibility_timeout_s == 15.0
    assert VARIANTS["default"]().promises.visibility_timeout_s == 310.0


@pytest.mark.skipif(importable("arq"), reason="arq is importable here: its adapter tests ran in this session")
@pytest.mark.skipif(not PEER_PYTHON.exists(), reason="no .venv-redis5: `.venv/bin/harness peers install arq`")
def test_adapter_tests_pass_in_the_peer_environment() -> None:
    done = run_here_in_peer_environment(Path(__file__), "(adapter or worker_command) and not peer_environment")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout, done.stdout[-1000:]


@needs_library_somewhere("arq")
def test_a_short_steady_run_is_valid(tmp_path: Path) -> None:
    done = harness("run", "steady", "--queue", "peer:arq", "--duration", "4", "--rate", "500", "--seed", "7",
                   "--drain-timeout", "30", "--out", str(tmp_path))  # fmt: skip
    verdict = verdict_in(tmp_path)
    assert (done.returncode, verdict["valid"]) == (0, True), f"{invalid_checkers(verdict)}: {done.stderr[-3000:]}"
    assert verdict["hosted"] is True
    assert verdict["promises"]["delivery"] == "at-least-once"
    assert checker(verdict, "delivery")["figures"]["completed"] == 2000


@needs_library_somewhere("arq")
def test_finding_a_killed_job_stays_invisible_past_the_drain(tmp_path: Path) -> None:
    """reports/findings/arq-killed-job-invisible.md: with arq's defaults, a job whose worker was killed
    waits for its in-progress key to expire, 310 s after it started; the run's 10 s drain ends first."""
    done = harness("replay", str(FINDING_PLAN), "--out", str(tmp_path))
    verdict = verdict_in(tmp_path)
    assert (done.returncode, verdict["valid"]) == (1, False), done.stderr[-3000:]
    recovery, leaks = checker(verdict, "recovery"), checker(verdict, "leaks")
    assert recovery["valid"] is False and recovery["figures"]["never_redelivered"] >= 1
    assert "not recovered within" in recovery["note"]
    assert leaks["valid"] is False and leaks["figures"]["pending"] >= 1
    assert checker(verdict, "delivery")["figures"]["duplicated_unexplained"] == 0
    assert verdict["promises"]["visibility_timeout_s"] == 310.0
