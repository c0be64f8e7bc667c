"""The CI regression gate: a suite of short runs that fails on any verdict that is not
valid, and on a performance regression beyond a threshold against a baseline.

Machines in CI are noisy, so the baseline is measured in the same job where it can be:
each measured case runs the queue under test and a baseline queue (the raw redis-py
ceiling) back to back, alternating which goes first, and the figures are ratios of
the two. The ratios are held against the ratios stored in a baseline file (reports/
baselines/SUITE.json, written by `--update-baseline` on a known-good commit) with a
tolerance per figure; repeated runs and their spread decide (harness.gate.judge).

Outputs in the gate's folder: verdict.json, junit.xml, summary.md (for a CI job
summary), report.html, and every run's own folder under runs/.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from harness.bench.runs import Measured, quiet, run_scenario
from harness.bench.scenarios import interleaved
from harness.checkers.base import Validity, compose
from harness.folders import stamped_folder
from harness.gate.judge import (
    UNSURE,
    MetricVerdict,
    Stored,
    baseline_key,
    judge_metric,
    load_stored,
    save_stored,
)
from harness.gate.suite import Case, Suite, load_suite
from harness.report.verdict import code_version

__all__ = ["CaseResult", "GateResult", "load_suite", "run_gate"]

Status = Callable[[str], None]


@dataclass(kw_only=True, slots=True)
class CaseResult:
    case: Case
    queue: str
    runs: list[tuple[int, Measured]] = field(default_factory=list)
    metrics: list[MetricVerdict] = field(default_factory=list)

    def runs_of(self, queue: str) -> list[tuple[int, Measured]]:
        return [(rep, m) for rep, m in self.runs if m.queue == queue]

    @property
    def validity(self) -> Validity:
        """Of the queue under test only: the baseline queue is a yardstick, not on trial."""
        return compose(m.valid for _, m in self.runs_of(self.queue))

    @property
    def passed(self) -> bool:
        return self.validity is True and not any(m.failed for m in self.metrics)


@dataclass(kw_only=True, slots=True)
class GateResult:
    suite: Suite
    queue: str
    folder: Path
    cases: list[CaseResult]
    seconds: float
    baseline_found: bool
    baseline_updated: bool

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.cases)

    @property
    def metrics(self) -> list[MetricVerdict]:
        return [m for c in self.cases for m in c.metrics]


def gate_folder(out: Path, suite: str, queue: str) -> Path:
    folder = stamped_folder(out, suite, queue)
    (folder / "runs").mkdir()
    return folder


def _samples(result: CaseResult, figure: str) -> list[float]:
    """Per repetition: the queue's figure, as a ratio of the baseline queue's when there is one."""
    ours = {rep: m.figure(figure) for rep, m in result.runs_of(result.queue)}
    if result.case.compare_with is None:
        return [v for _, v in sorted(ours.items()) if v is not None]
    theirs = {rep: m.figure(figure) for rep, m in result.runs_of(result.case.compare_with)}
    samples = []
    for rep, value in sorted(ours.items()):
        other = theirs.get(rep)
        if value is not None and other:
            samples.append(value / other)
    return samples


def _judge(result: CaseResult, stored: dict[str, Stored]) -> list[MetricVerdict]:
    case = result.case
    kind = f"ratio to {case.compare_with}" if case.compare_with else "absolute"
    return [
        judge_metric(case.name, m, _samples(result, m.figure), stored.get(baseline_key(case.name, m.figure)), kind)
        for m in case.metrics
    ]


def _run_case(
    case: Case, queue: str, suite: Suite, folder: Path, stored: dict[str, Stored], status: Status, *, updating: bool
) -> CaseResult:
    result = CaseResult(case=case, queue=queue)
    queues = [queue] + ([case.compare_with] if case.compare_with else [])
    rep = 0
    while True:
        for name in interleaved(queues, rep):
            prefix = f"[gate {case.name} {rep + 1}/{case.repeat}] {name}"
            measured = run_scenario(
                case.scenario, queue=name, seed=suite.seed, out=folder / "runs", status=quiet(status, prefix)
            )
            result.runs.append((rep, measured))
            shown = ", ".join(f"{m.figure}={_show(measured.figure(m.figure))}" for m in case.metrics)
            status(f"{prefix}: {_label(measured.valid)}{'; ' + shown if shown else ''}")
        rep += 1
        if rep < case.repeat:
            continue
        result.metrics = _judge(result, stored)
        unsure = [m.figure for m in result.metrics if m.status == UNSURE]
        if unsure and rep < case.max_repeat and not updating:
            status(f"[gate {case.name}] {', '.join(unsure)} too close to call after {rep} runs: one more")
            continue
        return result


def _show(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _label(valid: Validity) -> str:
    return {True: "valid", False: "INVALID", None: "unknown"}[valid]


def run_gate(
    suite: Suite,
    *,
    queue: str,
    out: Path,
    status: Status,
    update_baseline: bool = False,
    baseline: Path | None = None,
    repeat: int | None = None,
) -> GateResult:
    """Run every case of the suite; judge; write the stored baseline when asked. `repeat`
    overrides the runs per queue of the measured cases (more samples for a baseline)."""
    started = time.monotonic()
    if repeat is not None:
        more = tuple(
            replace(c, repeat=repeat, max_repeat=max(repeat, c.max_repeat)) if c.metrics else c for c in suite.cases
        )
        suite = replace(suite, cases=more)
    baseline_path = baseline or suite.baseline
    stored = load_stored(baseline_path)
    folder = gate_folder(out, suite.name, queue)
    status(f"gate {suite.name} on {queue}: {len(suite.cases)} cases, folder {folder}")
    if not stored:
        status(f"no stored baseline at {baseline_path}: figures are recorded, not judged")
    cases = [_run_case(case, queue, suite, folder, stored, status, updating=update_baseline) for case in suite.cases]
    result = GateResult(
        suite=suite, queue=queue, folder=folder, cases=cases, seconds=round(time.monotonic() - started, 1),
        baseline_found=bool(stored), baseline_updated=False,
    )  # fmt: skip
    if update_baseline:
        meta = {
            "suite": suite.name, "queue": queue, "code_version": code_version(),
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"), "machine": platform.platform(),
        }  # fmt: skip
        save_stored(baseline_path, result.metrics, meta)
        result.baseline_updated = True
        status(f"stored baseline written: {baseline_path}")
    return result
