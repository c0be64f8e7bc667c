"""Faults on consumer processes: SIGKILL, SIGSTOP/SIGCONT, SIGTERM.

A hosted worker is hurt the way its users' supervisors hurt it: a kill or a pause takes its
whole process tree (a control group, a container), SIGTERM goes to its main process (`docker
stop`). Two variants for workers with children: `kill-main` kills only the main process (a
plain `kill PID`: children that left its process group live on), `kill-child` one child
(a pool process, a work-horse) and leaves the worker to cope.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections.abc import Callable

from harness.faults import RECLAIMER
from harness.fleet import Agent, consumer_state
from harness.history import INFO, INVOKE, OK
from harness.nemesis.base import FaultContext, fault, wait_exit
from harness.plan import FaultEvent

# How long a SIGTERMed consumer may take to shut down gracefully before it is killed.
TERM_PATIENCE_S = 15.0
# How long a fault waits for its victim to be where it should strike (holding tasks, settling them)
# before it strikes anyway: on a loaded machine a restarted worker can take seconds to start reading.
AIM_PATIENCE_S = 5.0

# A reclaim comes a visibility timeout (or more) after the crash that left the tasks behind: a fault
# aimed at the reclaimer waits this long for one before it settles for any consumer holding tasks.
RECLAIMER_PATIENCE_S = 5.0


async def _victim(ctx: FaultContext, event: FaultEvent, process: str) -> tuple[int, Agent] | None:
    slot = await _reclaimer(ctx) if event.target == RECLAIMER else int(event.target.removeprefix("consumer-"))
    agent = ctx.fleet.consumer(slot)
    if slot in ctx.busy_slots or not agent.alive():
        ctx.journal.record(process, INVOKE, "fault", {"kind": event.kind, "target": agent.name, "held": []})
        ctx.journal.record(process, INFO, "fault", {"error": "target is down"})
        return None
    return slot, agent


async def _reclaimer(ctx: FaultContext) -> int:
    """The slot of a live consumer holding tasks it took over from another (waiting for one up to
    RECLAIMER_PATIENCE_S); failing that, of one holding any task; failing that, the first live one."""
    deadline = time.monotonic() + RECLAIMER_PATIENCE_S
    while True:
        live = {slot: consumer_state(agent.journal) for slot, agent in ctx.fleet.consumers.items()
                if agent.alive() and slot not in ctx.busy_slots}  # fmt: skip
        taken_over = [slot for slot, state in live.items() if state.reclaimed]
        if taken_over or time.monotonic() >= deadline:
            holding = [slot for slot, state in live.items() if state.held]
            return (taken_over or holding or sorted(live) or [0])[0]
        await asyncio.sleep(0.002)


async def _aim(agent: Agent, aim: str, patience_s: float = AIM_PATIENCE_S) -> list[str]:
    """Wait (briefly) until the victim is where the fault should hit; returns what it holds.

    A consumer spends part of its time waiting for work, and striking then proves
    nothing: "holding" waits until it holds tasks, "settling" until an ack or fail
    is in flight (where a two-step settle can be split), "failing" until a fail is.
    After `patience_s` it strikes anyway (and vacuity reports a fault that hit nothing).
    """
    deadline = time.monotonic() + patience_s
    state = consumer_state(agent.journal)
    while not state.on_target(aim) and time.monotonic() < deadline and agent.alive():
        await asyncio.sleep(0.001)
        state = consumer_state(agent.journal)
    return state.held


async def _start(ctx: FaultContext, event: FaultEvent, agent: Agent, process: str) -> None:
    held = await _aim(agent, event.aim)
    ctx.journal.record(process, INVOKE, "fault", {"kind": event.kind, "target": agent.name, "held": held})


async def _down_then_replace(
    ctx: FaultContext, event: FaultEvent, process: str, slot: int, agent: Agent, how: Callable[[Agent], None]
) -> None:
    ctx.busy_slots.add(slot)
    try:
        await _start(ctx, event, agent, process)
        agent.planned_exit = True
        how(agent)
        if not await wait_exit(agent.alive, TERM_PATIENCE_S):
            agent.kill()
            await wait_exit(agent.alive, 5.0)
        # Once its whole tree is dead the journal is final: what it held at the kill, exactly (the aim only
        # saw a moment before the strike).
        held = consumer_state(agent.journal).held if how is Agent.kill else []
        await asyncio.sleep(event.duration_s)
        replacement = ctx.fleet.replace_consumer(slot)
        ctx.journal.record(process, OK, "fault", {"restarted": replacement.name, **({"held": held} if held else {})})
    finally:
        ctx.busy_slots.discard(slot)


@fault("kill")
async def kill(ctx: FaultContext, event: FaultEvent, process: str) -> None:
    """SIGKILL a consumer mid-work; a new one takes its slot after duration_s."""
    if victim := await _victim(ctx, event, process):
        await _down_then_replace(ctx, event, process, *victim, Agent.kill)


@fault("kill-main")
async def kill_main(ctx: FaultContext, event: FaultEvent, process: str) -> None:
    """SIGKILL only the consumer's main process (children live on); a new one takes its slot."""
    if victim := await _victim(ctx, event, process):
        await _down_then_replace(ctx, event, process, *victim, _kill_main)


