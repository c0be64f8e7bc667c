"""QueueStats: what a queue holds and what it has done, read in one call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from taskq.task import TaskPriority

COUNTERS = (
    "tasks_added", "tasks_completed", "tasks_failed", "tasks_retried",
    "tasks_recovered", "tasks_dead", "groups_recreated",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class QueueStats:
    """`ready` counts tasks waiting for a first delivery; `pending` counts deliveries not yet settled."""

    ready: dict[TaskPriority, int]
    pending: dict[TaskPriority, int]
    delayed: int
    dead: int
    counters: dict[str, int]

    @classmethod
    def from_reply(cls, reply: list[Any]) -> QueueStats:
        lengths, pending = reply[0:4], reply[4:8]
        raw = reply[10:]
        counters = dict.fromkeys(COUNTERS, 0)
        counters.update({raw[i].decode(): int(raw[i + 1]) for i in range(0, len(raw), 2)})
        return cls(
            # Acked entries are deleted, so a stream holds exactly its unsettled tasks.
            ready={p: max(0, int(lengths[p]) - int(pending[p])) for p in TaskPriority},
            pending={p: int(pending[p]) for p in TaskPriority},
            delayed=int(reply[8]),
            dead=int(reply[9]),
            counters=counters,
        )

    @property
    def total_ready(self) -> int:
        return sum(self.ready.values())

    @property
    def total_pending(self) -> int:
        return sum(self.pending.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.counters,
            "ready": {p.name: n for p, n in self.ready.items()},
            "pending": {p.name: n for p, n in self.pending.items()},
            "total_ready": self.total_ready,
            "total_pending": self.total_pending,
            "delayed": self.delayed,
            "dlq_length": self.dead,
        }
