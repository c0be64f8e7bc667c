"""The nemesis: faults on a seeded schedule, each journaled with its start and end.

Fault kinds are a table from name to handler; each handler applies one fault,
journals `fault` invoke (with the tasks the victim held) and, when it is over,
`fault` ok.
"""

from harness.nemesis.base import FAULTS, FaultContext, heal, run_schedule

__all__ = ["FAULTS", "FaultContext", "heal", "run_schedule"]

from harness.nemesis import network, redis, topology, worker  # noqa: F401  importing them registers their faults
