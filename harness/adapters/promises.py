"""What a queue promises its users: the guarantees a verdict is read against.

Every adapter, pull or hosted, declares one. The checkers judge the scenario's expectations
(what a user needs); the report sets the queue's promise beside each result, so a task lost
when its worker was killed reads as "documented: at-most-once" or as a bug.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Delivery = Literal["at-least-once", "at-most-once"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Promises:
    """A queue's guarantees, with the defaults its users run."""

    # Whether a task whose worker dies mid-run runs again (at-least-once) or may be lost (at-most-once).
    delivery: Delivery = "at-least-once"
    # Strict priorities: a lower priority never starts while a higher one waits.
    priorities: bool = True
    # First in, first out within one priority.
    fifo: bool = True
    # Failed attempts are retried, up to the task's max_retries.
    retries: bool = True
    # Tasks out of attempts are kept in a dead-letter queue (or failed-job registry) that can be read.
    dlq: bool = True
    # An ack or fail from a worker whose lease moved on is refused.
    ownership_checked: bool = True
    # Running tasks have their lease renewed: no redelivery while the holder is alive and running.
    renews_lease: bool = False
    # After how long an unacknowledged task may be handed out again (None: never, or not by a timeout).
    visibility_timeout_s: float | None = None
    # The settings this promise holds under, in the library's own words ("acks_late=False, ...").
    defaults: str = ""
    # Anything a reader of the verdict needs to know: documented limits, the upstream issues.
    notes: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def promises_of(adapter: object) -> Promises:
    """The promises an adapter declares; an adapter that declares none is judged as taskq is."""
    found = getattr(adapter, "promises", None)
    return found if isinstance(found, Promises) else Promises()


# The harness's own agents give up on a reply after this long (harness.adapters.taskq_adapter).
DEFAULT_CLIENT_TIMEOUT_S = 5.0


def client_timeout_s(adapter: object) -> float:
    """How long the queue's clients wait for a reply before they call it lost (`socket_timeout_s` on
    the adapter): a fault that holds replies keeps them busy that long, and the drain must wait it out."""
    found = getattr(adapter, "socket_timeout_s", None)
    return float(found) if isinstance(found, int | float) else DEFAULT_CLIENT_TIMEOUT_S


# A hosted worker starts a task's handler this long after its library read it, at most (harness.checkers:
# priority and FIFO judge a start as a read over this window before it).
DEFAULT_READ_WINDOW_S = 0.25


def read_window_s(adapter: object) -> float:
    """`read_window_s` on the adapter: a library that forks a process per task (rq) starts later."""
    found = getattr(adapter, "read_window_s", None)
    return float(found) if isinstance(found, int | float) else DEFAULT_READ_WINDOW_S
