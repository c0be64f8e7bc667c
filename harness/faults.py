"""The fault kinds a scenario may name, and what each one aims at.

Data only: the nemesis registers a handler for each kind (harness/nemesis/), and
scenario files are checked against this table before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FaultKind:
    name: str
    # What the fault hits: "consumer" (one consumer process, chosen by the seed),
    # "redis" (the server), or "network" (the path between clients and Redis).
    role: str
    what: str

    @property
    def default_target(self) -> str:
        return {"consumer": "consumer", "redis": "redis", "network": "all"}[self.role]


FAULT_KINDS: dict[str, FaultKind] = {
    kind.name: kind
    for kind in (
        FaultKind("kill", "consumer", "SIGKILL a consumer; a new one takes its slot after duration_s"),
        FaultKind("pause", "consumer", "SIGSTOP a consumer for duration_s, then SIGCONT"),
        FaultKind("term", "consumer", "SIGTERM a consumer (graceful); a new one starts after duration_s"),
    )
}

# When a consumer fault strikes: once the victim holds tasks, while it settles them
# (an ack or fail in flight), or at once.
FAULT_AIMS = ("holding", "settling", "any")


def targets_for(kind: FaultKind, consumers: int) -> tuple[str, ...]:
    """The targets a fault of `kind` may name in a run with `consumers` consumer slots."""
    if kind.role == "consumer":
        return ("consumer", *(f"consumer-{i}" for i in range(consumers)))
    if kind.role == "network":
        return ("all", "consumers", "producers")
    return ("redis",)
