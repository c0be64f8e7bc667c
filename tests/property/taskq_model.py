"""What taskq promises, as plain Python: the model tests/property/test_taskq_stateful.py holds Redis to.

Every task is in exactly one state: ready (in its priority stream, not delivered), delayed (a
retry or a scheduled task waiting for its due time), held (delivered to one consumer under one
lease), completed, or dead (in the DLQ). Each transition below says what one call of TaskQueue
does to the tasks it touches and what it answers; refusals (Outcome.LEASE_LOST, NOT_PENDING)
change nothing. The model never talks to Redis: the state machine feeds it what it cannot know
(entry ids handed out by XADD, due times that carry the queue's random jitter) and compares.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from taskq import Outcome, Receipt
from taskq.stats import COUNTERS

READY, DELAYED, HELD, COMPLETED, DEAD = "ready", "delayed", "held", "completed", "dead"
PRIORITIES = range(4)


def entry_order(entry_id: str) -> tuple[int, int]:
    """Stream entry ids sort by (milliseconds, sequence), not as text."""
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


def cap_reason(deliveries: int) -> str:
    return f"delivery cap: delivered {deliveries} times, never acked nor failed"


@dataclass(frozen=True)
class AttemptError:
    """One failed attempt, as taskq records it in the task's `errors` field."""

    attempt: int
    error: str
    consumer: str
    at_ms: int


@dataclass
class Lease:
    receipt: Receipt
    expired: bool = False  # idle past the visibility timeout: reclaim may take it


@dataclass
class ModelTask:
    task_id: str
    priority: int
    max_retries: int
    retry_count: int = 0
    errors: list[AttemptError] = field(default_factory=list)
    state: str = READY
    # READY: position in its stream. Tasks that entered in one promote with one due time share
    # a position, as their order among each other is not something the queue promises.
    ready_seq: int = 0
    due_ms: int | None = None  # DELAYED; None until the state machine read the jittered due time
    lease: Lease | None = None  # HELD
    # DEAD: why, from which stream entry, when, and the order of the DLQ entries
    reason: str = ""
    origin_entry_id: str = ""
    dead_at_ms: int = 0
    dead_seq: int = 0


