"""A queue adapter that cannot connect, for the harness's bad-input tests."""

from __future__ import annotations

from harness.adapters import QueueOptions, TaskqAdapter
from harness.errors import AdapterError


class BrokenAdapter(TaskqAdapter):
    name = "broken"

    async def connect(self, url: str, queue_name: str, options: QueueOptions) -> None:
        raise AdapterError("this adapter is broken on purpose: it refuses to connect")
