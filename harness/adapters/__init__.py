"""Adapters: the protocols for driving a queue, the reference taskq, and its mutants.

A queue is named on the command line as `taskq`, `taskq-mutant:NAME`, `raw` (the
plain redis-py ceiling taskq is measured against), `taskq-worker` (taskq's own worker
process, hosted), `peer:NAME[:VARIANT]` (another library's worker, hosted: harness.peers),
or `module:factory` for your own (a callable returning a QueueAdapter or a HostedAdapter).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from harness.adapters.base import (
    AdapterRefused,
    AdapterUnavailable,
    Delivered,
    FinalState,
    QueueAdapter,
    QueueClient,
    QueueOptions,
    TaskSpec,
)
from harness.adapters.mutants import MUTANTS
from harness.adapters.raw import RawAdapter
from harness.adapters.taskq_adapter import TaskqAdapter
from harness.errors import AdapterError

MUTANT_PREFIX = "taskq-mutant:"
PEER_PREFIX = "peer:"
TASKQ_WORKER = "taskq-worker"

__all__ = [
    "MUTANTS",
    "AdapterRefused",
    "AdapterUnavailable",
    "Delivered",
    "FinalState",
    "QueueAdapter",
    "QueueClient",
    "QueueOptions",
    "RawAdapter",
    "TaskSpec",
    "TaskqAdapter",
    "adapter_factory",
]


def adapter_factory(spec: str) -> Callable[[], QueueClient]:
    """The factory for `spec`; raises AdapterError with the choices when unknown."""
    if spec == "taskq":
        return TaskqAdapter
    # Hosted adapters are imported when named: they import the agents' code, which imports this package.
    if spec == TASKQ_WORKER:
        from harness.hosted.taskq_worker import TaskqWorkerAdapter  # noqa: PLC0415

        return TaskqWorkerAdapter
    if spec.startswith(PEER_PREFIX):
        from harness.peers import peer_factory  # noqa: PLC0415

        return peer_factory(spec.removeprefix(PEER_PREFIX))
    if spec == "raw":
        return RawAdapter
    if spec.startswith(MUTANT_PREFIX):
        name = spec.removeprefix(MUTANT_PREFIX)
        if name not in MUTANTS:
            raise AdapterError(f"unknown mutant {name!r}: use one of {', '.join(MUTANTS)}")
        return MUTANTS[name]
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise AdapterError(
            f"unknown queue {spec!r}: use taskq, raw, {TASKQ_WORKER}, {MUTANT_PREFIX}NAME ({', '.join(MUTANTS)}), "
            f"{PEER_PREFIX}NAME[:VARIANT], or module:factory"
        )
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise AdapterError(f"cannot load queue adapter {spec!r}: {exc}") from exc
    if not callable(factory):
        raise AdapterError(f"{spec!r} is not callable: it must build a QueueAdapter or a HostedAdapter")
    return factory  # type: ignore[no-any-return]
