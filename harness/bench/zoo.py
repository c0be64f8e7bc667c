"""The mutant zoo, measured: for each mutant, the short run of the scenario that exposes it (what the
checker that names its bug said), then `harness search` from scratch (how many plans until one
failed, how many runs the shrinking took, the shrunk plan, how long it all took), then one more run
of the shrunk plan (which checkers it trips).

    python -m harness.bench.zoo [--mutants early-ack,no-reclaim] [--examples 30] [--max-shrinks 10]
                                [--seed 0] [--out reports/zoo]

Writes zoo.json and zoo.md (the table docs/mutant-zoo.md quotes) into a new folder under --out,
with the plan files. Times are wall-clock on whatever else the machine runs: the load average is
recorded before and after each mutant. Not part of CI: a full pass takes tens of minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from harness.adapters.zoo import EXPOSURES
from harness.faults import FAULT_KINDS
from harness.folders import stamped_folder
from harness.plan import Plan, make_plan
from harness.runner import new_run_folder, run
from harness.scenario import load_scenario
from harness.search import plan_size, search

MUTANT_PREFIX = "taskq-mutant:"
# The chaos tests' arguments (tests/chaos/test_scenarios.py, test_redis_scenarios.py), so the reference
# queue is judged valid on the same plans there.
WORKER_RUN = {"seed": 7, "duration_s": 5.0, "drain_timeout_s": 15.0}
REDIS_RUN = {"seed": 11, "duration_s": 5.0, "drain_timeout_s": 20.0}


def short_run(scenario_name: str) -> dict[str, Any]:
    """Seed, duration and drain timeout of the chaos tests' short run of a scenario."""
    scenario = load_scenario(scenario_name)
    worker_only = all(FAULT_KINDS[f.kind].role == "consumer" for f in scenario.faults)
    return dict(WORKER_RUN if worker_only else REDIS_RUN)


def cli_args(scenario_name: str) -> list[str]:
    """short_run as `harness run` options."""
    settings = short_run(scenario_name)
    return ["--duration", f"{settings['duration_s']:g}", "--drain-timeout", f"{settings['drain_timeout_s']:g}",
            "--seed", str(settings["seed"])]  # fmt: skip


def _judged(plan: Plan) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as runs:
        verdict = run(plan, new_run_folder(Path(runs), plan), status=lambda line: None, reports=False).verdict
    return {
        "valid": verdict["valid"],
        "invalid": {
            c["name"]: {k: v for k, v in c["figures"].items() if v and isinstance(v, int | float)}
            for c in verdict["checkers"]
            if c["valid"] is False
        },
    }


def exposure_run(mutant: str) -> dict[str, Any]:
    """The chaos test's run of the mutant's scenario: the naming checker's verdict and figure."""
    exposure = EXPOSURES[mutant]
    settings = short_run(exposure.scenario)
    scenario = load_scenario(exposure.scenario).with_run(
        duration_s=settings["duration_s"], drain_timeout_s=settings["drain_timeout_s"]
    )
    plan = make_plan(scenario, seed=settings["seed"], queue=MUTANT_PREFIX + mutant, redis="local",
                     queue_name=f"zoo-{uuid.uuid4().hex[:8]}")  # fmt: skip
    started = time.monotonic()
    judged = _judged(plan)
    named = judged["invalid"].get(exposure.checker, {})
    return {
        "scenario": exposure.scenario, "seed": settings["seed"], "checker": exposure.checker,
        "figure": exposure.figure, "value": named.get(exposure.figure, 0),
        "caught": exposure.checker in judged["invalid"], "invalid": judged["invalid"],
        "seconds": round(time.monotonic() - started, 1),
    }  # fmt: skip


def search_run(mutant: str, *, examples: int, max_shrinks: int, seed: int, out: Path) -> dict[str, Any]:
    """`harness search` from scratch, then one run of the shrunk plan."""
    queue = MUTANT_PREFIX + mutant
    outcome = search(queue, max_examples=examples, out=out, seed=seed, max_shrinks=max_shrinks,
                     status=lambda line: print(f"  {mutant}: {line}", file=sys.stderr))  # fmt: skip
    found: dict[str, Any] = {"found": outcome.plan is not None, "plans_until_found": outcome.examples_to_find,
                             "shrink_runs": outcome.shrink_steps, "seconds": round(outcome.seconds, 1)}  # fmt: skip
    if outcome.plan is not None:
        found["plan"] = plan_size(outcome.plan)
        found["plan_steps"] = plan_steps(outcome.plan)
        found["plan_file"] = str(outcome.plan_file)
        found["replay"] = _judged(outcome.plan)
    return found


def plan_steps(plan: Plan) -> int:
    """A plan's length as a reproduction to read: its enqueue batches plus its fault events."""
    run_settings, workload = plan.scenario.run, plan.scenario.workload
    batches = -(-(run_settings.tasks or 0) // workload.enqueue_batch)
    return batches + len(plan.faults)


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| mutant | scenario | checker: figure (short run) | plans until found | shrink runs | shrunk plan (steps) "
        "| search time | load avg before/after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        exposed, searched = row["exposure"], row["search"]
        flagged = f"{exposed['checker']}: {exposed['figure']}={exposed['value']}" + (
            "" if exposed["caught"] else " (NOT CAUGHT)"
        )
        shrunk = f"{searched['plan']} ({searched['plan_steps']})" if searched["found"] else "not found"
        load = f"{row['load_before']:.1f} / {row['load_after']:.1f}"
        lines.append(f"| `{row['mutant']}` | `{exposed['scenario']}` | {flagged} | {searched['plans_until_found']} "
                     f"| {searched['shrink_runs']} | {shrunk} | {searched['seconds']:.0f} s | {load} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.bench.zoo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mutants", default=",".join(EXPOSURES), help="Comma-separated zoo mutants (default: all).")
    parser.add_argument("--examples", type=int, default=30, help="Plans the search may try before it gives up.")
    parser.add_argument("--max-shrinks", type=int, default=10, help="Runs of smaller plans once one failed.")
    parser.add_argument("--seed", type=int, default=0, help="The search's own seed.")
    parser.add_argument("--out", type=Path, default=Path("reports/zoo"))
    args = parser.parse_args(argv)
    mutants = [m.strip() for m in args.mutants.split(",") if m.strip()]
    unknown = [m for m in mutants if m not in EXPOSURES]
    if unknown:
        print(f"unknown zoo mutant(s) {unknown}: use some of {', '.join(EXPOSURES)}", file=sys.stderr)
        return 2
    folder = stamped_folder(args.out, "zoo")
    rows = []
    for mutant in mutants:
        load_before = os.getloadavg()[0]
        print(f"{mutant}: exposure run, then search", file=sys.stderr)
        exposure = exposure_run(mutant)
        searched = search_run(mutant, examples=args.examples, max_shrinks=args.max_shrinks, seed=args.seed, out=folder)
        rows.append({"mutant": mutant, "exposure": exposure, "search": searched, "load_before": load_before,
                     "load_after": os.getloadavg()[0]})  # fmt: skip
        (folder / "zoo.json").write_text(json.dumps(rows, indent=2))
    (folder / "zoo.md").write_text(table(rows) + "\n")
    print(table(rows))
    print(f"\n{folder}")
    return 0 if all(r["exposure"]["caught"] and r["search"]["found"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
