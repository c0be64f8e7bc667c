"""Running a fault schedule, and healing afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field

from harness.fleet import Fleet
from harness.history import Journal
from harness.plan import FaultEvent, Plan
from harness.providers.base import Provider

NEMESIS = "nemesis"


@dataclass
class FaultContext:
    fleet: Fleet
    journal: Journal
    provider: Provider
    plan: Plan
    # Tasks completed so far (a barrier for faults planned by progress, not time).
    completed: Callable[[], Awaitable[int]]
    # Slots a fault has taken down and will bring back itself.
    busy_slots: set[int] = field(default_factory=set)
    applied: int = 0


# A handler applies one fault and journals it under `process` (one logical process per
# fault, so overlapping faults pair their start and end unambiguously).
FaultHandler = Callable[[FaultContext, FaultEvent, str], Coroutine[None, None, None]]
FAULTS: dict[str, FaultHandler] = {}


def fault(kind: str) -> Callable[[FaultHandler], FaultHandler]:
    def register(handler: FaultHandler) -> FaultHandler:
        FAULTS[kind] = handler
        return handler

    return register


async def run_schedule(ctx: FaultContext, start: float, stop: asyncio.Event) -> None:
    """Apply each planned fault when its time or barrier comes (faults may overlap);
    return when all have ended. Faults not yet triggered when `stop` is set never run."""
    await asyncio.gather(
        *(_when_due(ctx, event, f"{NEMESIS}-{n}", start, stop) for n, event in enumerate(ctx.plan.faults))
    )


async def _when_due(ctx: FaultContext, event: FaultEvent, process: str, start: float, stop: asyncio.Event) -> None:
    if event.at_s is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, start + event.at_s - time.monotonic()))
            return  # the load phase ended first
    else:
        while await ctx.completed() < (event.after_completed or 0):
            if stop.is_set():
                return
            await asyncio.sleep(0.01)
    ctx.applied += 1
    await FAULTS[event.kind](ctx, event, process)


async def heal(ctx: FaultContext) -> None:
    """Bring every consumer slot back: resume the paused, replace the dead."""
    for slot, agent in list(ctx.fleet.consumers.items()):
        if agent.alive():
            agent.resume()
        elif slot not in ctx.busy_slots:
            ctx.fleet.replace_consumer(slot)


async def wait_exit(process_alive: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while process_alive():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True