class QueueModel:
    """The queue's state and counters, changed one TaskQueue call at a time."""

    def __init__(self, *, now_ms: int, delivery_cap: int, retry_at_once: bool = False) -> None:
        self.now_ms = now_ms
        self.delivery_cap = delivery_cap
        self.retry_at_once = retry_at_once  # a zero retry delay: retries go straight back to their stream
        self.tasks: dict[str, ModelTask] = {}
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.stale: list[Receipt] = []  # receipts of leases that ended: settled, released or taken over
        self._pending: dict[tuple[int, str], ModelTask] = {}  # (priority, entry id) -> held task
        self._seq = 0

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # -- queries ------------------------------------------------------------------------------------

    def in_state(self, state: str) -> list[ModelTask]:
        return [t for t in self.tasks.values() if t.state == state]

    def ready(self, priority: int) -> list[ModelTask]:
        return sorted((t for t in self.in_state(READY) if t.priority == priority), key=lambda t: t.ready_seq)

    def dead(self) -> list[ModelTask]:
        """Tasks in the DLQ, in DLQ order."""
        return sorted(self.in_state(DEAD), key=lambda t: t.dead_seq)

    def leases(self) -> list[Receipt]:
        return [t.lease.receipt for t in self.in_state(HELD) if t.lease is not None]

    def leases_of(self, consumer: str) -> list[Receipt]:
        return [r for r in self.leases() if r.consumer == consumer]

    def lease_status(self, receipt: Receipt, consumer: str | None = None) -> tuple[ModelTask | None, Outcome]:
        """Who owns the delivery a receipt names: (the task, DONE) for its owner, else a refusal."""
        task = self._pending.get((receipt.priority, receipt.entry_id))
        if task is None or task.lease is None:
            return None, Outcome.NOT_PENDING
        lease = task.lease.receipt
        if lease.consumer != (consumer or receipt.consumer) or lease.deliveries != receipt.deliveries:
            return None, Outcome.LEASE_LOST
        return task, Outcome.DONE

    # -- transitions -----------------------------------------------------------------------------------

    def enqueue(self, specs: Iterable[tuple[str, int, int]], due_ms: int | None) -> None:
        """Add tasks (id, priority, max_retries): ready in order, or delayed until due_ms."""
        for task_id, priority, max_retries in specs:
            task = ModelTask(task_id, priority, max_retries)
            if due_ms is None:
                task.ready_seq = self._next_seq()
            else:
                task.state, task.due_ms = DELAYED, due_ms
            self.tasks[task_id] = task
            self.counters["tasks_added"] += 1

    def promote(self) -> int:
        """Move every delayed task that is due to its stream, earliest due time first."""
        due = sorted((t for t in self.in_state(DELAYED) if t.due_ms is not None and t.due_ms <= self.now_ms),
                     key=lambda t: t.due_ms or 0)  # fmt: skip
        seq_of: dict[int, int] = {}
        for task in due:
            assert task.due_ms is not None
            task.state, task.ready_seq = READY, seq_of.setdefault(task.due_ms, self._next_seq())
            task.due_ms = None
        return len(due)

    def read_counts(self, count: int) -> list[int]:
        """How many tasks of each priority a read of `count` must deliver: strict priority."""
        counts = []
        for priority in PRIORITIES:
            take = min(count, len(self.ready(priority)))
            counts.append(take)
            count -= take
        return counts

    def deliver(self, task: ModelTask, receipt: Receipt) -> None:
        task.state, task.lease = HELD, Lease(receipt)
        self._pending[(receipt.priority, receipt.entry_id)] = task

    def _end_lease(self, task: ModelTask) -> Receipt:
        assert task.lease is not None
        receipt = task.lease.receipt
        del self._pending[(receipt.priority, receipt.entry_id)]
        task.lease = None
        self.stale.append(receipt)
        return receipt

    def _dead_letter(self, task: ModelTask, reason: str, entry_id: str) -> None:
        task.state, task.reason, task.origin_entry_id = DEAD, reason, entry_id
        task.dead_at_ms, task.dead_seq = self.now_ms, self._next_seq()
        self.counters["tasks_dead"] += 1

    def ack(self, receipt: Receipt) -> Outcome:
        task, outcome = self.lease_status(receipt)
        if task is not None:
            self._end_lease(task)
            task.state = COMPLETED
            self.counters["tasks_completed"] += 1
        return outcome

    def fail(self, receipt: Receipt, message: str) -> Outcome:
        """Retry or, out of retries, dead-letter. A delayed retry's due time is left for the caller."""
        task, outcome = self.lease_status(receipt)
        if task is None:
            return outcome
        self._end_lease(task)
        task.errors.append(AttemptError(task.retry_count + 1, message, receipt.consumer, self.now_ms))
        self.counters["tasks_failed"] += 1
        if task.retry_count < task.max_retries:
            task.retry_count += 1
            if self.retry_at_once:
                task.state, task.ready_seq = READY, self._next_seq()
            else:
                task.state, task.due_ms = DELAYED, None
            self.counters["tasks_retried"] += 1
            return Outcome.RETRIED
        self._dead_letter(task, f"retries exhausted: {message}", receipt.entry_id)
        return Outcome.DEAD

    def renew(self, receipt: Receipt, consumer: str) -> Outcome:
        task, outcome = self.lease_status(receipt, consumer)
        if task is not None and task.lease is not None:
            task.lease.expired = False
        return outcome

    def release(self, receipt: Receipt, consumer: str) -> Outcome:
        """Back to the end of its stream as a fresh entry, retry count and errors unchanged."""
        task, outcome = self.lease_status(receipt, consumer)
        if task is not None:
            self._end_lease(task)
            task.state, task.ready_seq = READY, self._next_seq()
        return outcome

    def expire(self, consumer: str) -> list[Receipt]:
        """The visibility timeout passes for everything `consumer` holds; returns those leases."""
        held = [t.lease for t in self.in_state(HELD) if t.lease is not None and t.lease.receipt.consumer == consumer]
        for lease in held:
            lease.expired = True
        return [lease.receipt for lease in held]

    def reclaim(self, consumer: str, count: int) -> list[tuple[ModelTask, Receipt]]:
        """Take over expired leases, highest priority first and in entry order within a stream.

        Per stream, the first `count` expired entries (count as it stands when the stream is
        reached) are looked at: those delivered delivery_cap times go to the DLQ with a cap
        error, the others are claimed while count lasts. An entry delivered twice or more is
        handed out alone: only as the first of a batch, and it ends the batch.
        """
        claimed: list[tuple[ModelTask, Receipt]] = []
        for priority in PRIORITIES:
            if count <= 0:
                break
            expired = [t for t in self.in_state(HELD) if t.priority == priority and t.lease and t.lease.expired]
            expired.sort(key=lambda t: entry_order(t.lease.receipt.entry_id if t.lease else "0-0"))
            for task in expired[:count]:
                assert task.lease is not None
                lease = task.lease.receipt
                if lease.deliveries >= self.delivery_cap:
                    self._end_lease(task)
                    reason = cap_reason(lease.deliveries)
                    task.errors.append(AttemptError(task.retry_count + 1, reason, lease.consumer, self.now_ms))
                    self._dead_letter(task, reason, lease.entry_id)
                elif count > 0 and not (lease.deliveries >= 2 and claimed):
                    self._end_lease(task)
                    receipt = Receipt(priority, lease.entry_id, lease.deliveries + 1, consumer)
                    self.deliver(task, receipt)
                    self.counters["tasks_recovered"] += 1
                    claimed.append((task, receipt))
                    count = 0 if lease.deliveries >= 2 else count - 1
        return claimed

    def requeue(self, task: ModelTask) -> None:
        """Out of the DLQ to the end of its stream with a fresh retry budget and no errors."""
        assert task.state == DEAD
        task.state, task.ready_seq = READY, self._next_seq()
        task.retry_count, task.errors = 0, []
        task.reason, task.origin_entry_id, task.dead_at_ms = "", "", 0
