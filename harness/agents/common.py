"""What producers and consumers share: the command line, the stop signal, the workload draw."""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from harness.adapters import QueueClient, adapter_factory
from harness.adapters.base import AdapterUnavailable
from harness.plan import Plan

# The agents' Redis URL travels in the environment: a command line (and its password) is
# readable by every user of the machine through ps.
URL_ENV = "HARNESS_REDIS_URL"
# The pid of the runner that started an agent: an agent whose parent is another has lost its runner.
RUNNER_PID_ENV = "HARNESS_RUNNER_PID"


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentArgs:
    role: str
    plan: Plan
    index: int
    incarnation: int
    journal: Path
    url: str
    journaling: bool

    @property
    def name(self) -> str:
        return f"{self.role}-{self.index}" + (f"#{self.incarnation}" if self.role == "consumer" else "")


def parse_args(argv: list[str] | None = None) -> AgentArgs:
    parser = argparse.ArgumentParser(prog="python -m harness.agents", description="A harness agent process.")
    parser.add_argument("role", choices=["producer", "consumer"])
    parser.add_argument("--plan", type=Path, required=True)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--incarnation", type=int, default=1)
    parser.add_argument("--journal", type=Path, required=True)
    parser.add_argument("--url", default=os.environ.get(URL_ENV), help=f"Redis URL (default: ${URL_ENV})")
    parser.add_argument("--no-journal", action="store_true", help="Measure without recording (benchmarks).")
    ns = parser.parse_args(argv)
    if not ns.url:
        parser.error(f"no Redis URL: pass --url or set {URL_ENV}")
    return AgentArgs(
        role=ns.role, plan=Plan.load(ns.plan), index=ns.index, incarnation=ns.incarnation,
        journal=ns.journal, url=ns.url, journaling=not ns.no_journal,
    )  # fmt: skip


def stop_event() -> asyncio.Event:
    """Set by SIGTERM or SIGINT: finish what is in hand, then exit."""
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, event.set)
    return event


async def connect(args: AgentArgs, stop: asyncio.Event) -> QueueClient | None:
    """Connect, retrying while Redis is away; None if told to stop first."""
    adapter = adapter_factory(args.plan.queue)()
    delay = 0.05
    while not stop.is_set():
        try:
            await adapter.connect(args.url, args.plan.queue_name, args.plan.scenario.queue)
            return adapter
        except AdapterUnavailable:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
    return None


READY_SUFFIX = ".ready"
# How long producers wait for every consumer to connect before they start anyway.
READY_WAIT_S = 10.0


def mark_ready(journal: Path) -> None:
    """An agent is connected and about to work: a file beside its journal says so (consumers to the
    producers, everyone to the runner, which starts the fault schedule's clock once all are)."""
    journal.with_name(journal.name.removesuffix(".jsonl") + READY_SUFFIX).touch()


async def consumers_ready(journal: Path, consumers: int, stop: asyncio.Event, timeout_s: float = READY_WAIT_S) -> None:
    """Until `consumers` consumers are connected (or the timeout): the load starts when someone can
    serve it, so the agents' own start-up is not counted as the queue's latency."""
    deadline = time.monotonic() + timeout_s
    while not stop.is_set() and time.monotonic() < deadline:
        if sum(1 for _ in journal.parent.glob(f"consumer-*{READY_SUFFIX}")) >= consumers:
            return
        await asyncio.sleep(0.01)


def attempt_fails(seed: int, tid: str, attempt: int, probability: float) -> bool:
    """Whether the handler fails this attempt: fixed by the seed, so a replay fails the same ones."""
    return probability > 0 and random.Random(f"{seed}:{tid}:{attempt}").random() < probability
