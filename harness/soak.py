"""The soak: hunt false alarms by running every scenario on a correct queue, over many seeds and durations.

A verdict of invalid on a correct queue is a harness bug as serious as a missed one, and so is an
unknown where the plan hit something. The soak draws (scenario, seed, duration) triples from its own
seed, runs them in that random order against a queue that should be valid (taskq, taskq-worker), and
reports every verdict that is not valid with its run folder; the folders of valid runs are removed
unless asked to keep them (a soak of hundreds of runs would fill the disk).
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.errors import HarnessError
from harness.faults import TOPOLOGY_KINDS
from harness.folders import stamped_folder
from harness.peers import PEERS
from harness.plan import make_plan
from harness.runner import new_run_folder, run
from harness.scenario import Scenario, list_scenarios, load_scenario

# A child-process fault proves nothing on a worker without children (unknown by design): not soaked.
_NEEDS_CHILDREN = frozenset({"kill-child"})
_CLUSTER_KINDS = frozenset({"slot-migration", "shard-kill"})

Status = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class SoakCase:
    scenario: str
    seed: int
    duration_s: float
    queue: str = "taskq"

    @property
    def redis(self) -> str:
        return redis_for(load_scenario(self.scenario))

    @property
    def command(self) -> str:
        redis = "" if self.redis == "local" else f" --redis {self.redis}"
        return (
            f"harness run {self.scenario} --seed {self.seed} --duration {self.duration_s:g} --queue {self.queue}{redis}"
        )


def redis_for(scenario: Scenario) -> str:
    """The topology a scenario's faults act on: a cluster, replicas with Sentinels, or one local server."""
    kinds = {fault.kind for fault in scenario.faults}
    if kinds & _CLUSTER_KINDS or scenario.name.startswith("cluster_"):
        return "cluster"
    return "replicated" if kinds & TOPOLOGY_KINDS else "local"


def soaked_scenarios() -> list[str]:
    """Every scenario but those a correct queue may leave unknown by design: child-process faults, and the
    scenarios written to expose one peer library's mechanism (named after it: taskiq_kill_at_end kills at
    the end of the load, when taskiq still holds a prefetched backlog and taskq's workers hold nothing)."""
    peers = tuple(f"{name}_" for name in PEERS)
    return [s.name for s in list_scenarios()
            if not {f.kind for f in s.faults} & _NEEDS_CHILDREN and not s.name.startswith(peers)]  # fmt: skip


@dataclass(slots=True)
class SoakOutcome:
    case: SoakCase
    valid: bool | None
    folder: str
    seconds: float
    failing: list[str] = field(default_factory=list)  # checkers not valid, with their notes
    error: str = ""


def draw_cases(
    runs: int, *, seed: int, queues: Sequence[str], scenarios: Sequence[str] | None = None,
    min_duration_s: float = 10.0, max_duration_s: float = 60.0,
) -> list[SoakCase]:  # fmt: skip
    """`runs` cases in random order: every scenario as evenly as `runs` allows, random seeds and durations."""
    rng = random.Random(f"soak:{seed}")
    names = list(scenarios) if scenarios else soaked_scenarios()
    pool = [(name, queue) for name in names for queue in queues]
    chosen = [pool[n % len(pool)] for n in range(runs)]
    rng.shuffle(chosen)
    return [
        SoakCase(name, rng.randrange(1, 1 << 30), round(rng.uniform(min_duration_s, max_duration_s)), queue)
        for name, queue in chosen
    ]


def run_case(case: SoakCase, out: Path, *, keep: bool) -> SoakOutcome:
    scenario = load_scenario(case.scenario).with_run(duration_s=case.duration_s)
    queue_name = f"soak-{case.scenario}-{case.seed}-{int(time.time() * 1000) % 10**9}"
    plan = make_plan(scenario, seed=case.seed, queue=case.queue, redis=case.redis, queue_name=queue_name)
    folder = new_run_folder(out, plan)
    started = time.monotonic()
    try:
        result = run(plan, folder, status=lambda line: None)
    except HarnessError as exc:
        return SoakOutcome(case, None, str(folder), round(time.monotonic() - started, 1), error=str(exc))
    checkers = result.verdict["checkers"]
    failing = [f"{c['name']}: {c['note'] or c['figures']}"[:300] for c in checkers if c["valid"] is not True]
    outcome = SoakOutcome(case, result.valid, str(folder), round(time.monotonic() - started, 1), failing)
    if result.valid is True and not keep:
        shutil.rmtree(folder, ignore_errors=True)
        outcome.folder = ""
    return outcome


def soak(cases: Sequence[SoakCase], out: Path, *, status: Status, keep: bool = False) -> Path:
    """Run the cases in order; soak.json and soak.md in a folder of their own, updated after every run."""
    folder = stamped_folder(out, "soak")
    outcomes: list[SoakOutcome] = []
    started = time.monotonic()
    for number, case in enumerate(cases, 1):
        outcome = run_case(case, folder / "runs", keep=keep)
        outcomes.append(outcome)
        label = {True: "valid", False: "INVALID", None: "unknown"}[outcome.valid]
        status(f"{number}/{len(cases)} {label:8} {outcome.seconds:5.1f}s  {case.command}"
               + (f"  -> {outcome.folder}" if outcome.valid is not True else ""))  # fmt: skip
        _write(folder, outcomes, time.monotonic() - started, len(cases))
    return folder


def _write(folder: Path, outcomes: list[SoakOutcome], elapsed_s: float, planned: int) -> None:
    counts = {label: sum(1 for o in outcomes if o.valid is value)
              for label, value in (("valid", True), ("invalid", False), ("unknown", None))}  # fmt: skip
    bad = [o for o in outcomes if o.valid is not True]
    (folder / "soak.json").write_text(json.dumps({
        "planned": planned, "ran": len(outcomes), "elapsed_s": round(elapsed_s, 1), **counts,
        "not_valid": [asdict(o) for o in bad], "all": [asdict(o) for o in outcomes],
    }, indent=2))  # fmt: skip
    lines = [f"# Soak: {len(outcomes)} of {planned} runs in {elapsed_s / 60:.1f} min", "",
             f"valid {counts['valid']}, invalid {counts['invalid']}, unknown {counts['unknown']}", ""]  # fmt: skip
    for o in bad:
        lines += [f"- `{o.case.command}`: {o.valid} ({o.error or '; '.join(o.failing)}) in `{o.folder}`"]
    (folder / "soak.md").write_text("\n".join(lines) + "\n")
