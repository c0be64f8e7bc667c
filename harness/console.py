"""What every harness command shares: its two consoles, its status line, and how it ends on an error."""

from __future__ import annotations

import functools
import signal
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console

from harness.errors import HarnessError

F = TypeVar("F", bound=Callable[..., Any])
err = Console(stderr=True, highlight=False, width=160, soft_wrap=True)
out = Console(highlight=False, width=160)


def one_line_errors(command: F) -> F:
    """A HarnessError is one line on stderr and exit 2; SIGTERM (a cancelled CI job) unwinds like
    Ctrl-C, so the run in progress stops its agents and its redis-server instead of leaving them behind."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            return command(*args, **kwargs)
        except HarnessError as exc:
            click.echo(f"harness: {exc}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def status_line(prefix: str = "") -> Callable[[str], None]:
    """Progress lines on stderr, each stamped with the seconds since the command started."""
    start = time.monotonic()
    lead = f"{prefix} " if prefix else ""
    return lambda line: err.print(f"[{time.monotonic() - start:6.1f}s] {lead}{line}", markup=False)
