"""`python -m taskq ...` as a user runs it: real processes against the session Redis."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from harness.providers.local import LocalRedis, free_port
from taskq import Outcome, TaskPriority, TaskQueue
from tests.integration.workers import REPO, start_worker, stop_worker, wait_for_file


def taskq(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "taskq", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def on(queue: TaskQueue, server: LocalRedis) -> tuple[str, ...]:
    return ("--redis", server.url, "--queue", queue.keys.name)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def error_line(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The one line of a refused command: click's `Error: ...` or taskq's `taskq: ...`, no traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith(("Error:", "taskq:"))]
    assert len(errors) == 1, result.stderr
    return errors[0]


async def dead_task(queue: TaskQueue, task_type: str = "job", errors: tuple[str, ...] = ("boom",)) -> str:
    task_id = await queue.add_task(task_type, {"n": 1}, max_retries=len(errors) - 1)
    for error in errors:
        [delivery] = await queue.read("w", block_ms=0)
        await queue.fail_task(delivery.receipt, error)
    return task_id


# -- commands that work -----------------------------------------------------------------------


async def test_enqueue(queue: TaskQueue, redis_server: LocalRedis) -> None:
    args = ("email", '{"to": "a@example.com"}', "--priority", "high", "--max-retries", "2", "--timeout", "7.5")
    task_id = ok(taskq("enqueue", *args, *on(queue, redis_server))).strip()
    assert len(task_id) == 32 and int(task_id, 16) >= 0
    [delivery] = await queue.read("w", block_ms=0)
    task = delivery.task
    assert (task.task_id, task.task_type, task.payload) == (task_id, "email", {"to": "a@example.com"})
    assert (task.priority, task.max_retries, task.timeout) == (TaskPriority.HIGH, 2, 7.5)


async def test_enqueue_defaults_delay_and_environment(queue: TaskQueue, redis_server: LocalRedis) -> None:
    env = {"TASKQ_REDIS_URL": redis_server.url, "TASKQ_QUEUE": queue.keys.name}
    ok(taskq("enqueue", "ping", env=env))  # payload {} and NORMAL priority by default
    ok(taskq("enqueue", "later", "[1, 2]", "--delay", "60", env=env))
    stats = await queue.stats()
    assert (stats.ready[TaskPriority.NORMAL], stats.delayed) == (1, 1)
    [delivery] = await queue.read("w", block_ms=0)
    assert (delivery.task.task_type, delivery.task.payload) == ("ping", {})


async def test_stats(queue: TaskQueue, redis_server: LocalRedis) -> None:
    await dead_task(queue)
    await queue.add_task("job", {}, priority=TaskPriority.LOW)
    shown = json.loads(ok(taskq("stats", "--json", *on(queue, redis_server))))
    assert (shown["tasks_added"], shown["tasks_dead"], shown["dlq_length"]) == (2, 1, 1)
    assert shown["ready"] == {"CRITICAL": 0, "HIGH": 0, "NORMAL": 0, "LOW": 1}
    table = ok(taskq("stats", *on(queue, redis_server)))
    assert any(line.split() == ["tasks_added", "2"] for line in table.splitlines()), table


async def test_dlq_list_and_show(queue: TaskQueue, redis_server: LocalRedis) -> None:
    task_id = await dead_task(queue, "report", ("first", "second"))
    await queue.redis.xadd(queue.keys.stream(2), {"foreign": "entry"})
    assert await queue.read("w", block_ms=0) == []  # buried as malformed
    dead, raw = await queue.dlq.entries()

    listed = ok(taskq("dlq", "list", *on(queue, redis_server))).splitlines()
    assert len(listed) == 2
    assert listed[0].startswith(f"{dead.entry_id}  report {task_id}  retries exhausted: second")
    assert listed[1].startswith(f"{raw.entry_id}  raw entry  malformed entry:")
    assert ok(taskq("dlq", "list", "--count", "1", *on(queue, redis_server))).splitlines() == listed[:1]

    shown = json.loads(ok(taskq("dlq", "show", dead.entry_id, *on(queue, redis_server))))
    assert (shown["entry_id"], shown["reason"], shown["raw"]) == (dead.entry_id, "retries exhausted: second", None)
    assert (shown["task"]["task_id"], shown["task"]["payload"], shown["task"]["retry_count"]) == (task_id, {"n": 1}, 1)
    assert [e["error"] for e in shown["task"]["errors"]] == ["first", "second"]
    shown_raw = json.loads(ok(taskq("dlq", "show", raw.entry_id, *on(queue, redis_server))))
    assert (shown_raw["task"], shown_raw["raw"]) == (None, {"foreign": "entry"})


async def test_dlq_requeue_one_and_all(queue: TaskQueue, redis_server: LocalRedis) -> None:
    first, second, third = [await dead_task(queue) for _ in range(3)]
    dead = {d.task.task_id: d.entry_id for d in await queue.dlq.entries() if d.task}
    assert ok(taskq("dlq", "requeue", dead[first], *on(queue, redis_server))).strip() == "requeued 1"
    [delivery] = await queue.read("w", block_ms=0)
    assert (delivery.task.task_id, delivery.task.retry_count) == (first, 0)
    assert await queue.ack([delivery.receipt]) == [Outcome.DONE]
    assert ok(taskq("dlq", "requeue", dead[first], *on(queue, redis_server))).strip() == "requeued 0"

    assert ok(taskq("dlq", "requeue", "--all", *on(queue, redis_server))).strip() == "requeued 2"
    assert {d.task.task_id for d in await queue.read("w", 10, block_ms=0)} == {second, third}
    assert await queue.dlq.length() == 0


async def test_dlq_purge(queue: TaskQueue, redis_server: LocalRedis) -> None:
    for _ in range(2):
        await dead_task(queue)
    assert ok(taskq("dlq", "purge", "--yes", *on(queue, redis_server))).strip() == "purged 2"
    assert await queue.dlq.length() == 0
    assert ok(taskq("dlq", "purge", "--yes", *on(queue, redis_server))).strip() == "purged 0"


# -- commands that are refused ------------------------------------------------------------------


async def test_bad_json_payload(queue: TaskQueue, redis_server: LocalRedis) -> None:
    line = error_line(taskq("enqueue", "job", "{to: a}", *on(queue, redis_server)))
    assert "PAYLOAD is not JSON" in line and """quote it, e.g. '{"n": 1}'""" in line
    assert (await queue.stats()).counters["tasks_added"] == 0


async def test_unknown_priority(queue: TaskQueue, redis_server: LocalRedis) -> None:
    line = error_line(taskq("enqueue", "job", "{}", "--priority", "URGENT", *on(queue, redis_server)))
    assert "invalid value for '--priority': 'urgent' is not one of 'critical', 'high', 'normal', 'low'" in line.lower()
    assert (await queue.stats()).counters["tasks_added"] == 0


async def test_purge_without_yes_deletes_nothing(queue: TaskQueue, redis_server: LocalRedis) -> None:
    await dead_task(queue)
    line = error_line(taskq("dlq", "purge", *on(queue, redis_server)))
    assert "pass --yes to confirm" in line
    assert await queue.dlq.length() == 1


async def test_requeue_without_ids_or_all(queue: TaskQueue, redis_server: LocalRedis) -> None:
    assert "name DLQ entry ids, or pass --all" in error_line(taskq("dlq", "requeue", *on(queue, redis_server)))


async def test_dlq_show_of_a_missing_or_malformed_id(queue: TaskQueue, redis_server: LocalRedis) -> None:
    missing = error_line(taskq("dlq", "show", "0-1", *on(queue, redis_server)), code=1)
    assert "no DLQ entry 0-1; `taskq dlq list` shows the ids" in missing
    for command in (("dlq", "show", "garbage"), ("dlq", "requeue", "garbage")):
        line = error_line(taskq(*command, *on(queue, redis_server)))
        assert line.startswith("taskq: 'garbage' is not a DLQ entry id") and "taskq dlq list" in line


def test_worker_with_a_bad_handlers_spec() -> None:
    cases = {
        "no_colon_here": "is not MODULE:ATTRIBUTE, e.g. myapp.tasks:HANDLERS",
        "no_such_module_for_taskq:HANDLERS": "cannot load 'no_such_module_for_taskq:HANDLERS'",
        "tests.integration.handlers:MISSING": "cannot load 'tests.integration.handlers:MISSING'",
        "os:sep": "'os:sep' must be a mapping of task type to handler function",
    }
    port = free_port()  # the spec is checked before Redis is: nobody needs to listen
    for spec, message in cases.items():
        line = error_line(taskq("worker", spec, "--redis", f"redis://127.0.0.1:{port}/0"))
        assert message in line, spec


def test_unreachable_redis_is_one_line_and_exit_2() -> None:
    url = f"redis://:cli-secret@127.0.0.1:{free_port()}/0"
    for command in (("stats",), ("enqueue", "job"), ("dlq", "list")):
        result = taskq(*command, "--redis", url)
        assert result.returncode == 2
        assert result.stdout == ""
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("taskq: cannot reach Redis at redis://:***@127.0.0.1:")
        assert "start redis-server or fix the URL" in line
        assert "cli-secret" not in result.stderr


async def test_a_worker_started_before_its_redis_waits_for_it_and_serves(tmp_path: Path) -> None:
    server = LocalRedis(tmp_path / "redis")  # its port chosen, nobody listening yet: Redis is restarting
    worker = start_worker(server.url, "late", consumer="early", extra=("--connect-timeout", "30"))
    try:
        await wait_for_stderr(worker, "taskq: cannot reach Redis at", "trying again for up to 30 s")
        with server:
            async with TaskQueue(server.url, name="late") as queue:
                task_id = await queue.add_task("sleep", {"marker": str(tmp_path)})
                await wait_for_file(tmp_path / f"{task_id}.done", timeout_s=20)
            err = stop_worker(worker)
    finally:
        if worker.poll() is None:
            stop_worker(worker)
    assert "trying again" not in err, err  # said once, not once per try
    assert "'done': 1" in err


async def wait_for_stderr(process: subprocess.Popen[bytes], *texts: str) -> None:
    """The process's next line on stderr (it is still running) holds each of `texts`."""
    assert process.stderr is not None
    line = (await asyncio.to_thread(process.stderr.readline)).decode()
    assert all(text in line for text in texts), line


def test_a_worker_that_cannot_reach_redis_in_its_connect_timeout_exits_2_with_one_line() -> None:
    url = f"redis://:cli-secret@127.0.0.1:{free_port()}/0"
    line = error_line(taskq("worker", "tests.integration.handlers:HANDLERS", "--redis", url, "--connect-timeout", "0"))
    assert line.startswith("taskq: cannot reach Redis at redis://:***@127.0.0.1:") and "cli-secret" not in line
