"""Bringing consumers up: the load starts once every consumer (the harness's own agents, or a library's
hosted workers) is ready, and one that dies on the way fails the run's setup with its own last words (a
hosted worker's log, or the agents' log), not a hung run."""

from __future__ import annotations

import asyncio
import time

from harness.agents.common import READY_SUFFIX
from harness.errors import SetupError
from harness.fleet import Agent, Fleet

# Libraries that fork pools or import much (celery, dramatiq) take seconds to start on a busy machine.
WORKER_START_TIMEOUT_S = 60.0
LOG_LINES = 3


def _ready(agent: Agent) -> bool:
    return agent.journal.with_name(agent.journal.name.removesuffix(".jsonl") + READY_SUFFIX).exists()


def log_tail(agent: Agent, lines: int = LOG_LINES) -> str:
    """The last lines its worker wrote: for a worker that would not start, the library's own error."""
    log = agent.log or agent.journal.parent.parent / "agents.log"  # the harness's own agents share one log
    if not log.exists():
        return "(no log)"
    text = log.read_text(errors="replace").strip().splitlines()
    return " | ".join(line.strip() for line in text[-lines:]) or "(empty log)"


async def workers_up(fleet: Fleet, timeout_s: float = WORKER_START_TIMEOUT_S) -> None:
    """Until every consumer slot's worker said it is ready. SetupError if one exits first, or the wait
    runs out, naming the worker and quoting its log."""
    await agents_up(list(fleet.consumers.values()), timeout_s)


async def agents_up(agents: list[Agent], timeout_s: float = WORKER_START_TIMEOUT_S) -> None:
    """Until every one of `agents` said it is ready (see workers_up)."""
    deadline = time.monotonic() + timeout_s
    while True:
        waiting = [agent for agent in agents if not _ready(agent)]
        if not waiting:
            return
        for agent in waiting:
            if not agent.alive():
                agent.planned_exit = True
                raise SetupError(
                    f"worker {agent.name} exited with code {agent.process.returncode} before it was ready: "
                    f"{log_tail(agent)} (full log: {agent.log or 'agents.log'})"
                )
        if time.monotonic() > deadline:
            raise SetupError(
                f"worker {waiting[0].name} was not ready after {timeout_s:g} s: {log_tail(waiting[0])} "
                f"(full log: {waiting[0].log})"
            )
        await asyncio.sleep(0.05)
