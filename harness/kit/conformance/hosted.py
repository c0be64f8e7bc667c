"""The checks of a hosted adapter's client side: the worker command it gives, and the final state of a
queue no worker has touched yet. Its workers are judged through the runs."""

from __future__ import annotations

import tempfile
from pathlib import Path

from harness.hosted.base import WorkerCommand, WorkerLaunch
from harness.kit.conformance.client import HOLD_OPTIONS, Target, accounting, check_batch, connected, final_of, task
from harness.kit.conformance.rules import Probe, RuleBroken

BATCH = 12


async def check_untouched_queue(probe: Probe, target: Target) -> None:
    """A batch enqueued through the library's client is all ready, in depth() and in final_state()."""
    tasks = [task(f"h{i:02d}", i % 4) for i in range(BATCH)]
    async with connected(probe, target, "hosted", HOLD_OPTIONS):
        await check_batch(probe, tasks)
        final = await final_of(probe)
        places = accounting(final, {t.tid for t in tasks})
        missing = sorted({t.tid for t in tasks} - set(places["ready"]))
        probe.must(not missing, "final_state", "lists every ready task in ready",
                   f"{missing[:3]} missing before any worker ran: the harness would count them lost")  # fmt: skip
        probe.ok("final_state", "accounts for every task", f"{len(tasks)} enqueued, {len(places['ready'])} ready")


def check_worker_command(probe: Probe, target: Target) -> None:
    """worker() gives an argv of strings and an environment of strings, for a launch like the fleet's."""
    with tempfile.TemporaryDirectory() as folder:
        launch = WorkerLaunch(
            process="consumer-0#1", journal=Path(folder) / "consumer-0#1.jsonl", plan_path=Path(folder) / "plan.json",
            folder=Path(folder), url=target.url, queue_name=target.queue_name("worker"), options=HOLD_OPTIONS,
            concurrency=4,
        )  # fmt: skip
        try:
            command = probe.adapter.worker(launch)
        except Exception as exc:  # the adapter's bug, named in one line
            raise RuleBroken("worker", "returns the command that starts a worker", f"it raised {exc!r}") from None
    probe.must(isinstance(command, WorkerCommand), "worker", "returns a harness.hosted.base.WorkerCommand",
               f"it returned {type(command).__name__}")  # fmt: skip
    shape_ok = bool(command.argv) and all(isinstance(a, str) for a in command.argv)
    probe.must(shape_ok, "worker", "gives a non-empty argv of strings", f"argv={command.argv!r}")
    env_ok = all(isinstance(k, str) and isinstance(v, str) for k, v in command.env.items())
    probe.must(env_ok, "worker", "gives an environment of strings", f"env keys {sorted(command.env)}")
    probe.ok("worker", "gives the command of a worker process", " ".join(command.argv[:6]) + " ...")
