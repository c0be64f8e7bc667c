"""Entry point of agent processes: `python -m harness.agents producer|consumer --plan ... --index N ...`."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys

from harness.agents.common import RUNNER_PID_ENV, parse_args
from harness.agents.consumer import run_consumer
from harness.agents.producer import run_producer
from harness.errors import HarnessError

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_the_runner() -> None:
    """An agent must not outlive the runner that started it (a test's timeout SIGKILLs the runner, and
    its agents would go on writing to a Redis nobody reads): the kernel kills it when its parent dies."""
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    runner = os.environ.get(RUNNER_PID_ENV)
    if runner and os.getppid() != int(runner):  # it died while this process was starting
        os._exit(1)


def main() -> None:
    die_with_the_runner()
    args = parse_args()
    try:
        asyncio.run(run_producer(args) if args.role == "producer" else run_consumer(args))
    except HarnessError as exc:
        print(f"harness agent {args.name}: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