def _kill_main(agent: Agent) -> None:
    agent.signal(signal.SIGKILL)


def _terminate(agent: Agent) -> None:
    agent.resume()  # a paused process must run to handle SIGTERM
    agent.signal(signal.SIGTERM)


@fault("kill-child")
async def kill_child(ctx: FaultContext, event: FaultEvent, process: str) -> None:
    """SIGKILL one child process of a hosted worker (a pool process, a work-horse); the worker stays.
    A child that runs a task is chosen when there is one, and the fault holds only that child's tasks."""
    victim = await _victim(ctx, event, process)
    if victim is None:
        return
    _, agent = victim
    await _aim(agent, event.aim)
    rng = random.Random(f"{ctx.plan.seed}:{process}")
    child, held = _choose_child(agent.children(), consumer_state(agent.journal).lanes, rng)
    ctx.journal.record(process, INVOKE, "fault", {"kind": event.kind, "target": agent.name, "held": held})
    if child is None:
        ctx.journal.record(process, INFO, "fault", {"error": "the worker has no child process"})
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(child, signal.SIGKILL)
    ctx.journal.record(process, OK, "fault", {"pid": child})


def _choose_child(children: list[int], lanes: dict[str, list[str]], rng: random.Random) -> tuple[int | None, list[str]]:
    """A child running a task if any (its pid is in the lanes holding tasks), else any child; with what it holds."""
    held_by_pid: dict[int, list[str]] = {}
    for lane, tids in lanes.items():
        parts = lane.rsplit(".", 2)
        if len(parts) == 3 and parts[1].isdigit():
            held_by_pid.setdefault(int(parts[1]), []).extend(tids)
    busy = [pid for pid in children if held_by_pid.get(pid)]
    if not children:
        return None, []
    child = rng.choice(busy or children)
    return child, held_by_pid.get(child, [])


@fault("term")
async def term(ctx: FaultContext, event: FaultEvent, process: str) -> None:
    """SIGTERM: the consumer settles what it holds and exits; replaced after duration_s."""
    if victim := await _victim(ctx, event, process):
        await _down_then_replace(ctx, event, process, *victim, _terminate)


@fault("pause")
async def pause(ctx: FaultContext, event: FaultEvent, process: str) -> None:
    """SIGSTOP for duration_s, then SIGCONT: past the visibility timeout its leases expire."""
    victim = await _victim(ctx, event, process)
    if victim is None:
        return
    slot, agent = victim
    ctx.busy_slots.add(slot)
    try:
        await _start(ctx, event, agent, process)
        agent.pause()
        held = consumer_state(agent.journal).held  # stopped: its journal stands still
        await asyncio.sleep(event.duration_s)
        agent.resume()
        ctx.journal.record(process, OK, "fault", {"held": held} if held else {})
    finally:
        ctx.busy_slots.discard(slot)
