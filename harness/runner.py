"""The runner: a plan's phases, as in Jepsen: setup, load with faults, heal, drain,
final server-state read, check. Impure by design; nothing here judges the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.adapters import AdapterUnavailable, QueueClient, adapter_factory
from harness.adapters.promises import client_timeout_s, promises_of, read_window_s
from harness.bench.cost import redis_cpu_s, spent
from harness.drain import DrainBounds, in_flight
from harness.errors import HarnessError, SetupError
from harness.fleet import Fleet
from harness.folders import stamped_folder
from harness.history import INFO, OK, Journal, merge, read_journal, write_history
from harness.hosted.base import is_hosted
from harness.hosted.progress import JournalCompletions
from harness.hosted.startup import agents_up, workers_up
from harness.nemesis import FaultContext, heal, run_schedule
from harness.nemesis.network import needs_namespace, open_routes
from harness.nemesis.redis import require_redis_faults
from harness.plan import Plan
from harness.providers import make_provider
from harness.providers.base import Provider
from harness.report.verdict import judge_run, unjudged_verdict

RUNNER = "runner"
Status = Callable[[str], None]
PRODUCER_GRACE_S = 10.0
# The drain may run this many drain timeouts in all, as long as the queue keeps getting emptier.
DRAIN_CAP = 10
# How often the queue's depth is sampled into the history (f="depth"), for the depth plot; on
# average: the interval is drawn from half to one and a half of it, so that samples do not keep
# falling on the same phase of the producers' periodic batches (and show an empty queue each time).
DEPTH_SAMPLE_S = 0.2


@dataclass(frozen=True, slots=True)
class RunResult:
    folder: Path
    verdict: dict[str, Any]

    @property
    def valid(self) -> bool | None:
        valid: bool | None = self.verdict["valid"]
        return valid


def new_run_folder(out: Path, plan: Plan) -> Path:
    return stamped_folder(out, plan.scenario.name, str(plan.seed), plan.queue)


def run(plan: Plan, folder: Path, *, status: Status, journaling: bool = True, reports: bool = True) -> RunResult:
    """Execute the plan into `folder`; returns the verdict. Raises HarnessError when the run
    could not be carried out (then the folder holds error.txt, never a verdict). Without
    `reports`, only verdict.json is written (no report pages, no plots: the search's runs)."""
    plan.save(folder / "plan.json")
    isolated = needs_namespace(plan)  # a partition needs the local server in a network namespace
    provider = make_provider(plan.redis, folder / "redis", plan.scenario.run.persistence, isolated=isolated)
    try:
        facts = asyncio.run(_execute(plan, folder, provider, status, journaling))
    except HarnessError as exc:
        (folder / "error.txt").write_text(f"{exc}\n")
        raise
    finally:
        with contextlib.suppress(Exception):
            provider.stop()
    (folder / "run.json").write_text(json.dumps(facts, indent=2))
    if not journaling:
        return RunResult(folder, unjudged_verdict(folder, plan, facts))
    history = merge(read_journal(p) for p in sorted((folder / "journals").glob("*.jsonl")))
    write_history(folder / "history.jsonl", history)
    status("checking the history")
    return RunResult(folder, judge_run(folder, plan, history, facts, reports=reports))


class _Phases:
    def __init__(self, journal: Journal, status: Status) -> None:
        self.journal, self.status, self.times = journal, status, {}
        self.completed_in_load = 0

    def enter(self, name: str) -> None:
        self.times[name] = self.journal.record(RUNNER, OK, "phase", {"name": name})
        self.status(f"phase: {name}")

    times: dict[str, int]


async def _execute(plan: Plan, folder: Path, provider: Provider, status: Status, journaling: bool) -> dict[str, Any]:
    (folder / "journals").mkdir()
    journal = Journal(folder / "journals" / "runner.jsonl")
    phases = _Phases(journal, status)
    phases.enter("setup")
    provider.start()
    redis_cpu_at_start = await redis_cpu_s(provider.url)
    adapter = adapter_factory(plan.queue)()
    try:
        await adapter.connect(provider.url, plan.queue_name, plan.scenario.queue)
    except AdapterUnavailable as exc:
        raise SetupError(f"the queue could not connect to Redis: {exc}") from exc
    require_redis_faults(plan, provider)
    # Agents may reach Redis through the fault proxy, or by addresses a partition can cut.
    routes = open_routes(plan, provider)
    fleet = Fleet(
        folder, folder / "plan.json", provider.url, journaling, urls=routes.urls, proxy=routes.proxy,
        hosted=adapter if is_hosted(adapter) else None, queue_name=plan.queue_name, options=plan.scenario.queue,
        concurrency=plan.scenario.workload.concurrency,
    )  # fmt: skip
    started = datetime.now(UTC).isoformat()
    with Journal(folder / "journals" / "nemesis.jsonl") as nemesis_journal:
        ctx = FaultContext(
            fleet=fleet, journal=nemesis_journal, provider=provider, plan=plan, completed=_completed_of(adapter, fleet)
        )
        try:
            await _load_heal_drain(plan, fleet, ctx, adapter, phases)
        finally:
            fleet.stop_all()
            routes.close()
    phases.enter("final")
    redis_cpu = spent(redis_cpu_at_start, await redis_cpu_s(provider.url))
    final = await adapter.final_state()
    journal.record(RUNNER, OK, "final", final.as_value())
    await adapter.close()
    journal.close()
    return {
        "started_at": started, "redis": provider.describe(), "phases_ns": phases.times,
        "hosted": fleet.hosted is not None, "promises": promises_of(adapter).as_dict(),
        "client_timeout_s": client_timeout_s(adapter), "read_window_s": read_window_s(adapter),
        "restarts": fleet.restarts, "faults_applied": ctx.applied, "journaling": journaling,
        "completed_in_load": phases.completed_in_load, "redis_cpu_s": redis_cpu,
    }  # fmt: skip


async def _load_heal_drain(plan: Plan, fleet: Fleet, ctx: FaultContext, adapter: QueueClient, phases: _Phases) -> None:
    run_settings = plan.scenario.run
    phases.enter("load")
    fleet.start_consumers(run_settings.consumers)
    # The load, and the fault schedule's clock, start once every consumer can serve: on a loaded machine a
    # Python process can take seconds to start, and faults timed from before that would strike idle workers.
    await workers_up(fleet)
    fleet.start_producers(run_settings.producers)
    await agents_up(fleet.producers)
    start = time.monotonic()
    load_over = asyncio.Event()
    nemesis = asyncio.create_task(run_schedule(ctx, start, load_over))
    progress = _Progress(plan, fleet, adapter, phases.status, start, journal=phases.journal)
    deadline = start + run_settings.duration_s * 3 + PRODUCER_GRACE_S
    stalled = _Stall(max(3.0, 3 * plan.scenario.queue.pending_timeout_s))
    while time.monotonic() < deadline:
        await _supervise(fleet, ctx, phases.journal)
        await progress.tick()
        # Load ends with the producers, unless faults still wait for their barrier: then
        # when they have run, or when the queue ran dry or stopped completing and they never can.
        if fleet.producers_done() and (nemesis.done() or await _idle(adapter) or stalled.at(await ctx.completed())):
            break
        await asyncio.sleep(0.05)
    load_over.set()
    fleet.stop([p for p in fleet.producers if p.alive()])
    phases.completed_in_load = await ctx.completed()
    phases.enter("heal")
    await nemesis
    await heal(ctx)
    phases.enter("drain")
    await _drain(plan, fleet, ctx, adapter, phases, progress)


async def _drain(
    plan: Plan, fleet: Fleet, ctx: FaultContext, adapter: QueueClient, phases: _Phases, progress: _Progress
) -> None:
    """Until the queue is empty, or stalled past what anything in motion could take (harness.drain), or
    drain_timeout_s went by without the queue getting any emptier (a backlog that drains slowly, on a busy
    machine, is given the time it needs, up to DRAIN_CAP times the timeout in all)."""
    window_s = plan.scenario.run.drain_timeout_s
    started = time.monotonic()
    deadline, cap = started + window_s, started + window_s * DRAIN_CAP
    bounds = DrainBounds.of(plan.scenario.queue, promises_of(adapter), client_timeout_s(adapter))
    last: dict[str, int] | None = None
    last_change, fewest = started, None
    while time.monotonic() < min(deadline, cap):
        await _supervise(fleet, ctx, phases.journal)
        await progress.tick()
        try:
            depth = await adapter.depth()
        except AdapterUnavailable:
            await asyncio.sleep(0.2)
            continue
        left = depth["ready"] + depth["pending"] + depth["delayed"]
        if left == 0:
            return
        now = time.monotonic()
        if fewest is None or left < fewest:
            fewest, deadline = left, max(deadline, now + window_s)
        journals = [agent.journal for agent in fleet.consumers.values()]
        if depth != last or in_flight(journals, bounds.client_timeout_s):
            last, last_change = depth, now
        elif now - last_change > bounds.stall_s:
            phases.status(f"drain stalled for {bounds.stall_s:.1f}s with {depth}: moving on")
            return
        await asyncio.sleep(0.1)
    phases.status(f"drain ended after {time.monotonic() - started:.0f}s with {last}")


class _Stall:
    """Whether a count stopped moving: the same value for `window_s` (a fault's completion barrier that
    a stuck queue can no longer reach must not hold the run until its deadline)."""

    def __init__(self, window_s: float) -> None:
        self.window_s, self.last, self.since = window_s, -1, time.monotonic()

    def at(self, value: int) -> bool:
        if value != self.last:
            self.last, self.since = value, time.monotonic()
        return time.monotonic() - self.since > self.window_s


async def _idle(adapter: QueueClient) -> bool:
    try:
        depth = await adapter.depth()
    except AdapterUnavailable:
        return False
    return depth["ready"] + depth["pending"] + depth["delayed"] == 0


def _completed_of(adapter: QueueClient, fleet: Fleet) -> Callable[[], Awaitable[int]]:
    # A hosted library that counts no completions: its handlers' journals say how far the run got.
    journals = JournalCompletions(fleet.journal_dir) if fleet.hosted is not None else None

    async def completed() -> int:
        try:
            depth = await adapter.depth()
        except AdapterUnavailable:
            return -1  # unknown now: the barrier waits
        if "completed" in depth or journals is None:
            return int(depth.get("completed", 0))
        return journals.count()

    return completed


async def _supervise(fleet: Fleet, ctx: FaultContext, journal: Journal) -> None:
    """Journal and replace consumers that died on their own (e.g. a poison task)."""
    for agent in fleet.unexpected_exits():
        code = agent.process.returncode
        journal.record(agent.name, INFO, "exit", {"code": code})
        if code == 2:
            raise HarnessError(f"{agent.name} could not run (exit 2): see {fleet.folder / 'agents.log'}")
        if agent.index not in ctx.busy_slots:
            fleet.replace_consumer(agent.index)
    for producer in fleet.producers:
        code = producer.process.poll()
        if code not in (None, 0) and not producer.planned_exit:
            raise HarnessError(f"{producer.name} failed (exit {code}): see {fleet.folder / 'agents.log'}")


class _Progress:
    """Depth samples into the history every DEPTH_SAMPLE_S, and a status line every few seconds:
    time, queue depth, completions, faults, restarts."""

    def __init__(
        self, plan: Plan, fleet: Fleet, adapter: QueueClient, status: Status, start: float, *, journal: Journal
    ) -> None:
        self.plan, self.fleet, self.adapter, self.status, self.start = plan, fleet, adapter, status, start
        self.journal = journal
        self.next_at = start + 1.0
        self.next_sample_at = start

    async def tick(self) -> None:
        now = time.monotonic()
        if now < self.next_sample_at:
            return
        self.next_sample_at = now + DEPTH_SAMPLE_S * random.uniform(0.5, 1.5)
        try:
            depth = await self.adapter.depth()
            self.journal.record(RUNNER, OK, "depth", depth)
        except AdapterUnavailable:
            depth = {}
        if now < self.next_at:
            return
        self.next_at = now + 2.0
        elapsed = now - self.start
        self.status(
            f"{elapsed:5.1f}s/{self.plan.scenario.run.duration_s:g}s  completed={depth.get('completed', '?')}  "
            f"ready={depth.get('ready', '?')} pending={depth.get('pending', '?')} delayed={depth.get('delayed', '?')} "
            f"dead={depth.get('dead', '?')}  restarts={self.fleet.restarts}"
        )
