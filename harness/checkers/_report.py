"""How checkers gather anomaly examples and summarise durations, the same way in each."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from harness.checkers.base import MAX_EXAMPLES

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000


class Examples:
    """Keeps the first few anomalies of each kind; `pick` shares MAX_EXAMPLES slots fairly across kinds,
    so a flood of one kind never hides the single example of another."""

    __slots__ = ("_by_kind",)

    def __init__(self) -> None:
        self._by_kind: dict[str, list[dict[str, Any]]] = {}

    def add(self, kind: str, **detail: Any) -> None:
        kept = self._by_kind.setdefault(kind, [])
        if len(kept) < MAX_EXAMPLES:
            kept.append({"kind": kind, **detail})

    def pick(self) -> list[dict[str, Any]]:
        picked: list[dict[str, Any]] = []
        queues = [list(kept) for kept in self._by_kind.values()]
        while len(picked) < MAX_EXAMPLES and any(queues):
            for queue in queues:
                if queue and len(picked) < MAX_EXAMPLES:
                    picked.append(queue.pop(0))
        return picked


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), math.ceil(fraction * len(sorted_values))))
    return sorted_values[rank - 1]


def seconds(ns: int) -> float:
    return round(ns / NS_PER_S, 6)


def millis(ns: int) -> float:
    return round(ns / NS_PER_MS, 3)
