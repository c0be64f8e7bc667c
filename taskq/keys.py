"""Every Redis key name of a queue, and nothing else.

All keys of one queue share the hash tag ``{name}``, so a queue lives in one Redis
Cluster slot and every multi-key transition can be a single atomic function call.
"""

from __future__ import annotations

from dataclasses import dataclass

from taskq.errors import ConfigError

PRIORITY_COUNT = 4
_FORBIDDEN_NAME_CHARS = frozenset("{}")


@dataclass(frozen=True, slots=True)
class QueueKeys:
    """Key names of the queue called `name`."""

    name: str

    def __post_init__(self) -> None:
        if not self.name or _FORBIDDEN_NAME_CHARS & set(self.name):
            raise ConfigError(f"queue name {self.name!r} is invalid: use a non-empty name without '{{' or '}}'")

    @property
    def prefix(self) -> str:
        return f"taskq:{{{self.name}}}"

    def stream(self, priority: int) -> str:
        """The ready stream of one priority (0 = CRITICAL .. 3 = LOW)."""
        return f"{self.prefix}:p{priority}"

    @property
    def streams(self) -> tuple[str, ...]:
        return tuple(self.stream(p) for p in range(PRIORITY_COUNT))

    @property
    def delayed(self) -> str:
        return f"{self.prefix}:delayed"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}:dlq"

    @property
    def stats(self) -> str:
        return f"{self.prefix}:stats"

    @property
    def function_keys(self) -> tuple[str, ...]:
        """The KEYS every function of taskq.lua takes, in its order."""
        return (*self.streams, self.delayed, self.dlq, self.stats)
