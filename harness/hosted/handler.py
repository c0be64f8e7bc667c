"""The handler a hosted worker runs: journal the start, simulate the work, journal the finish.

It does to a task exactly what the harness's own consumer does (harness.agents.consumer): it runs
for payload["ms"], fails the attempts the seed says fail (raising PlannedFailure, so the library
sees a handler error), and a poison task kills the process outright. Acking, retrying,
reclaiming and dead-lettering are the library's business.

Journal records (harness.history), each pair written with one write(2):

    start     deliver invoke {} + ok {"tasks": [[tid, prio, attempt, deliveries]]}
    finish    complete invoke {"tasks": [tid]} + ok {"refused": []}      the handler returned
              fail invoke {"tasks": [[tid, attempt, error]]} + ok {"outcomes": ["raised"]}
              fail ... {"outcomes": ["cancelled"]}   the library cancelled or killed the handler
                                                     (lease lost, shutdown, its own time limit)

`attempt` is the number of tries before this one as the library reports it, `deliveries` the
library's delivery count, or None where it reports none (the checkers count them). A finish is
not an ack: the library acks after the handler returns, so a kill between the two explains a
repeat.

Many handlers run at once in one worker (asyncio tasks, threads, forked children), and the
history allows one operation in flight per logical process: each running handler takes a lane,
"consumer-2#3.<pid>.<n>". Every process of a worker tree appends to the worker's one journal
file: O_APPEND writes of a record each are atomic on Linux, so lines never interleave.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from harness.agents.common import URL_ENV, attempt_fails, mark_ready
from harness.history import INVOKE, OK
from harness.hosted.base import JOURNAL_ENV, PLAN_ENV, PROCESS_ENV
from harness.plan import Plan

POISON_EXIT_CODE = 3
RAISED, CANCELLED = "raised", "cancelled"
# Benchmarks (harness.bench.peers) set these: journal nothing, and end each task body with an INCR of
# this key, which the bench reads to know every task ran exactly once.
NO_JOURNAL_ENV = "HARNESS_NO_JOURNAL"
COUNTER_ENV = "HARNESS_COUNTER_KEY"


class PlannedFailure(Exception):
    """The failure the seed planned for this attempt: the library should treat it as any handler error."""


@dataclass(frozen=True, slots=True)
class Started:
    lane: str
    tid: str
    attempt: int
    run_s: float
    fails: bool


class _Lanes:
    """Lane numbers for handlers running at once in this process; a finished handler's lane is reused."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: list[int] = []
        self._next = 0

    def take(self) -> int:
        with self._lock:
            if self._free:
                return self._free.pop()
            self._next += 1
            return self._next - 1

    def give(self, lane: int) -> None:
        with self._lock:
            self._free.append(lane)


