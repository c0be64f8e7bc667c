"""When the drain may end: the queue is empty, or it stopped changing for longer than anything still
in motion could take, or the drain deadline passed.

A queue that stops changing is not yet stuck. A consumer may be waiting for a reply held by a fault
(up to its client's timeout), a task may sit under a lease that has not expired yet (up to the
visibility timeout, then until the next reclaim), a retry may wait out its backoff. The stall bound
is the sum of those, read from the queue's own settings; and while any consumer has an operation in
flight that can still finish (its journal ends with an invoke younger than the client timeout), the
drain is not stalled at all, however long the depth stands still.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from harness.adapters.base import QueueOptions
from harness.adapters.promises import Promises

# On top of the sum: scheduling noise on a busy machine, and the poll itself.
MARGIN_S = 1.0
TAIL_BYTES = 64 * 1024


@dataclass(frozen=True, kw_only=True, slots=True)
class DrainBounds:
    client_timeout_s: float
    visibility_timeout_s: float
    reclaim_every_s: float
    retry_max_delay_s: float

    @classmethod
    def of(cls, options: QueueOptions, promises: Promises, client_timeout_s: float) -> DrainBounds:
        visibility = promises.visibility_timeout_s
        visibility_s = options.pending_timeout_s if visibility is None else visibility
        return cls(
            client_timeout_s=client_timeout_s,
            visibility_timeout_s=visibility_s,
            # taskq's cadence (QueueSettings.reclaim_interval_s); a hosted library's own is inside
            # its visibility timeout or longer, and then the drain deadline decides.
            reclaim_every_s=max(0.05, visibility_s / 4),
            retry_max_delay_s=max(options.retry_max_delay_s, options.retry_base_delay_s),
        )

    @property
    def stall_s(self) -> float:
        """How long the depth may stand still before nothing in motion can change it any more."""
        moving = (self.client_timeout_s, self.visibility_timeout_s, self.reclaim_every_s, self.retry_max_delay_s)
        return sum(moving) + MARGIN_S


def in_flight(journals: list[Path], client_timeout_s: float, now_ns: int | None = None) -> list[str]:
    """Processes (of these consumer journals) whose last operation is an invoke that can still finish:
    invoked less than the client timeout ago. A process killed mid-operation never finishes it, but its
    invoke ages out like any other."""
    now = time.monotonic_ns() if now_ns is None else now_ns
    horizon_ns = now - int((client_timeout_s + MARGIN_S) * 1e9)
    waiting: list[str] = []
    for journal in journals:
        last: dict[str, tuple[str, int]] = {}
        for op in _tail(journal):
            last[op["process"]] = (op["type"], op["time_ns"])
        waiting.extend(p for p, (kind, at_ns) in last.items() if kind == "invoke" and at_ns >= horizon_ns)
    return waiting


def _tail(journal: Path) -> list[dict[str, Any]]:
    try:
        with journal.open("rb") as f:
            f.seek(max(0, journal.stat().st_size - TAIL_BYTES))
            lines = f.read().split(b"\n")
    except FileNotFoundError:
        return []
    ops = []
    for line in lines:  # the first may be cut by the seek, the last torn by a kill: both fail to parse
        try:
            ops.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            continue
    return ops
