"""Exponential backoff with equal jitter: the retry schedule of failed tasks, and reconnects.

taskq.lua computes retry delays with the same formula (in `fail`); tests pin the two
to each other. Equal jitter keeps at least half the delay, so retries of a failing
batch spread out without ever firing early.
"""

from __future__ import annotations

import random


def backoff_ms(attempt: int, base_ms: float, max_ms: float, jitter: float) -> int:
    """Delay before try number attempt + 1: min(max, base * 2**attempt) * (0.5 + jitter / 2).

    `jitter` is a uniform draw from [0, 1).
    """
    if not 0 <= jitter < 1:
        raise ValueError(f"jitter must be in [0, 1), got {jitter}")
    # Float arithmetic, as in Lua: past 2**1023 the product is inf and the cap wins,
    # where an int 2**attempt would overflow converting to float.
    return int(min(max_ms, base_ms * 2.0 ** min(attempt, 1023)) * (0.5 + 0.5 * jitter))


class Backoff:
    """Successive delays for reconnecting; reset() after a success."""

    def __init__(self, *, base_s: float = 0.05, max_s: float = 5.0) -> None:
        self.base_s, self.max_s, self.attempt = base_s, max_s, 0

    def next_delay_s(self) -> float:
        delay_ms = backoff_ms(self.attempt, self.base_s * 1000, self.max_s * 1000, random.random())
        self.attempt += 1
        return delay_ms / 1000

    def reset(self) -> None:
        self.attempt = 0
