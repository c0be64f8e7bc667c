"""backoff_ms (shared with taskq.lua) and the reconnect Backoff."""

from __future__ import annotations

import math
import random

import pytest

from taskq.backoff import Backoff, backoff_ms

ALMOST_ONE = math.nextafter(1.0, 0.0)  # the largest jitter random.random() can draw


def test_no_jitter_gives_half_the_delay() -> None:
    assert [backoff_ms(n, 100, 1_000_000, 0) for n in range(5)] == [50, 100, 200, 400, 800]


def test_high_jitter_gives_nearly_the_full_delay() -> None:
    assert [backoff_ms(n, 100, 1_000_000, 0.999) for n in range(5)] == [99, 199, 399, 799, 1599]
    # At the very top of [0, 1) the factor 0.5 + jitter / 2 rounds to 1: the full delay, never more.
    assert [backoff_ms(n, 100, 1_000_000, ALMOST_ONE) for n in range(5)] == [100, 200, 400, 800, 1600]


def test_delay_doubles_per_attempt() -> None:
    for jitter in (0.0, 0.3, 0.7):
        for attempt in range(10):
            lower = backoff_ms(attempt, 1000, 10**9, jitter)
            higher = backoff_ms(attempt + 1, 1000, 10**9, jitter)
            assert higher in (2 * lower, 2 * lower + 1)  # int() truncation


def test_delay_is_capped() -> None:
    assert backoff_ms(3, 1000, 5000, 0) == 2500  # 8000 capped at 5000, then halved
    assert backoff_ms(30, 1000, 5000, 0.999) == 4997
    assert backoff_ms(30, 1000, 5000, ALMOST_ONE) == 5000
    assert backoff_ms(3, 1000, 8000, 0) == 4000  # exactly at the cap


@pytest.mark.parametrize("attempt", [1023, 1024, 1100, 5000, 100_000])
def test_cap_holds_for_huge_attempt_numbers(attempt: int) -> None:
    # A reconnect loop that has failed for hours keeps counting attempts.
    assert backoff_ms(attempt, 50.0, 5000.0, 0) == 2500
    assert backoff_ms(attempt, 50, 5000, 0.5) == 3750


def test_jitter_stays_within_half_and_full() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        attempt = rng.randrange(12)
        full = min(60_000, 250 * 2**attempt)
        delay = backoff_ms(attempt, 250, 60_000, rng.random())
        assert full // 2 <= delay <= full


def test_zero_base_means_no_delay() -> None:
    assert backoff_ms(5, 0, 300_000, 0.9) == 0


@pytest.mark.parametrize("jitter", [-0.01, 1.0, 1.5, math.nan, math.inf])
def test_jitter_outside_zero_one_raises(jitter: float) -> None:
    with pytest.raises(ValueError, match=r"jitter must be in \[0, 1\)"):
        backoff_ms(0, 100, 1000, jitter)


def test_next_delay_grows_until_the_cap_then_reset_starts_over() -> None:
    backoff = Backoff(base_s=0.1, max_s=1.0)
    delays = [backoff.next_delay_s() for _ in range(8)]
    for attempt, delay in enumerate(delays):
        full = min(1.0, 0.1 * 2**attempt)
        assert full / 2 - 0.001 <= delay <= full
    assert all(d <= 1.0 for d in delays)
    assert delays[-1] >= 0.5  # at the cap: never below half of it
    assert backoff.attempt == 8
    backoff.reset()
    assert backoff.attempt == 0
    assert 0.05 - 0.001 <= backoff.next_delay_s() <= 0.1


def test_next_delay_keeps_working_after_many_failures() -> None:
    backoff = Backoff(base_s=0.05, max_s=5.0)
    for _ in range(1100):
        delay = backoff.next_delay_s()
    assert 2.5 <= delay <= 5.0
