"""Judging a gate's figures against the stored baseline, with the runs' own noise. Pure.

Samples are one per repetition: for a case run beside a baseline queue, the ratio of
the queue's figure to the baseline queue's figure in the same repetition (they ran
back to back, so machine noise largely cancels); otherwise the figure itself.

    limit  = stored x (1 - tolerance)     when higher is better
             stored x (1 + tolerance)     when lower is better

ok          the median is on the good side of the limit
regression  the median is past the limit, and so are all samples but one in four (3 of 3,
            3 of 4, 4 of 5, 5 of 6); with fewer than three samples, the median is past the
            limit by more than twice the stored noise
unsure      the median is past the limit, but too few samples agree (two wild runs in
            three on a shared machine are not unheard of): the gate runs the case again,
            up to max_repeat; if it is still unsure then, the median decides, and the
            gate fails

Counting samples rather than measuring a spread suits these figures: a slowed-down
queue on a busy machine gives ratios that scatter over a decade (its backlog comes
and goes), which a spread would call noise; that they all sit past the limit is what
decides. The spread (1.4826 x the median absolute deviation, a robust sigma) is
reported as the noise, and stored with the baseline.
"""

from __future__ import annotations

import json
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
    past = sum(1 for x in samples if sign * (x - limit) < 0)
    if len(samples) >= 3:
        agreed = past >= len(samples) - len(samples) // 4
        evidence = f"{past} of {len(samples)} runs past the limit"
    else:
        agreed = sign * (limit - median) > 2 * stored.noise
        evidence = f"past it by more than twice the stored noise ({stored.noise:.3g})" if agreed else "within noise"
    tolerance = f"past the {metric.tolerance:.0%} tolerance"
    return verdict(REGRESSION if agreed else UNSURE, f"{change}: {tolerance}; {evidence}", **figures)


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
