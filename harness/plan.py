"""A plan: a scenario made concrete by a seed. The seed fixes the workload and the
fault schedule; the plan is saved in the run folder so `harness replay` runs it again."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from harness.errors import HistoryError, ScenarioError
from harness.scenario import FaultSpec, Scenario, scenario_from_dict
from taskq.connection import redacted

PLAN_FORMAT = 1


@dataclass(frozen=True, kw_only=True, slots=True)
class FaultEvent:
    """One planned fault: at a time into the load phase, or once a number of tasks completed."""

    kind: str
    target: str
    duration_s: float
    at_s: float | None = None
    after_completed: int | None = None
    aim: str = "holding"


@dataclass(frozen=True, kw_only=True, slots=True)
class Plan:
    scenario: Scenario
    seed: int
    queue: str
    redis: str
    queue_name: str
    faults: tuple[FaultEvent, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": PLAN_FORMAT, "seed": self.seed, "queue": self.queue, "redis": redacted(self.redis),
            "queue_name": self.queue_name, "scenario": self.scenario.as_dict(),
            "faults": [_fields(f) for f in self.faults],
        }  # fmt: skip

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: Path) -> Plan:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise HistoryError(f"cannot read plan {path} ({exc}): is this a harness run folder?") from exc
        if data.get("format") != PLAN_FORMAT:
            raise HistoryError(
                f"{path} has plan format {data.get('format')!r}, this harness reads {PLAN_FORMAT}: "
                "re-run the scenario with this version (harness run SCENARIO --seed N)"
            )
        try:
            return cls(
                scenario=scenario_from_dict(data["scenario"], str(path)),
                seed=int(data["seed"]),
                queue=str(data["queue"]),
                redis=str(data["redis"]),
                queue_name=str(data["queue_name"]),
                faults=tuple(FaultEvent(**f) for f in data["faults"]),
            )
        except (KeyError, TypeError, ValueError, ScenarioError) as exc:
            raise HistoryError(f"{path} is not a valid plan ({exc})") from exc


def _fields(event: FaultEvent) -> dict[str, Any]:
    return {f.name: getattr(event, f.name) for f in fields(event)}


def make_plan(scenario: Scenario, *, seed: int, queue: str, redis: str, queue_name: str) -> Plan:
    rng = random.Random(f"faults:{seed}")
    events = [event for spec in scenario.faults for event in _schedule(spec, scenario, rng)]
    events.sort(key=lambda e: (e.after_completed or 0, e.at_s or 0.0))
    return Plan(scenario=scenario, seed=seed, queue=queue, redis=redis, queue_name=queue_name, faults=tuple(events))


def _schedule(spec: FaultSpec, scenario: Scenario, rng: random.Random) -> list[FaultEvent]:
    def event(**when: Any) -> FaultEvent:
        target = _target(spec, scenario, rng)
        return FaultEvent(kind=spec.kind, target=target, duration_s=spec.duration_s, aim=spec.aim, **when)

    if spec.after_completed:
        return [event(after_completed=n) for n in spec.after_completed]
    return [event(at_s=t) for t in _times(spec, scenario.run.duration_s, rng)]


def _times(spec: FaultSpec, duration: float, rng: random.Random) -> list[float]:
    if spec.at_s:
        return [t for t in spec.at_s if t < duration]
    assert spec.every_s is not None
    # Faults start once load flows and stop early enough to heal inside the run.
    start, end = min(1.0, duration * 0.1), duration * 0.9
    times, t = [], start + rng.expovariate(1 / spec.every_s)
    while t < end:
        times.append(round(t, 3))
        t += rng.expovariate(1 / spec.every_s)
    if not times and end > start:  # a short run still gets its fault: never vacuous by design
        times = [round(rng.uniform(start, end), 3)]
    return times


def _target(spec: FaultSpec, scenario: Scenario, rng: random.Random) -> str:
    target = spec.resolved_target
    if target == "consumer":
        return f"consumer-{rng.randrange(scenario.run.consumers)}"
    return target
