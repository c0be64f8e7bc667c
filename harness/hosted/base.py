"""The hosted adapter protocol: the consumer process is the queue's own worker.

A hosted adapter is a QueueClient (producers enqueue and the runner reads the final state
through the library's own client API) that also says how to start the library's worker
process, pointed at the run's Redis and queue, running the harness's journaling handler
(harness.hosted.handler). Everything else is the library's decision: acking, retries and
backoff, reclaim, dead-lettering.

The fleet starts, kills, pauses and restarts these processes like consumer agents; what it
hands the adapter is a WorkerLaunch, and what it gets back is a WorkerCommand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeGuard, runtime_checkable

from harness.adapters.base import QueueClient, QueueOptions, TaskSpec
from harness.adapters.promises import Promises

# What the fleet puts in every hosted worker's environment (the handler reads them back).
PLAN_ENV = "HARNESS_PLAN"
JOURNAL_ENV = "HARNESS_JOURNAL"
PROCESS_ENV = "HARNESS_PROCESS"
QUEUE_NAME_ENV = "HARNESS_QUEUE_NAME"
# Marks every process of one worker's tree, however it forks, re-groups or is re-parented:
# the fleet finds a worker's children by it (harness.processes).
TREE_ENV = "HARNESS_WORKER_TREE"


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkerLaunch:
    """One worker process to start: which slot and incarnation, and where the run is."""

    process: str  # the logical process, "consumer-2#3"; its handlers journal as "consumer-2#3.<lane>"
    journal: Path
    plan_path: Path
    folder: Path  # the run folder, for files a library wants (a config module, a socket)
    url: str
    queue_name: str
    options: QueueOptions
    concurrency: int  # tasks the worker runs at once

    @property
    def consumer_name(self) -> str:
        """A name the library may use for the worker or consumer (no '#': some libraries reject it)."""
        return self.process.replace("#", "-")


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkerCommand:
    """How to start the worker: its argv and the environment it needs beyond the fleet's."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class HostedAdapter(QueueClient, Protocol):
    """A queue whose consumers are its own worker processes."""

    promises: Promises

    def worker(self, launch: WorkerLaunch) -> WorkerCommand:
        """The command that starts one worker process for `launch`."""
        ...


def hosted_payload(task: TaskSpec) -> dict[str, object]:
    """The payload a hosted adapter enqueues: the task's own, plus its priority and retry budget, so
    the handler can journal what it received without asking the library."""
    return {**task.payload, "prio": task.priority, "max_retries": task.max_retries}


def is_hosted(adapter: object) -> TypeGuard[HostedAdapter]:
    return callable(getattr(adapter, "worker", None)) and isinstance(getattr(adapter, "promises", None), Promises)
