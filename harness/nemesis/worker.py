"""Faults on consumer processes: SIGKILL, SIGSTOP/SIGCONT, SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import time

from harness.faults import RECLAIMER
from harness.fleet import Agent, consumer_state
from harness.history import INFO, INVOKE, OK
from harness.nemesis.base import FaultContext, fault, wait_exit
from harness.plan import FaultEvent

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


async def _aim(agent: Agent, aim: str, patience_s: float = 1.0) -> list[str]:
    """Wait (briefly) until the victim is where the fault should hit; returns what it holds.

    A consumer spends part of its time waiting for work, and striking then proves
    nothing: "holding" waits until it holds tasks, "settling" until an ack or fail
    is in flight (where a two-step settle can be split), "failing" until a fail is.
    After `patience_s` it strikes anyway.
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
    ctx: FaultContext, event: FaultEvent, process: str, slot: int, agent: Agent, sig: signal.Signals
) -> None:
    ctx.busy_slots.add(slot)
    try:
        await _start(ctx, event, agent, process)
        agent.planned_exit = True
        agent.signal(signal.SIGCONT)  # a paused process must run to handle SIGTERM
        agent.signal(sig)
        if not await wait_exit(agent.alive, 15.0):
            agent.signal(signal.SIGKILL)
            await wait_exit(agent.alive, 5.0)
        await asyncio.sleep(event.duration_s)
        replacement = ctx.fleet.replace_consumer(slot)
        ctx.journal.record(process, OK, "fault", {"restarted": replacement.name})
    finally:
        ctx.busy_slots.discard(slot)


@fault("kill")
async def kill(ctx: FaultContext, event: FaultEvent, process: str) -> None:
    """SIGKILL a consumer mid-work; a new one takes its slot after duration_s."""
    if victim := await _victim(ctx, event, process):
        await _down_then_replace(ctx, event, process, *victim, signal.SIGKILL)


@fault("term")
async def term(ctx: FaultContext, event: FaultEvent, process: str) -> None:
    """SIGTERM: the consumer settles what it holds and exits; replaced after duration_s."""
    if victim := await _victim(ctx, event, process):
        await _down_then_replace(ctx, event, process, *victim, signal.SIGTERM)


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
        agent.signal(signal.SIGSTOP)
        await asyncio.sleep(event.duration_s)
        agent.signal(signal.SIGCONT)
        ctx.journal.record(process, OK, "fault", {})
    finally:
        ctx.busy_slots.discard(slot)