class HostedRun:
    """The harness's side of one hosted worker process (and of every process it forks)."""

    def __init__(self, plan: Plan, journal: Path, process: str) -> None:
        self.plan, self.journal, self.process = plan, journal, process
        self.seed = plan.seed
        self.failure_probability = plan.scenario.workload.failure_probability
        self.journaling = not os.environ.get(NO_JOURNAL_ENV)
        self.counter_key = os.environ.get(COUNTER_ENV, "")
        self._fd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) if self.journaling else -1
        self._lanes = _Lanes()
        self._counter = _Counter()

    @classmethod
    def from_env(cls) -> HostedRun:
        try:
            plan_path, journal, process = os.environ[PLAN_ENV], os.environ[JOURNAL_ENV], os.environ[PROCESS_ENV]
        except KeyError as exc:
            raise RuntimeError(
                f"${exc.args[0]} is not set: this handler runs only inside a harness run (harness run --queue ...)"
            ) from None
        return cls(Plan.load(Path(plan_path)), Path(journal), process)

    def ready(self) -> None:
        """The worker is up: the producers may start (harness.agents.common.consumers_ready)."""
        mark_ready(self.journal)

    # -- the journal ----------------------------------------------------------------------

    def _write(self, lane: str, f: str, invoke_value: Any, ok_value: Any) -> None:
        if not self.journaling:
            return
        stamp = time.monotonic_ns()
        records = (
            {"index": -1, "time_ns": stamp, "process": lane, "type": INVOKE, "f": f, "value": invoke_value},
            {"index": -1, "time_ns": stamp, "process": lane, "type": OK, "f": f, "value": ok_value},
        )
        os.write(self._fd, b"".join(orjson.dumps(r) + b"\n" for r in records))

    # -- one task -------------------------------------------------------------------------

    def begin(
        self, payload: Mapping[str, Any], *, attempt: int | None, deliveries: int | None = None,
        delivered_id: str | None = None,
    ) -> Started:  # fmt: skip
        """Journal the start; a poison task ends the process here, as a crashing handler would."""
        tid = str(payload["tid"])
        number = self._lanes.take()
        lane = f"{self.process}.{os.getpid()}.{number}"
        record: list[Any] = [delivered_id or tid, int(payload.get("prio", 2)), attempt, deliveries]
        if delivered_id is not None and delivered_id != tid:
            record.append(tid)
        self._write(lane, "deliver", {}, {"tasks": [record]})
        if payload.get("poison"):
            os._exit(POISON_EXIT_CODE)
        tries = attempt or 0
        fails = attempt_fails(self.seed, tid, tries, self.failure_probability)
        started = Started(lane, tid, tries, float(payload.get("ms", 0)) / 1000, fails)
        return started

    def finish(self, started: Started) -> None:
        """Journal the end of the handler; raises PlannedFailure when this attempt is planned to fail."""
        try:
            if started.fails:
                error = f"planned failure of attempt {started.attempt}"
                self._write(started.lane, "fail", {"tasks": [[started.tid, started.attempt, error]]},
                            {"outcomes": [RAISED]})  # fmt: skip
                raise PlannedFailure(error)
            self._write(started.lane, "complete", {"tasks": [started.tid]}, {"refused": []})
        finally:
            self._release(started)

    def abandon(self, started: Started, why: str) -> None:
        """The library stopped the handler before it finished (cancelled it, or its own time limit)."""
        try:
            self._write(started.lane, "fail", {"tasks": [[started.tid, started.attempt, why]]},
                        {"outcomes": [CANCELLED]})  # fmt: skip
        finally:
            self._release(started)

    def _release(self, started: Started) -> None:
        self._lanes.give(int(started.lane.rsplit(".", 1)[1]))

    async def run(
        self, payload: Mapping[str, Any], *, attempt: int | None, deliveries: int | None = None,
        delivered_id: str | None = None,
    ) -> None:  # fmt: skip
        """The whole task, for asyncio workers."""
        started = self.begin(payload, attempt=attempt, deliveries=deliveries, delivered_id=delivered_id)
        try:
            if started.run_s > 0:
                await asyncio.sleep(started.run_s)
            if self.counter_key:
                await self._counter.incr_async(self.counter_key)
        except BaseException as exc:  # cancelled by the library: journal it, then let it propagate
            self.abandon(started, f"cancelled: {type(exc).__name__}")
            raise
        self.finish(started)

    def run_sync(
        self, payload: Mapping[str, Any], *, attempt: int | None, deliveries: int | None = None,
        delivered_id: str | None = None,
    ) -> None:  # fmt: skip
        """The whole task, for thread and process workers."""
        started = self.begin(payload, attempt=attempt, deliveries=deliveries, delivered_id=delivered_id)
        try:
            if started.run_s > 0:
                time.sleep(started.run_s)
            if self.counter_key:
                self._counter.incr(self.counter_key)
        except BaseException as exc:  # a time limit raised into the handler: journal it, then propagate
            self.abandon(started, f"stopped: {type(exc).__name__}")
            raise
        self.finish(started)


class _Counter:
    """The benchmark's task body: INCR a key, with a client of this process's own (made after any fork)."""

    def __init__(self) -> None:
        self._pid = -1
        self._sync: Any = None
        self._async: Any = None

    def _fresh(self) -> None:
        if self._pid != os.getpid():
            self._pid, self._sync, self._async = os.getpid(), None, None

    def incr(self, key: str) -> None:
        self._fresh()
        if self._sync is None:
            import redis  # noqa: PLC0415  benchmarks only

            self._sync = redis.Redis.from_url(os.environ[URL_ENV])
        self._sync.incr(key)

    async def incr_async(self, key: str) -> None:
        self._fresh()
        if self._async is None:
            import redis.asyncio  # noqa: PLC0415  benchmarks only

            self._async = redis.asyncio.Redis.from_url(os.environ[URL_ENV])
        await self._async.incr(key)


_current: HostedRun | None = None
_current_lock = threading.Lock()


def current() -> HostedRun:
    """This process's HostedRun, made on first use from the environment the fleet set."""
    global _current  # noqa: PLW0603  one per process, shared by every handler in it
    with _current_lock:
        if _current is None:
            _current = HostedRun.from_env()
        return _current


def ready_if_worker() -> None:
    """Mark the worker ready, when this module was imported by a hosted worker (not by a producer or
    the runner, which import the same adapter module without the worker's environment)."""
    if os.environ.get(PROCESS_ENV):
        current().ready()
