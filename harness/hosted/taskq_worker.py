"""`--queue taskq-worker`: the real `taskq worker` process, as its users run it.

The harness enqueues through taskq's client (the same as the pull adapter) and starts
`python -m taskq worker harness.hosted.taskq_worker:HANDLERS ...` with the scenario's queue
settings; taskq's Worker does the rest: concurrency, lease renewal, batched settling, reclaim,
retries, SIGTERM release, reconnects.
"""

from __future__ import annotations

import sys
from typing import Any

from harness.adapters.base import QueueOptions
from harness.adapters.promises import Promises
from harness.adapters.taskq_adapter import TASK_TYPE, TaskqAdapter, queue_names
from harness.hosted.base import WorkerCommand, WorkerLaunch
from harness.hosted.handler import current, ready_if_worker
from taskq import Task, current_receipt

# The worker's own socket timeout (taskq's default): how long a held reply can keep it waiting.
WORKER_SOCKET_TIMEOUT_S = 10.0


class TaskqWorkerAdapter(TaskqAdapter):
    """taskq's Worker process under the harness; producers and the final read use taskq's client."""

    name = "taskq-worker"
    socket_timeout_s = WORKER_SOCKET_TIMEOUT_S

    def __init__(self) -> None:
        super().__init__()
        self._options = QueueOptions()

    async def connect(self, url: str, queue_name: str, options: QueueOptions) -> None:
        self._options = options
        await super().connect(url, queue_name, options)

    @property
    def promises(self) -> Promises:
        return Promises(
            renews_lease=True,
            visibility_timeout_s=self._options.pending_timeout_s,
            defaults=f"pending_timeout={self._options.pending_timeout_s:g}s, "
            f"delivery_cap={self._options.delivery_cap}, lease renewed every third of it",
        )

    def worker(self, launch: WorkerLaunch) -> WorkerCommand:
        options = launch.options
        queues = [arg for name in queue_names(launch.queue_name, options.queues) for arg in ("--queue", name)]
        argv = [
            sys.executable, "-m", "taskq", "worker", f"{__name__}:HANDLERS", *queues,
            "--replicas-to-wait", str(options.replicas_to_wait), "--consumer", launch.consumer_name,
            "--concurrency", str(launch.concurrency),
            "--pending-timeout", f"{options.pending_timeout_s:g}", "--delivery-cap", str(options.delivery_cap),
            "--retry-base-delay", f"{options.retry_base_delay_s:g}",
            "--retry-max-delay", f"{options.retry_max_delay_s:g}", "--block-ms", str(options.block_ms),
            "--shutdown-timeout", f"{options.shutdown_timeout_s:g}",
        ]  # fmt: skip
        # The URL travels in the environment: a command line (and its password) is visible to ps.
        return WorkerCommand(argv=argv, env={"TASKQ_REDIS_URL": launch.url})


async def handle(task: Task) -> Any:
    """The harness's handler, as taskq calls it: the payload carries the tid and the work."""
    payload = {**task.payload, "prio": int(task.priority)}
    deliveries = current_receipt().deliveries
    await current().run(payload, attempt=task.retry_count, deliveries=deliveries, delivered_id=task.task_id)


HANDLERS = {TASK_TYPE: handle}

# `taskq worker` imports this module to find HANDLERS: it is up.
ready_if_worker()
