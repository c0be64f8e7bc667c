"""The checks every adapter takes, pull or hosted: connect, enqueue of a batch, a refused payload, and the
shape of depth() and final_state()."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from harness.adapters.base import AdapterRefused, AdapterUnavailable, FinalState, QueueOptions, TaskSpec
from harness.kit.conformance.rules import Probe, RuleBroken

COUNTS_COMPLETED = "counts completed tasks"
# What the drain waits on. "dead" is shown in the progress line where a queue counts it cheaply ("?" if not:
# arq and saq keep failures among their results, and counting them means reading every result).
DEPTH_KEYS = ("ready", "pending", "delayed")
BIG_PAYLOAD_BYTES = 2 << 20  # past taskq's 1 MiB limit; a queue without a limit may take it
# Options of the checks: a lease long enough that nothing is taken over unless a check waits for it.
HOLD_OPTIONS = QueueOptions(pending_timeout_s=30.0, retry_base_delay_s=0.0, retry_max_delay_s=0.0, block_ms=100)


@dataclass(frozen=True, slots=True)
class Target:
    """Where the checks run: the adapter's factory and a Redis of the suite's own."""

    factory: Callable[[], Any]
    url: str
    prefix: str  # queue names start with it: one fresh queue per check

    def queue_name(self, check: str) -> str:
        return f"{self.prefix}-{check}-{int(time.time() * 1000) % 10**9}"


def task(tid: str, priority: int = 2, max_retries: int = 3, **payload: Any) -> TaskSpec:
    """A task as the harness's producers make them: the payload carries the tid and the work (none)."""
    return TaskSpec(tid=tid, priority=priority, max_retries=max_retries,
                    payload={"tid": tid, "ms": 0, "due": time.monotonic_ns(), **payload})  # fmt: skip


@asynccontextmanager
async def connected(probe: Probe, target: Target, check: str, options: QueueOptions) -> AsyncIterator[None]:
    await probe.call("connect", target.url, target.queue_name(check), options)
    try:
        yield
    finally:
        try:
            await probe.call("close")
        except RuleBroken as exc:
            probe.findings.append(exc.finding)


async def depth_of(probe: Probe) -> dict[str, int]:
    depth = await probe.call("depth")
    shape_ok = isinstance(depth, dict) and all(isinstance(depth.get(k), int) for k in DEPTH_KEYS)
    rule = "returns a dict of int counts: ready, pending, delayed (and dead, if it counts it)"
    shape_ok = shape_ok and ("dead" not in depth or isinstance(depth["dead"], int))
    probe.must(shape_ok, "depth", rule, f"it returned {depth!r}")
    return dict(depth)


async def final_of(probe: Probe) -> FinalState:
    final = await probe.call("final_state")
    probe.must(isinstance(final, FinalState), "final_state", "returns a harness.adapters.FinalState",
               f"it returned {type(final).__name__}")  # fmt: skip
    return final  # type: ignore[no-any-return]


async def check_batch(probe: Probe, tasks: list[TaskSpec]) -> None:
    """enqueue of a batch: nothing raised, and depth() counts the batch as ready."""
    result = await probe.call("enqueue", tasks)
    probe.must(result is None, "enqueue", "returns None", f"it returned {result!r}")
    depth = await depth_of(probe)
    probe.must(depth["ready"] == len(tasks), "depth", "counts the tasks enqueue added as ready (the drain waits on it)",
               f"after enqueue of {len(tasks)} tasks it said {depth}")  # fmt: skip
    probe.ok("enqueue", "adds a batch", f"{len(tasks)} tasks over 4 priorities: depth() ready={depth['ready']}")
    if not isinstance(depth.get("completed"), int):
        probe.note("depth", COUNTS_COMPLETED, "no 'completed' count: the runs' faults cannot wait for progress, so "
                   "they use the built-in scenarios, whose faults are timed (on a slow machine they may strike "
                   "before work flows: unknown)")  # fmt: skip


async def check_refused(probe: Probe, target: Target) -> None:
    """A batch with a payload too large: refused whole (AdapterRefused, nothing added) or taken whole."""
    batch = [task("small-0"), task("big-1", blob="x" * BIG_PAYLOAD_BYTES)]
    async with connected(probe, target, "refused", HOLD_OPTIONS):
        try:
            await probe.call("enqueue", batch, allow=(AdapterRefused, AdapterUnavailable))
        except AdapterUnavailable as exc:
            raise RuleBroken("enqueue", "raises AdapterUnavailable only when Redis cannot be reached",
                             f"a 2 MiB payload: {exc}") from None  # fmt: skip
        except AdapterRefused as exc:
            depth = await depth_of(probe)
            probe.must(depth["ready"] == 0, "enqueue", "a refused batch adds none of its tasks",
                       f"AdapterRefused ({exc}), but depth() then said ready={depth['ready']}")  # fmt: skip
            probe.ok("enqueue", "refuses a payload too large, whole", f"2 MiB: AdapterRefused ({exc}); nothing added")
            return
        depth = await depth_of(probe)
        probe.must(depth["ready"] == len(batch), "enqueue", "adds a batch whole",
                   f"a batch with a 2 MiB payload: depth() said ready={depth['ready']} of {len(batch)}")  # fmt: skip
        probe.ok("enqueue", "takes a 2 MiB payload (no size limit to refuse at)", "both tasks of the batch added")


def ids(entries: list[Any]) -> list[str]:
    """The tids of final-state entries: (tid, ...) tuples, or bare tids."""
    return [str(entry[0]) if isinstance(entry, list | tuple) else str(entry) for entry in entries]


def accounting(final: FinalState, enqueued: set[str]) -> dict[str, list[str]]:
    """Where final_state puts each task; RuleBroken for a stranger or a task in two places."""
    places = {"ready": ids(final.ready), "pending": ids(final.pending), "delayed": ids(final.delayed),
              "dead": ids(final.dead)}  # fmt: skip
    strangers = sorted({tid for tids in places.values() for tid in tids} - enqueued)
    if strangers:
        raise RuleBroken("final_state", "names only tasks that were enqueued", f"it named {strangers[:3]}")
    seen: dict[str, str] = {}
    for place, tids in places.items():
        for tid in tids:
            if tid in seen:
                raise RuleBroken("final_state", "puts each task in one place",
                                 f"{tid} is in {seen[tid]} and in {place}")  # fmt: skip
            seen[tid] = place
    return places
