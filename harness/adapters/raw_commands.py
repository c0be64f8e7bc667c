"""The base of the mutants: taskq's adapter with a way to send plain commands past its Functions, as
the queues whose bugs the mutants copy do (harness.adapters.mutants, harness.adapters.zoo)."""

from __future__ import annotations

from typing import Any

from harness.adapters.base import AdapterUnavailable
from harness.adapters.taskq_adapter import TaskqAdapter
from taskq import RedisUnavailable
from taskq.scripts import UNAVAILABLE


class RawCommands(TaskqAdapter):
    async def _raw(self, commands: list[tuple[Any, ...]], *, atomic: bool = False) -> list[Any]:
        """One round trip; not a transaction unless `atomic` (MULTI/EXEC): a crash or a lost connection
        can split it."""
        if not commands:
            return []
        try:
            async with self.queue.redis.pipeline(transaction=atomic) as pipe:
                for command in commands:
                    pipe.execute_command(*command)
                result: list[Any] = await pipe.execute()
                return result
        except (*UNAVAILABLE, RedisUnavailable) as exc:
            raise AdapterUnavailable(str(exc)) from exc

    def _stream(self, priority: int) -> str:
        return self.queue.keys.stream(priority)
