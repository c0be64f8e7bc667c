"""Every error taskq raises, one tree under TaskqError.

    TaskqError
    ├── ConfigError            a setting or argument is invalid (also a ValueError)
    ├── PayloadError           a payload cannot be stored (also a ValueError)
    │   └── PayloadTooLarge    the encoded payload is over the configured limit
    ├── DecodeError            a stream entry is not a readable taskq task
    ├── ReceiptError           a receipt string is malformed (also a ValueError)
    ├── LeaseLost              ack/fail refused: the delivery is no longer yours
    ├── WrongKeyType           a queue key holds another Redis type
    ├── NotConnected           the queue was used before connect()
    ├── RedisUnavailable       Redis could not be reached; a write's outcome is unknown
    └── ReplicationTimeout     a write stands on the primary, but fewer replicas than asked confirmed it

Every message says what was wrong and what to do about it.
"""

from __future__ import annotations

from typing import Any


class TaskqError(Exception):
    """Base of every taskq error."""


class ConfigError(TaskqError, ValueError):
    """A setting or argument is invalid."""


class PayloadError(TaskqError, ValueError):
    """A payload cannot be encoded for storage."""


class PayloadTooLarge(PayloadError):
    """The encoded payload is larger than `max_payload_bytes`."""


class DecodeError(TaskqError):
    """A stream entry is not a task taskq can read (foreign, truncated or corrupt)."""


class ReceiptError(TaskqError, ValueError):
    """A receipt string does not have taskq's receipt format."""


class LeaseLost(TaskqError):
    """An ack or fail was refused because the delivery is no longer owned.

    Either the lease expired and another consumer took the task over, or the
    delivery was already settled (acked, failed, or lost with its consumer group).
    """

    def __init__(self, receipt: str, reason: str) -> None:
        self.receipt = receipt
        self.reason = reason
        super().__init__(
            f"delivery {receipt} is no longer yours ({reason}); nothing was changed. "
            "Renew leases of long tasks or raise pending_timeout so they are not taken over."
        )


class WrongKeyType(TaskqError):
    """A key of the queue exists with a type taskq does not use for it."""


class NotConnected(TaskqError):
    """The queue was used before `await queue.connect()` (or after disconnect)."""


class RedisUnavailable(TaskqError):
    """Redis could not be reached or did not answer in time.

    For writes the outcome is unknown: the command may or may not have run.
    """


class ReplicationTimeout(TaskqError):
    """A write transition ran on the primary, but WAIT saw fewer replicas confirm it than
    `replicas_to_wait` within `replica_wait_timeout_ms`.

    Nothing was rolled back (WAIT cannot): `result` is what the call returned (the enqueue's
    count, the ack's outcomes). The write is durable only as far as the replicas that have it:
    a failover to a replica without it loses it (an enqueue vanishes, an ack is undone and its
    task runs again). Treat the outcome like an unanswered write: do not resend an enqueue.
    """

    def __init__(self, function: str, confirmed: int, wanted: int, timeout_ms: int, result: Any) -> None:
        self.function, self.confirmed, self.wanted, self.result = function, confirmed, wanted, result
        super().__init__(
            f"{function} ran on the primary, but only {confirmed} of the {wanted} replica(s) asked for confirmed "
            f"it within {timeout_ms} ms; it was not rolled back, and a failover before the replicas catch up "
            "may lose it: check the replicas, or lower replicas_to_wait"
        )
