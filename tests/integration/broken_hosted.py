"""A hosted adapter whose worker cannot start (its handlers module does not exist), for bad-input tests."""

from __future__ import annotations

from harness.hosted.base import WorkerCommand, WorkerLaunch
from harness.hosted.taskq_worker import TaskqWorkerAdapter


class NoSuchHandlers(TaskqWorkerAdapter):
    name = "broken-hosted"

    def worker(self, launch: WorkerLaunch) -> WorkerCommand:
        command = super().worker(launch)
        missing = "tests.integration.no_such_module:HANDLERS"
        argv = [missing if arg.endswith(":HANDLERS") else arg for arg in command.argv]
        return WorkerCommand(argv=argv, env=command.env)


def factory() -> NoSuchHandlers:
    return NoSuchHandlers()
