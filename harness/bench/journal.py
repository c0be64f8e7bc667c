"""What journaling costs: the same run with every agent journaling, and with none.

Producers offer a fixed number of tasks as fast as they can and consumers do no
simulated work, so journaling weighs as much as it ever can; throughput is the
queue's own completion count over the time from the start of the load to the end of
the drain, so both runs are measured the same way. Rounds alternate on and off.

    python -m harness.bench.journal [--tasks N] [--rounds R] [--consumers C]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

import orjson

from harness.plan import make_plan
from harness.runner import new_run_folder, run
from harness.scenario import load_scenario

TARGET_OVERHEAD = 0.10


def one_round(out: Path, *, journaling: bool, tasks: int, consumers: int, seed: int) -> float:
    steady = load_scenario("steady")
    # No simulated work: the agents do nothing but queue operations and journaling, the
    # case where journaling weighs most.
    scenario = replace(steady, workload=replace(steady.workload, task_ms_mean=0.0)).with_run(
        rate=0.0, tasks=tasks, producers=2, consumers=consumers
    )
    plan = make_plan(scenario, seed=seed, queue="taskq", redis="local", queue_name=f"journal-bench-{seed}")
    folder = new_run_folder(out, plan)
    run(plan, folder, status=lambda line: None, journaling=journaling)
    phases = json.loads((folder / "run.json").read_text())["phases_ns"]
    runner_ops = [orjson.loads(line) for line in (folder / "journals" / "runner.jsonl").read_bytes().splitlines()]
    [final] = [op for op in runner_ops if op["f"] == "final"]
    completed = int(final["value"]["stats"]["tasks_completed"])
    return completed / ((int(phases["final"]) - int(phases["load"])) / 1e9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=40_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--consumers", type=int, default=2)
    args = parser.parse_args()
    rates: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as out:
        for round_number in range(args.rounds):
            for journaling in (True, False) if round_number % 2 == 0 else (False, True):
                rate = one_round(
                    Path(out), journaling=journaling, tasks=args.tasks, consumers=args.consumers, seed=round_number
                )
                rates[journaling].append(rate)
                label = "on " if journaling else "off"
                print(f"round {round_number + 1}/{args.rounds} journaling {label}: {rate:9,.0f} tasks/s")
    on, off = statistics.median(rates[True]), statistics.median(rates[False])
    overhead = 1 - on / off
    print(f"journaling on:  {on:9,.0f} tasks/s (median of {args.rounds})")
    print(f"journaling off: {off:9,.0f} tasks/s (median of {args.rounds})")
    verdict = "OK" if overhead <= TARGET_OVERHEAD else "over target"
    print(f"journaling costs {overhead:.1%} of throughput (target <= {TARGET_OVERHEAD:.0%}: {verdict})")


if __name__ == "__main__":
    main()
