"""Scenarios: data files (TOML) of workload, faults and expectations, and loading them.

A scenario file defines one scenario value; `harness list` shows them all. Every key
is checked, first against the type its dataclass field declares (so a field added
later is checked too), then against its range: an unknown key, a missing one, a value
of the wrong type or out of range is a ScenarioError naming the file, the key and what
is allowed. Nothing else escapes the loader: the CLI turns that error into one line
and exit 2.
"""

from __future__ import annotations

import math
import tomllib
import types
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from harness.adapters.base import QueueOptions
from harness.checkers.base import Expectations
from harness.errors import ScenarioError
from harness.faults import FAULT_AIMS, FAULT_KINDS, targets_for
from harness.providers.local import PERSISTENCE_ARGS

_HERE = Path(__file__).resolve().parent
# A checkout keeps the scenario files beside the packages; an installed wheel carries them inside the
# package (pyproject.toml: force-include), so `pip install` of the project finds them too.
SCENARIO_DIR = next((d for d in (_HERE.parent / "scenarios", _HERE / "scenarios") if d.is_dir()), _HERE / "scenarios")
T = TypeVar("T")
# More agent processes than this is a typo on any machine the harness runs on.
MAX_PROCESSES = 256
# The agents' Redis socket timeout (harness/adapters/taskq_adapter.py): a blocking read must end before it.
AGENT_SOCKET_TIMEOUT_MS = 5000


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
    # How long the drain waits without the queue getting any emptier (harness.runner._drain).
    drain_timeout_s: float = 30.0
    persistence: str = "none"

    def validate(self) -> None:
        _require(self.duration_s > 0, "run.duration_s must be positive")
        _require(1 <= self.producers <= MAX_PROCESSES, f"run.producers must be between 1 and {MAX_PROCESSES}")
        _require(1 <= self.consumers <= MAX_PROCESSES, f"run.consumers must be between 1 and {MAX_PROCESSES}")
        _require(self.rate >= 0, "run.rate must be zero (as fast as possible) or positive")
        _require(self.tasks is None or self.tasks >= 1, "run.tasks must be at least 1")
        _require(self.drain_timeout_s > 0, "run.drain_timeout_s must be positive")
        _require(
            self.persistence in PERSISTENCE_ARGS,
            f"run.persistence {self.persistence!r}: use one of {sorted(PERSISTENCE_ARGS)}",
        )


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
    # Tasks one hosted worker process runs at once (the library's concurrency, max_jobs, threads).
    concurrency: int = 10

    def validate(self) -> None:
        _require(len(self.priorities) == 4 and all(p >= 0 for p in self.priorities), "workload.priorities: 4 shares")
        _require(sum(self.priorities) > 0, "workload.priorities must not all be zero")
        _require(0 <= self.failure_probability < 1, "workload.failure_probability must be in [0, 1)")
        _require(0 <= self.poison_fraction < 1, "workload.poison_fraction must be in [0, 1)")
        _require(self.max_retries >= 0, "workload.max_retries must be zero or positive")
        _require(self.task_ms_mean >= 0, "workload.task_ms_mean must not be negative")
        _require(self.task_ms_max >= 0, "workload.task_ms_max must not be negative")
        _require(self.enqueue_batch >= 1, "workload.enqueue_batch must be at least 1")
        _require(self.read_count >= 1, "workload.read_count must be at least 1")
        _require(self.concurrency >= 1, "workload.concurrency must be at least 1")


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
        _require(all(t >= 0 for t in self.at_s), "faults.at_s must not be negative")
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
    """An instance of the dataclass `cls` from one TOML table: every key known, every value of its field's type."""
    if not isinstance(table, dict):
        raise ScenarioError(f"[{section}] must be a table, got {_shown(table)}")
    specs = _field_specs(cls)
    unknown = set(table) - set(specs)
    if unknown:
        raise ScenarioError(f"[{section}] has unknown key(s) {sorted(map(str, unknown))}; allowed: {sorted(specs)}")
    missing = [name for name, spec in specs.items() if spec.required and name not in table]
    if missing:
        name = missing[0]
        raise ScenarioError(f"[{section}] needs {name} ({specs[name].expected})")
    values = {}
    for key, value in table.items():
        spec = specs[key]
        if not spec.accepts(value):
            raise ScenarioError(f"[{section}] {key} = {_shown(value)}: expected {spec.expected}")
        values[key] = tuple(value) if isinstance(value, list) else value
    return cls(**values)


@dataclass(frozen=True, slots=True)
class _FieldSpec:
    """What one dataclass field accepts, read from its type annotation."""

    accepts: Callable[[Any], bool]
    expected: str  # for the error: "a number", "an array of 4 numbers", ...
    required: bool


def _field_specs(cls: type[Any]) -> dict[str, _FieldSpec]:
    hints = get_type_hints(cls)
    specs = {}
    for item in fields(cls):
        accepts, expected = _type_check(hints[item.name])
        required = item.default is MISSING and item.default_factory is MISSING
        specs[item.name] = _FieldSpec(accepts, expected, required)
    return specs


