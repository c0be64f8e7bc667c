"""Adapters that each break one rule of the protocol, for `harness check-adapter`'s tests: the suite must
name the method and the rule, in one line, never with a stack trace."""

from __future__ import annotations

from typing import Any

from harness.adapters import Delivered, FinalState, TaskqAdapter


class ConsumeHandsOutDicts(TaskqAdapter):
    async def consume(self, consumer: str, count: int) -> list[Any]:
        return [{"tid": d.tid} for d in await super().consume(consumer, count)]


class CompleteSaysNothing(TaskqAdapter):
    async def complete(self, consumer: str, delivered: list[Delivered]) -> Any:
        await super().complete(consumer, delivered)
        return None


class FailRaises(TaskqAdapter):
    async def fail(self, consumer: str, failed: list[tuple[Delivered, str]]) -> list[str]:
        receipts: dict[str, str] = {}
        return [receipts[d.tid] for d, _ in failed]  # KeyError: the kind of bug a real adapter has


class FinalStateForgetsPending(TaskqAdapter):
    async def final_state(self) -> FinalState:
        found = await super().final_state()
        return FinalState(ready=found.ready, delayed=found.delayed, dead=found.dead)


class SynchronousDepth(TaskqAdapter):
    def depth(self) -> dict[str, int]:  # type: ignore[override]
        return {"ready": 0, "pending": 0, "delayed": 0, "dead": 0}


class HalfAnAdapter:
    """enqueue and nothing to read with."""

    name = "half"

    async def connect(self, url: str, queue_name: str, options: Any) -> None: ...

    async def enqueue(self, tasks: list[Any]) -> None: ...


def exploding_factory() -> TaskqAdapter:
    raise RuntimeError("no configuration file found")
