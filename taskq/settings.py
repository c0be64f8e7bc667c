"""QueueSettings: every knob of a queue, validated once, frozen."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

from taskq.codec import codec_tag
from taskq.errors import ConfigError
from taskq.keys import QueueKeys


@dataclass(frozen=True, kw_only=True, slots=True)
class QueueSettings:
    """Settings of one queue. Durations carry their unit in the name."""

    name: str = "tasks"
    group: str = "taskq"
    # Visibility timeout: a delivery idle this long may be reclaimed by another consumer.
    pending_timeout_s: float = 30.0
    batch_size: int = 10
    # Retry delay: base * 2**retry_count, capped, with "equal jitter" (between half and all of it).
    retry_base_delay_s: float = 1.0
    retry_max_delay_s: float = 300.0
    # Deliveries that never end in ack or fail (the worker died) before the task is dead-lettered.
    delivery_cap: int = 5
    max_payload_bytes: int = 1 << 20
    codec: str = "json"
    # Longest single blocking wait for new tasks; also bounds how late a reclaim can run.
    block_ms: int = 1000
    promote_limit: int = 100
    socket_timeout_s: float = 10.0
    # Injected clock (epoch ms) for due times; None means Redis server time.
    clock_ms: Callable[[], int] | None = None
    # Durability: after each enqueue, ack, fail (and DLQ burial), WAIT until this many replicas have
    # the write, at most replica_wait_timeout_ms; fewer raises ReplicationTimeout (nothing is rolled
    # back). 0: no waiting, as on a single server.
    replicas_to_wait: int = 0
    replica_wait_timeout_ms: int = 1000

    def __post_init__(self) -> None:
        QueueKeys(self.name)
        codec_tag(self.codec)
        positive = {
            "pending_timeout_s": self.pending_timeout_s, "batch_size": self.batch_size,
            "delivery_cap": self.delivery_cap, "max_payload_bytes": self.max_payload_bytes,
            "socket_timeout_s": self.socket_timeout_s, "promote_limit": self.promote_limit,
        }  # fmt: skip
        for option, value in positive.items():
            if not value > 0:
                raise ConfigError(f"{option} must be positive, got {value!r}")
        for option, value in {"retry_base_delay_s": self.retry_base_delay_s, "block_ms": self.block_ms}.items():
            if not value >= 0:  # written so that NaN fails too
                raise ConfigError(f"{option} must be zero or positive, got {value!r}")
        if not self.retry_max_delay_s >= self.retry_base_delay_s:
            raise ConfigError("retry_max_delay_s must be at least retry_base_delay_s")
        if self.block_ms >= self.socket_timeout_s * 1000:
            raise ConfigError(
                f"block_ms ({self.block_ms}) must be below socket_timeout_s ({self.socket_timeout_s} s), "
                "or every idle blocking read ends in a socket timeout"
            )
        if not self.replicas_to_wait >= 0:
            raise ConfigError(f"replicas_to_wait must be zero or positive, got {self.replicas_to_wait!r}")
        if not self.replica_wait_timeout_ms > 0:
            # WAIT with 0 blocks forever: a dead replica would hang every write.
            raise ConfigError(f"replica_wait_timeout_ms must be positive, got {self.replica_wait_timeout_ms!r}")
        if not self.group:
            raise ConfigError("group must be a non-empty consumer group name")

    @property
    def reclaim_interval_s(self) -> float:
        """How often consumers look for deliveries whose lease expired."""
        return max(0.05, self.pending_timeout_s / 4)

    @classmethod
    def option_names(cls) -> frozenset[str]:
        return frozenset(f.name for f in fields(cls))