def _is_number(value: Any) -> bool:
    # bool is an int to Python but never a number in a scenario; NaN and infinity are never meant.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


_SCALARS: dict[Any, tuple[Callable[[Any], bool], str]] = {
    float: (_is_number, "a number"),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    bool: (lambda v: isinstance(v, bool), "true or false"),
    str: (lambda v: isinstance(v, str), "a string"),
}
_PLURALS = {"a number": "numbers", "an integer": "integers", "true or false": "booleans", "a string": "strings"}


def _type_check(annotation: Any) -> tuple[Callable[[Any], bool], str]:
    """(accepts, expected) for a field's annotation; an annotation this does not know accepts anything."""
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType) and type(None) in args:
        inner, expected = _type_check(next(a for a in args if a is not type(None)))
        return (lambda v: v is None or inner(v)), expected
    if origin is tuple and args:
        return _sequence_check(args)
    return (lambda v: True), "any value"


def _sequence_check(args: tuple[Any, ...]) -> tuple[Callable[[Any], bool], str]:
    item, item_expected = _type_check(args[0])
    plural = _PLURALS.get(item_expected, item_expected)
    if len(args) == 2 and args[1] is Ellipsis:
        return (lambda v: isinstance(v, list | tuple) and all(item(x) for x in v)), f"an array of {plural}"
    size = len(args)
    return (lambda v: isinstance(v, list | tuple) and len(v) == size and all(item(x) for x in v)), (
        f"an array of {size} {plural}"
    )


def _shown(value: Any) -> str:
    """A value as the error shows it: its repr, cut short, and its kind when the repr hides it."""
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    kinds = {str: "a string", bool: "a boolean", dict: "a table", list: "an array", tuple: "an array"}
    kind = kinds.get(type(value))
    if isinstance(value, float) and not math.isfinite(value):
        kind = "not a finite number"
    return f"{text} ({kind})" if kind else text


def _validate_queue(options: QueueOptions) -> None:
    _require(options.pending_timeout_s > 0, "queue.pending_timeout_s must be positive")
    _require(options.retry_base_delay_s >= 0, "queue.retry_base_delay_s must not be negative")
    _require(options.retry_max_delay_s >= 0, "queue.retry_max_delay_s must not be negative")
    _require(options.delivery_cap >= 1, "queue.delivery_cap must be at least 1")
    _require(options.shutdown_timeout_s >= 0, "queue.shutdown_timeout_s must not be negative")
    _require(options.replicas_to_wait >= 0, "queue.replicas_to_wait must not be negative")
    _require(options.replica_wait_timeout_ms >= 0, "queue.replica_wait_timeout_ms must not be negative")
    _require(options.queues >= 1, "queue.queues must be at least 1")
    _require(
        0 <= options.block_ms < AGENT_SOCKET_TIMEOUT_MS,
        f"queue.block_ms must be at least 0 and below the agents' socket timeout ({AGENT_SOCKET_TIMEOUT_MS} ms)",
    )


def _validate_expect(expect: Expectations) -> None:
    """Every number an expectation holds is a count or a duration: none may be negative."""
    for item in fields(expect):
        value = getattr(expect, item.name)
        if _is_number(value):
            _require(value >= 0, f"expect.{item.name} must not be negative")


_TOP_LEVEL = ("name", "description", "run", "workload", "queue", "faults", "expect")


def scenario_from_dict(data: dict[str, Any], source: str = "<dict>") -> Scenario:
    """Build and validate a scenario from parsed TOML/JSON; errors name `source`."""
    try:
        scenario = _scenario(data)
        scenario.run.validate()
        scenario.workload.validate()
        _validate_queue(scenario.queue)
        _validate_expect(scenario.expect)
        for fault in scenario.faults:
            fault.validate(scenario.run.consumers)
    except ScenarioError as exc:
        raise ScenarioError(f"{source}: {exc}") from None
    return scenario


def _scenario(data: Any) -> Scenario:
    _require(isinstance(data, dict), f"a scenario must be a table of {', '.join(_TOP_LEVEL)}")
    unknown = set(data) - set(_TOP_LEVEL)
    _require(not unknown, f"unknown top-level key(s) {sorted(map(str, unknown))}; allowed: {sorted(_TOP_LEVEL)}")
    name, description = data.get("name"), data.get("description", "")
    _require(isinstance(name, str) and bool(name), f"a scenario needs a name (a non-empty string), got {_shown(name)}")
    _require(isinstance(description, str), f"description = {_shown(description)}: expected a string")
    faults = data.get("faults", [])
    _require(isinstance(faults, list), f"faults must be an array of tables ([[faults]]), got {_shown(faults)}")
    return Scenario(
        name=name,
        description=description,
        run=_build(RunSettings, data.get("run", {}), "run"),
        workload=_build(Workload, data.get("workload", {}), "workload"),
        queue=_build(QueueOptions, data.get("queue", {}), "queue"),
        faults=tuple(_build(FaultSpec, f, f"faults[{n}]") for n, f in enumerate(faults)),
        expect=_build(Expectations, data.get("expect", {}), "expect"),
    )


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
