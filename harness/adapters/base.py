"""The adapter protocols: how the harness drives one queue implementation.

Two kinds share QueueClient (enqueue, depth, final state): a pull adapter (QueueAdapter) also
reads, acks and fails for the harness's own consumer agents; a hosted adapter
(harness.hosted.HostedAdapter) instead starts the queue's own worker process. An adapter is
built by a factory (`module:factory` on the command line) and used by one process at a time.
Methods raise AdapterUnavailable when the outcome is unknown (connection lost, timeout), so
the agent records `info`, never `fail`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from harness.errors import HarnessError


class AdapterUnavailable(HarnessError):
    """The queue could not be reached; the operation's outcome is unknown."""


class AdapterRefused(HarnessError):
    """The queue refused the operation; it certainly did not happen (e.g. payload too large)."""


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A task as the producer offers it. `payload` carries "tid" (the id again) and the work to simulate."""

    tid: str
    priority: int
    max_retries: int
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Delivered:
    """A task as a consumer received it. `handle` is the adapter's own token for ack/fail
    (for taskq adapters: the taskq Delivery, with its receipt)."""

    tid: str
    priority: int
    attempt: int
    max_retries: int
    deliveries: int
    payload: dict[str, Any]
    handle: Any
    # How many attempt errors the task carries, when the queue stores them with it (None: it does not say).
    errors: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class QueueOptions:
    """Queue settings a scenario may set; an adapter maps them onto its queue."""

    pending_timeout_s: float = 2.0
    retry_base_delay_s: float = 0.0
    retry_max_delay_s: float = 1.0
    delivery_cap: int = 5
    block_ms: int = 100
    # Hosted workers: how long a SIGTERMed worker lets running tasks finish before it hands them back.
    shutdown_timeout_s: float = 10.0
    # Durability: WAIT for this many replicas after each enqueue, ack and fail (0: none), at most the timeout.
    replicas_to_wait: int = 0
    replica_wait_timeout_ms: int = 1000
    # Tasks spread over this many queues (by task id), each with a hash tag of its own: on a cluster,
    # over the shards. The first is the run's queue name; consumers serve all of them.
    queues: int = 1


@dataclass(frozen=True, kw_only=True, slots=True)
class FinalState:
    """What the queue holds after the drain (see harness.history, f="final")."""

    ready: list[tuple[str, int]] = field(default_factory=list)
    pending: list[tuple[str, int, str]] = field(default_factory=list)
    delayed: list[str] = field(default_factory=list)
    # (tid, reason, attempts, errors); -1 for attempts or errors the queue does not record.
    dead: list[tuple[str, str, int, int]] = field(default_factory=list)
    acked_not_deleted: list[str] = field(default_factory=list)
    foreign: int = 0
    stats: dict[str, Any] = field(default_factory=dict)

    def as_value(self) -> dict[str, Any]:
        return {
            "ready": self.ready, "pending": self.pending, "delayed": self.delayed, "dead": self.dead,
            "acked_not_deleted": self.acked_not_deleted, "foreign": self.foreign, "stats": self.stats,
        }  # fmt: skip


@runtime_checkable
class QueueClient(Protocol):
    """What producers and the runner need of any queue, pull or hosted: enqueue, and read its state."""

    name: str

    async def connect(self, url: str, queue_name: str, options: QueueOptions) -> None: ...

    async def close(self) -> None: ...

    async def enqueue(self, tasks: list[TaskSpec]) -> None:
        """Add the tasks. AdapterRefused: none was added; AdapterUnavailable: unknown."""
        ...

    async def depth(self) -> dict[str, int]:
        """Counts for progress and drain: at least "ready", "pending", "delayed"; "dead" and "completed" where
        the queue counts them cheaply (this is read every 0.2 s)."""
        ...

    async def final_state(self) -> FinalState: ...


@runtime_checkable
class QueueAdapter(QueueClient, Protocol):
    """A pull queue: the harness's own consumer agents read, ack and fail through it."""

    async def consume(self, consumer: str, count: int) -> list[Delivered]:
        """Up to `count` tasks for `consumer`, including ones reclaimed from dead consumers."""
        ...

    async def complete(self, consumer: str, delivered: list[Delivered]) -> list[bool]:
        """Ack; per task True if acked, False if refused (lease lost)."""
        ...

    async def fail(self, consumer: str, failed: list[tuple[Delivered, str]]) -> list[str]:
        """Report failed attempts; per task "retried", "dead" or "refused"."""
        ...
