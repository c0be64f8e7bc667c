"""Entry point of agent processes: `python -m harness.agents producer|consumer --plan ... --index N ...`."""

from __future__ import annotations

import asyncio
import sys

from harness.agents.common import parse_args
from harness.agents.consumer import run_consumer
from harness.agents.producer import run_producer
from harness.errors import HarnessError


def main() -> None:
    args = parse_args()
    try:
        asyncio.run(run_producer(args) if args.role == "producer" else run_consumer(args))
    except HarnessError as exc:
        print(f"harness agent {args.name}: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
