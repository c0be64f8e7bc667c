"""Chaos: a scenario run from Python (a pytest test, a script), through the same runner as `harness run`.

    chaos = Chaos(out=Path("reports/runs"))
    verdict = chaos.run("kill_workers", queue="myapp.adapter:factory", seed=3, duration=10, consumers=2)
    assert verdict, verdict.summary()

Any field of a scenario's [run], [workload], [queue] or [expect] table can be overridden by name
(`consumers=2`, `failure_probability=0.5`, `pending_timeout_s=1.0`, `max_lost=0`); `duration` is
`duration_s`. The pytest plugin (harness.pytest_plugin) is a thin layer over this class.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from harness.adapters import adapter_factory
from harness.errors import HarnessError, ScenarioError
from harness.kit.agent_errors import agent_errors
from harness.kit.importing import visible_to_subprocesses
from harness.kit.verdict import Verdict
from harness.plan import make_plan
from harness.providers import check_provider
from harness.runner import new_run_folder, run
from harness.scenario import Scenario, load_scenario

Status = Callable[[str], None]
ALIASES = {"duration": "duration_s", "drain_timeout": "drain_timeout_s"}
SECTIONS = ("run", "workload", "queue", "expect")


class Chaos:
    """Runs scenarios against queues; `defaults` (scenario, seed, duration, overrides) fill what a call
    leaves out (the pytest marker's arguments)."""

    def __init__(
        self, *, out: Path, redis: str = "local", status: Status | None = None,
        defaults: Mapping[str, Any] | None = None, on_verdict: Callable[[Verdict], None] | None = None,
    ) -> None:  # fmt: skip
        self.out, self.redis = Path(out), redis
        self.status: Status = status or (lambda line: None)
        self.defaults = dict(defaults or {})
        self.on_verdict = on_verdict
        self.verdicts: list[Verdict] = []

    def run(
        self, scenario: str | None = None, *, queue: str | None = None, seed: int | None = None,
        duration: float | None = None, redis: str | None = None, **overrides: Any,
    ) -> Verdict:  # fmt: skip
        """Run `scenario` (a name from `harness list`, or a .toml path) against `queue` (taskq, taskq-worker,
        peer:NAME, or module:factory) and judge it. HarnessError when the run could not be carried out."""
        name = scenario or self.defaults.get("scenario")
        if not name:
            raise HarnessError("chaos.run needs a scenario: chaos.run('kill_workers', queue=...) "
                               "or @pytest.mark.chaos('kill_workers', ...) on the test")  # fmt: skip
        if not queue:
            raise HarnessError(f"chaos.run({name!r}) needs queue=: taskq, taskq-worker, peer:NAME or module:factory")
        chosen_seed = seed if seed is not None else self.defaults.get("seed")
        chosen_seed = int(chosen_seed) if chosen_seed is not None else random.randrange(1 << 31)
        merged = {**self.defaults.get("overrides", {}), **overrides}
        if duration is not None or self.defaults.get("duration") is not None:
            merged["duration_s"] = duration if duration is not None else self.defaults["duration"]
        chosen = with_overrides(load_scenario(str(name)), merged)
        target = redis or self.redis
        with visible_to_subprocesses(queue):
            adapter_factory(queue)  # an adapter that cannot be loaded says so before anything starts
            check_provider(target)
            queue_name = f"{chosen.name}-{chosen_seed}-{int(time.time() * 1000) % 10**9}"
            plan = make_plan(chosen, seed=chosen_seed, queue=queue, redis=target, queue_name=queue_name)
            folder = new_run_folder(self.out, plan)
            self.status(f"{chosen.name} seed {chosen_seed} on {queue}: run folder {folder}")
            try:
                result = run(plan, folder, status=self.status)
            except HarnessError as exc:
                errors = "; ".join(agent_errors(folder))
                raise HarnessError(
                    f"{chosen.name} seed {chosen_seed} on {queue} could not run: {exc}"
                    + (f"; agents: {errors}" if errors else "")
                    + f" (run folder: {folder})"
                ) from None
        verdict = Verdict(result.verdict, folder, agent_errors=agent_errors(folder))
        self.verdicts.append(verdict)
        if self.on_verdict is not None:
            self.on_verdict(verdict)
        return verdict


def with_overrides(scenario: Scenario, overrides: Mapping[str, Any]) -> Scenario:
    """The scenario with fields of its tables replaced by name; ScenarioError names an unknown one."""
    by_section: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    known = {section: {f.name for f in fields(getattr(scenario, section))} for section in SECTIONS}
    for key, value in overrides.items():
        name = ALIASES.get(key, key)
        section = next((s for s in SECTIONS if name in known[s]), None)
        if section is None:
            choices = "; ".join(f"[{s}] {', '.join(sorted(known[s]))}" for s in SECTIONS)
            raise ScenarioError(f"unknown scenario override {key!r}: use a field of {choices}")
        by_section[section][name] = tuple(value) if isinstance(value, list) else value
    try:
        changed = replace(scenario, **{s: replace(getattr(scenario, s), **v) for s, v in by_section.items() if v})
    except TypeError as exc:
        raise ScenarioError(f"bad scenario override: {exc}") from None
    changed.run.validate()
    changed.workload.validate()
    for fault in changed.faults:
        fault.validate(changed.run.consumers)
    return changed
