from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import HistoryError
from harness.gate.judge import (
    NO_BASELINE,
    NO_DATA,
    OK,
    REGRESSION,
    UNSURE,
    Stored,
    judge_metric,
    load_stored,
    robust_sigma,
    save_stored,
)
from harness.gate.suite import Metric

HIGHER = Metric(figure="throughput", better="higher", tolerance=0.2)
LOWER = Metric(figure="enqueue_to_start.p50", better="lower", tolerance=0.5)
STORED = Stored(value=1.0, noise=0.05, runs=3)


def judge(metric: Metric, samples: list[float], stored: Stored | None = STORED) -> str:
    return judge_metric("case", metric, samples, stored, "ratio to raw").status


def test_robust_sigma_ignores_one_wild_sample() -> None:
    assert robust_sigma([1.0]) == 0.0
    assert robust_sigma([1.0, 1.1, 0.9, 1.0, 50.0]) == pytest.approx(1.4826 * 0.1)


@pytest.mark.parametrize(
    ("metric", "samples", "status"),
    [
        (HIGHER, [0.95, 1.0, 1.05], OK),
        (HIGHER, [0.5, 0.55, 0.52], REGRESSION),  # far below the 0.8 limit, tight samples
        (HIGHER, [0.2, 0.78, 1.4], UNSURE),  # median below the limit, but the spread is wide
        (HIGHER, [0.81, 0.3, 0.82], OK),  # one bad sample does not decide
        (LOWER, [1.2, 1.4, 1.3], OK),
        (LOWER, [4.0, 4.5, 5.0], REGRESSION),  # the slow mutant: four times the raw ratio
        (LOWER, [1.19, 42.9, 2.32, 7.71, 33.6], REGRESSION),  # ... scattered over a decade on a busy machine
        (LOWER, [1.19, 42.9, 2.32, 1.2, 33.6], UNSURE),  # the median is past 1.5, but only 3 of 5 runs are
        (LOWER, [1.6, 0.5, 3.0], UNSURE),
    ],
)
def test_statuses(metric: Metric, samples: list[float], status: str) -> None:
    assert judge(metric, samples) == status


def test_without_data_or_without_a_stored_baseline() -> None:
    assert judge(HIGHER, []) == NO_DATA
    assert judge(HIGHER, [0.1, 0.1, 0.1], stored=None) == NO_BASELINE


def test_fewer_than_three_samples_are_held_against_the_stored_noise() -> None:
    noisy = Stored(value=1.0, noise=0.5, runs=5)
    assert judge(HIGHER, [0.7], stored=noisy) == UNSURE
    assert judge(HIGHER, [0.7, 0.6], stored=STORED) == REGRESSION


def test_the_verdict_carries_its_figures_and_a_hint_when_much_better() -> None:
    verdict = judge_metric("throughput", HIGHER, [1.5, 1.6, 1.55], STORED, "ratio to raw")
    assert (verdict.status, verdict.median, verdict.limit, verdict.key) == (OK, 1.55, 0.8, "throughput/throughput")
    assert "--update-baseline" in verdict.note


def test_stored_baselines_round_trip(tmp_path: Path) -> None:
    verdicts = [judge_metric("c", HIGHER, [0.9, 1.0, 1.1], None, "absolute"),
                judge_metric("c", LOWER, [], None, "absolute")]  # fmt: skip
    path = tmp_path / "baselines" / "ci.json"
    save_stored(path, verdicts, {"suite": "ci"})
    assert load_stored(path) == {"c/throughput": Stored(value=1.0, noise=0.1483, runs=3)}
    assert load_stored(tmp_path / "none.json") == {}
    path.write_text("{not json")
    with pytest.raises(HistoryError, match="update-baseline"):
        load_stored(path)
