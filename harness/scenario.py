"""Scenarios: data files (TOML) of workload, faults and expectations, and loading them.

A scenario file defines one scenario value; `harness list` shows them all. Every key
is checked: an unknown key or a bad value is a ScenarioError naming the file, the
key and what is allowed.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from harness.adapters.base import QueueOptions
from harness.checkers.base import Expectations
from harness.errors import ScenarioError
from harness.faults import FAULT_AIMS, FAULT_KINDS, targets_for

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True, slots=True)
class RunSettings:
    """How big and how long; the command line may override each."""

    duration_s: float = 30.0
    producers: int = 2
    consumers: int = 4
    # Tasks offered per second by all producers together; 0 = as fast as possible.
    rate: float = 1000.0
    # A fixed number of tasks instead of rate x duration (deterministic plans).
    tasks: int | None = None
    drain_timeout_s: float = 30.0
    persistence: str = "none"

    def validate(self) -> None:
        _require(self.duration_s > 0, "run.duration_s must be positive")
        _require(self.producers >= 1, "run.producers must be at least 1")
        _require(self.consumers >= 1, "run.consumers must be at least 1")
        _require(self.rate >= 0, "run.rate must be zero (as fast as possible) or positive")
        _require(self.tasks is None or self.tasks >= 1, "run.tasks must be at least 1")
        _require(self.drain_timeout_s > 0, "run.drain_timeout_s must be positive")


@dataclass(frozen=True, kw_only=True, slots=True)
class Workload:
    """What the tasks are and what consumers do with them."""

    # Share of CRITICAL, HIGH, NORMAL, LOW tasks.
    priorities: tuple[float, float, float, float] = (0.1, 0.2, 0.5, 0.2)
    # Simulated processing time: exponential with this mean, capped.
    task_ms_mean: float = 1.0
    task_ms_max: float = 50.0
    failure_probability: float = 0.0
    max_retries: int = 3
    # Share of tasks that kill the consumer process that runs them.
    poison_fraction: float = 0.0
    enqueue_batch: int = 20
    read_count: int = 20

    def validate(self) -> None:
        _require(len(self.priorities) == 4 and all(p >= 0 for p in self.priorities), "workload.priorities: 4 shares")
        _require(sum(self.priorities) > 0, "workload.priorities must not all be zero")
        _require(0 <= self.failure_probability < 1, "workload.failure_probability must be in [0, 1)")
        _require(0 <= self.poison_fraction < 1, "workload.poison_fraction must be in [0, 1)")
        _require(self.max_retries >= 0, "workload.max_retries must be zero or positive")
        _require(self.task_ms_mean >= 0 and self.task_ms_max >= 0, "workload.task_ms_* must not be negative")
        _require(self.enqueue_batch >= 1 and self.read_count >= 1, "workload batch sizes must be at least 1")


@dataclass(frozen=True, kw_only=True, slots=True)
class FaultSpec:
    """A kind of fault and how often it strikes; the seed turns it into a schedule."""

    kind: str
    # When: mean seconds between faults (seeded exponential), fixed times, or once this
    # many tasks have completed (a barrier: the same plan strikes at the same point of
    # the workload however fast the machine is).
    every_s: float | None = None
    at_s: tuple[float, ...] = ()
    after_completed: tuple[int, ...] = ()
    # How long a pause lasts, or how long a killed process stays down.
    duration_s: float = 0.5
    # Which: "consumer" (a random one each time), "consumer-N", "reclaimer" (whichever consumer
    # holds tasks it took over from another when the fault strikes), "redis", or for network
    # faults "all", "consumers", "producers". Empty: the kind's default.
    target: str = ""
    # When a consumer fault strikes: once the victim holds tasks ("holding"), while it
    # settles them ("settling": an ack or fail in flight), or at once ("any").
    aim: str = "holding"

    @property
    def resolved_target(self) -> str:
        return self.target or FAULT_KINDS[self.kind].default_target

    def validate(self, consumers: int) -> None:
        _require(self.kind in FAULT_KINDS, f"faults.kind {self.kind!r} is unknown: use one of {sorted(FAULT_KINDS)}")
        timings = sum((self.every_s is not None, bool(self.at_s), bool(self.after_completed)))
        _require(timings == 1, "each fault needs exactly one of every_s, at_s or after_completed")
        _require(self.every_s is None or self.every_s > 0, "faults.every_s must be positive")
        _require(all(n >= 0 for n in self.after_completed), "faults.after_completed must not be negative")
        _require(self.duration_s >= 0, "faults.duration_s must not be negative")
        allowed = targets_for(FAULT_KINDS[self.kind], consumers)
        _require(self.resolved_target in allowed, f"faults.target {self.target!r} of {self.kind}: use one of {allowed}")
        _require(self.aim in FAULT_AIMS, f"faults.aim {self.aim!r} is unknown: use one of {FAULT_AIMS}")


@dataclass(frozen=True, kw_only=True, slots=True)
class Scenario:
    name: str
    description: str = ""
    run: RunSettings = field(default_factory=RunSettings)
    workload: Workload = field(default_factory=Workload)
    queue: QueueOptions = field(default_factory=QueueOptions)
    faults: tuple[FaultSpec, ...] = ()
    expect: Expectations = field(default_factory=Expectations)

    def with_run(self, **overrides: Any) -> Scenario:
        """A copy with run settings replaced (None values are ignored)."""
        chosen = {k: v for k, v in overrides.items() if v is not None}
        run = replace(self.run, **chosen)
        run.validate()
        for fault in self.faults:
            fault.validate(run.consumers)
        return replace(self, run=run)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "description": self.description, "run": _fields(self.run),
            "workload": _fields(self.workload), "queue": _fields(self.queue),
            "faults": [_fields(f) for f in self.faults], "expect": _fields(self.expect),
        }  # fmt: skip


def _fields(value: Any) -> dict[str, Any]:
    return {f.name: getattr(value, f.name) for f in fields(value)}


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ScenarioError(message)


def _build(cls: type[T], table: Any, section: str) -> T:
    if not isinstance(table, dict):
        raise ScenarioError(f"[{section}] must be a table")
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = set(table) - known
    if unknown:
        raise ScenarioError(f"[{section}] has unknown key(s) {sorted(unknown)}; allowed: {sorted(known)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    try:
        return cls(**values)
    except TypeError as exc:
        raise ScenarioError(f"[{section}]: {exc}") from exc


def scenario_from_dict(data: dict[str, Any], source: str = "<dict>") -> Scenario:
    """Build and validate a scenario from parsed TOML/JSON; errors name `source`."""
    try:
        known = {"name", "description", "run", "workload", "queue", "faults", "expect"}
        unknown = set(data) - known
        _require(not unknown, f"unknown top-level key(s) {sorted(unknown)}; allowed: {sorted(known)}")
        _require(isinstance(data.get("name"), str) and bool(data["name"]), "a scenario needs a name")
        faults = data.get("faults", [])
        _require(isinstance(faults, list), "faults must be an array of tables ([[faults]])")
        scenario = Scenario(
            name=data["name"],
            description=data.get("description", ""),
            run=_build(RunSettings, data.get("run", {}), "run"),
            workload=_build(Workload, data.get("workload", {}), "workload"),
            queue=_build(QueueOptions, data.get("queue", {}), "queue"),
            faults=tuple(_build(FaultSpec, f, "faults") for f in faults),
            expect=_build(Expectations, data.get("expect", {}), "expect"),
        )
        scenario.run.validate()
        scenario.workload.validate()
        for fault in scenario.faults:
            fault.validate(scenario.run.consumers)
    except ScenarioError as exc:
        raise ScenarioError(f"{source}: {exc}") from None
    return scenario


def load_scenario(name_or_path: str) -> Scenario:
    """A scenario by name (scenarios/NAME.toml) or by path to a .toml file."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = SCENARIO_DIR / f"{name_or_path}.toml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.toml")))
        raise ScenarioError(f"unknown scenario {name_or_path!r}: use one of {known}, or a path to a .toml file")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML ({exc})") from exc
    return scenario_from_dict(data, str(path))


def list_scenarios() -> list[Scenario]:
    return [load_scenario(str(p)) for p in sorted(SCENARIO_DIR.glob("*.toml"))]
