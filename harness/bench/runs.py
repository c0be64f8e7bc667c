"""One judged run of a scenario, for benchmarks and the gate, and the figures read from it.

A figure is named by a path into the verdict: `throughput` (all tasks over the time
to the last completion; the offered rate for paced runs, the ceiling for unpaced
ones), `throughput_in_load` (completions during the load phase only),
`cpu_per_task` (CPU microseconds per completed task, agents and redis-server
together: what noisy neighbours barely move), or `LATENCY.STAT` such as
`enqueue_to_start.p99` (ms). Agents' own histograms add
`send_lag.p99` (how late the producers sent: a load generator that falls behind
shows up here) and `enqueue_call.p50`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.agents.stats import merged_histograms, read_stats
from harness.plan import make_plan
from harness.runner import new_run_folder, run
from harness.scenario import Scenario

Status = Callable[[str], None]
AGENT_FIGURES = ("send_lag", "enqueue_call")


@dataclass(frozen=True, kw_only=True, slots=True)
class Measured:
    """A finished run: where it is, its verdict, and the figures benchmarks compare."""

    queue: str
    scenario: str
    folder: Path
    valid: bool | None
    verdict: dict[str, Any]
    agent_ms: dict[str, dict[str, float]]

    def figure(self, name: str) -> float | None:
        return figure(self.verdict, name, self.agent_ms)


def figure(verdict: dict[str, Any], name: str, agent_ms: dict[str, dict[str, float]] | None = None) -> float | None:
    """The named figure of a verdict (see the module docstring); None when the run has none."""
    throughput = verdict.get("throughput", {})
    if name == "throughput":
        overall = throughput.get("overall") or {}
        value = overall.get("per_second") or throughput.get("per_second")
        return float(value) if value else None
    if name == "throughput_in_load":
        return float(throughput.get("per_second") or 0) or None
    if name == "cpu_per_task":
        value = verdict.get("agents", {}).get("total", {}).get("cpu_us_per_task")
        return float(value) if value else None
    kind, _, stat = name.partition(".")
    source = (agent_ms or {}) if kind in AGENT_FIGURES else verdict.get("latency_ms", {})
    value = source.get(kind, {}).get(stat)
    return float(value) if value is not None else None


def _agent_ms(folder: Path) -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, float]] = {}
    for name, histogram in merged_histograms(read_stats(folder)).items():
        if name in AGENT_FIGURES and histogram.get_total_count():
            figures[name] = {f"p{p:g}": histogram.get_value_at_percentile(p) / 1000 for p in (50, 99, 99.9)}
    return figures


def run_scenario(scenario: Scenario, *, queue: str, seed: int, out: Path, status: Status) -> Measured:
    """Run `scenario` on `queue` against a local redis-server of its own; judged, with plots."""
    queue_name = f"{scenario.name}-{seed}-{int(time.time() * 1000) % 10**9}"
    plan = make_plan(scenario, seed=seed, queue=queue, redis="local", queue_name=queue_name)
    folder = new_run_folder(out, plan)
    result = run(plan, folder, status=status)
    return Measured(
        queue=queue,
        scenario=scenario.name,
        folder=folder,
        valid=result.valid,
        verdict=result.verdict,
        agent_ms=_agent_ms(folder),
    )


def quiet(status: Status, prefix: str) -> Status:
    """Only the phase changes of a run, prefixed: a suite of runs stays readable."""

    def show(line: str) -> None:
        if line.startswith(("phase:", "checking", "drain")):
            status(f"{prefix} {line}")

    return show
