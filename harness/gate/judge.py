"""Judging a gate's figures against the stored baseline, with the runs' own noise. Pure.

Samples are one per repetition: for a case run beside a baseline queue, the ratio of
the queue's figure to the baseline queue's figure in the same repetition (they ran
back to back, so machine noise largely cancels); otherwise the figure itself.

    limit  = stored x (1 - tolerance)     when higher is better
             stored x (1 + tolerance)     when lower is better
    noise  = 1.4826 x the median absolute deviation of the samples (a robust sigma),
             at least the stored noise when there are fewer than three samples
    margin = 2 x noise / sqrt(samples)

ok          the median is on the good side of the limit
regression  the median is past the limit, and still is when moved back by the margin
unsure      past the limit, but within the margin: the gate runs the case again (up to
            max_repeat); if it is still unsure then, the median decides (a fail)
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.errors import HistoryError
from harness.gate.suite import Metric

OK, REGRESSION, UNSURE, NO_BASELINE, NO_DATA = "ok", "regression", "unsure", "no-baseline", "no-data"
FAILING = frozenset({REGRESSION, UNSURE, NO_DATA})
BASELINE_FORMAT = 1


@dataclass(frozen=True, kw_only=True, slots=True)
class Stored:
    """One figure of the stored baseline: its median, its noise and how many runs gave it."""

    value: float
    noise: float
    runs: int


@dataclass(frozen=True, kw_only=True, slots=True)
class MetricVerdict:
    case: str
    figure: str
    kind: str  # "ratio to QUEUE" or "absolute"
    better: str
    tolerance: float
    samples: list[float]
    median: float | None
    noise: float | None
    baseline: float | None
    limit: float | None
    status: str
    note: str

    @property
    def key(self) -> str:
        return baseline_key(self.case, self.figure)

    @property
    def failed(self) -> bool:
        return self.status in FAILING

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def baseline_key(case: str, figure: str) -> str:
    return f"{case}/{figure}"


def robust_sigma(samples: Sequence[float]) -> float:
    if len(samples) < 2:
        return 0.0
    center = statistics.median(samples)
    return 1.4826 * statistics.median(abs(s - center) for s in samples)


def judge_metric(
    case: str, metric: Metric, samples: Sequence[float], stored: Stored | None, kind: str
) -> MetricVerdict:
    def verdict(status: str, note: str, **figures: float | None) -> MetricVerdict:
        shown: dict[str, float | None] = {"median": None, "noise": None, "baseline": None, "limit": None, **figures}
        return MetricVerdict(case=case, figure=metric.figure, kind=kind, better=metric.better,
                             tolerance=metric.tolerance, samples=[round(s, 4) for s in samples], status=status,
                             note=note, **shown)  # fmt: skip

    if not samples:
        return verdict(NO_DATA, "no run produced this figure: see the runs' reports")
    median = statistics.median(samples)
    noise = robust_sigma(samples)
    if stored is None:
        return verdict(NO_BASELINE, "no stored baseline: recorded only (harness gate --update-baseline stores one)",
                       median=round(median, 4), noise=round(noise, 4))  # fmt: skip
    if len(samples) < 3:
        noise = max(noise, stored.noise)
    margin = 2 * noise / math.sqrt(len(samples))
    sign = 1.0 if metric.higher_is_better else -1.0
    limit = stored.value * (1 - sign * metric.tolerance)
    figures = {"median": round(median, 4), "noise": round(noise, 4), "baseline": stored.value, "limit": round(limit, 4)}
    change = f"{median / stored.value - 1:+.0%} vs baseline" if stored.value else "baseline is zero"
    if sign * (median - limit) >= 0:
        better_by = sign * (median - stored.value) / stored.value if stored.value else 0.0
        hint = (
            "; better than the baseline by more than the tolerance: consider --update-baseline"
            if better_by > metric.tolerance
            else ""
        )
        return verdict(OK, f"{change}, within {metric.tolerance:.0%}{hint}", **figures)
    if sign * (median + sign * margin - limit) < 0:
        return verdict(
            REGRESSION, f"{change}: past the {metric.tolerance:.0%} tolerance beyond noise (±{margin:.3g})", **figures
        )
    return verdict(
        UNSURE, f"{change}: past the {metric.tolerance:.0%} tolerance but within noise (±{margin:.3g})", **figures
    )


def load_stored(path: Path) -> dict[str, Stored]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        return {key: Stored(**value) for key, value in data["figures"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise HistoryError(f"baseline file {path} cannot be read ({exc}): fix it, or delete it and run "
                           "`harness gate --update-baseline` on a known-good commit") from exc  # fmt: skip


def save_stored(path: Path, verdicts: Sequence[MetricVerdict], meta: dict[str, Any]) -> None:
    """Store each figure's median and noise (figures without data are left out)."""
    figures = {
        v.key: {"value": v.median, "noise": v.noise or 0.0, "runs": len(v.samples)}
        for v in verdicts
        if v.median is not None
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": BASELINE_FORMAT, **meta, "figures": figures}, indent=2) + "\n")
