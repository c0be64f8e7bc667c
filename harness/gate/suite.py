"""Gate suites: TOML files under scenarios/suites/ naming short scenario runs and the
figures a change must not make worse.

    name = "ci"
    seed = 7
    repeat = 3              # runs per queue of each measured case (interleaved)
    max_repeat = 5          # more runs, up to this, when a figure is too close to call
    baseline = "reports/baselines/ci.json"   # stored figures: the fallback and the reference

    [[case]]
    name = "latency"
    scenario = "latency"    # a scenario name or .toml path
    compare_with = "raw"    # run beside the queue under test; figures become ratios to it
    run = { duration_s = 4 }                 # overrides of the scenario's [run]
    workload = { read_count = 10 }           # and of its [workload]
    metrics = [ { figure = "enqueue_to_start.p50", better = "lower", tolerance = 0.5 } ]

A case without metrics only has to be valid. Figures are those of harness.bench.runs.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from harness.errors import ScenarioError
from harness.scenario import SCENARIO_DIR, Scenario, Workload, load_scenario

SUITE_DIR = SCENARIO_DIR / "suites"
BETTER = ("higher", "lower")


@dataclass(frozen=True, kw_only=True, slots=True)
class Metric:
    """A figure that must not get worse than the stored baseline by more than `tolerance`
    (a share: 0.15 = 15%), beyond what the runs' own noise explains."""

    figure: str
    better: str
    tolerance: float

    @property
    def higher_is_better(self) -> bool:
        return self.better == "higher"


@dataclass(frozen=True, kw_only=True, slots=True)
class Case:
    name: str
    scenario: Scenario
    compare_with: str | None
    repeat: int
    max_repeat: int
    metrics: tuple[Metric, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class Suite:
    name: str
    description: str
    seed: int
    baseline: Path
    cases: tuple[Case, ...]
    source: Path


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ScenarioError(message)


def _metric(data: Any, where: str) -> Metric:
    _require(isinstance(data, dict), f"{where}: a metric is a table {{ figure, better, tolerance }}")
    unknown = set(data) - {"figure", "better", "tolerance"}
    _require(not unknown, f"{where}: unknown metric key(s) {sorted(unknown)}; allowed: figure, better, tolerance")
    _require(isinstance(data.get("figure"), str), f"{where}: metric.figure must name a figure, e.g. throughput")
    _require(data.get("better") in BETTER, f"{where}: metric.better must be one of {BETTER}")
    tolerance = data.get("tolerance")
    _require(isinstance(tolerance, int | float) and tolerance >= 0, f"{where}: metric.tolerance must be a share >= 0")
    return Metric(figure=data["figure"], better=data["better"], tolerance=float(tolerance))


def _case(data: Any, suite_repeat: int, suite_max: int, where: str) -> Case:
    _require(isinstance(data, dict), f"{where}: each [[case]] is a table")
    allowed = {"name", "scenario", "compare_with", "run", "workload", "metrics", "repeat", "max_repeat"}
    unknown = set(data) - allowed
    _require(not unknown, f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    _require(isinstance(data.get("name"), str) and bool(data["name"]), f"{where}: a case needs a name")
    where = f"{where} ({data['name']})"
    _require(isinstance(data.get("scenario"), str), f"{where}: a case needs a scenario (a name or a .toml path)")
    scenario = load_scenario(data["scenario"])
    scenario = scenario.with_run(**dict(data.get("run", {})))
    workload_overrides = dict(data.get("workload", {}))
    known = {f.name for f in fields(Workload)}
    _require(
        set(workload_overrides) <= known, f"{where}: unknown workload key(s) {sorted(set(workload_overrides) - known)}"
    )
    if workload_overrides:
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in workload_overrides.items()}
        workload = replace(scenario.workload, **values)
        workload.validate()
        scenario = replace(scenario, workload=workload)
    metrics = tuple(_metric(m, where) for m in data.get("metrics", []))
    compare_with = data.get("compare_with")
    _require(compare_with is None or isinstance(compare_with, str), f"{where}: compare_with names a queue, e.g. raw")
    repeat = int(data.get("repeat", suite_repeat if metrics else 1))
    max_repeat = int(data.get("max_repeat", max(suite_max, repeat)))
    _require(1 <= repeat <= max_repeat, f"{where}: need 1 <= repeat <= max_repeat")
    return Case(name=data["name"], scenario=scenario, compare_with=compare_with, repeat=repeat,
                max_repeat=max_repeat, metrics=metrics)  # fmt: skip


def load_suite(name_or_path: str, repo_root: Path) -> Suite:
    """A suite by name (scenarios/suites/NAME.toml) or path; ScenarioError names what is wrong."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = SUITE_DIR / f"{name_or_path}.toml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in SUITE_DIR.glob("*.toml"))) or "none"
        raise ScenarioError(f"unknown suite {name_or_path!r}: use one of {known}, or a path to a .toml file")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML ({exc})") from exc
    try:
        allowed = {"name", "description", "seed", "repeat", "max_repeat", "baseline", "case"}
        unknown = set(data) - allowed
        _require(not unknown, f"unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        repeat, max_repeat = int(data.get("repeat", 3)), int(data.get("max_repeat", 5))
        cases = tuple(_case(c, repeat, max_repeat, f"case {n + 1}") for n, c in enumerate(data.get("case", [])))
        _require(bool(cases), "a suite needs at least one [[case]]")
        names = [c.name for c in cases]
        _require(len(set(names)) == len(names), "case names must be unique")
        baseline = Path(data.get("baseline", f"reports/baselines/{path.stem}.json"))
    except ScenarioError as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    return Suite(
        name=str(data.get("name", path.stem)),
        description=str(data.get("description", "")),
        seed=int(data.get("seed", 7)),
        baseline=baseline if baseline.is_absolute() else repo_root / baseline,
        cases=cases,
        source=path,
    )
