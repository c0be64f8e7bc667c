"""Fake runs for the gate and benchmark tests: figures chosen per queue, no Redis, no processes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.bench.runs import Measured
from harness.scenario import Scenario

Figures = Callable[[str, Scenario, int], dict[str, Any]]


class FakeRuns:
    """Stands in for harness.bench.runs.run_scenario; `figures(queue, scenario, call)` gives a run's figures."""

    def __init__(self, figures: Figures) -> None:
        self.figures = figures
        self.calls: list[tuple[str, str]] = []

    def __call__(self, scenario: Scenario, *, queue: str, seed: int, out: Path, status: Any) -> Measured:
        self.calls.append((scenario.name, queue))
        figures = self.figures(queue, scenario, len(self.calls))
        folder = out / f"run-{len(self.calls)}-{queue.replace(':', '-')}"
        folder.mkdir(parents=True)
        status("phase: load")
        verdict = {
            "valid": figures.get("valid", True),
            "throughput": {"per_second": figures.get("throughput", 1000.0),
                           "overall": {"per_second": figures.get("throughput", 1000.0)}},
            "latency_ms": {"enqueue_to_start": {"p50": figures.get("p50", 1.0), "p99": figures.get("p99", 2.0)},
                           "enqueue_to_complete": {"p50": figures.get("p50", 1.0) + 0.5}},
        }  # fmt: skip
        return Measured(queue=queue, scenario=scenario.name, folder=folder, valid=verdict["valid"], verdict=verdict,
                        agent_ms={"send_lag": {"p99": 0.1}})  # fmt: skip
