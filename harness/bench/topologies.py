"""Figures past one server, each from judged runs of the scenarios:

    python -m harness.bench.topologies failovers [--seeds 1,2,3] [--servers redis,valkey] [--duration 10]
        acknowledged tasks lost per failover (sentinel_failover: the primary SIGKILLed), split brain
        (sentinel_partition) and manual promotion of a lagging replica (sentinel_promote_lagging), each
        without WAIT and with WAIT for both replicas, on each server binary; and how long after the strike
        throughput was back (half the rate of the 3 s before it, over 0.5 s all after the strike)
    python -m harness.bench.topologies failovers --cluster [--seeds ...] [--servers ...]
        the same for cluster_node_kill (the queue's primary SIGKILLed), without WAIT and with WAIT for its replica
    python -m harness.bench.topologies wait-cost [--repeat 3] [--servers redis]
        the `throughput` scenario (20,000 tasks as fast as they go) on a primary with two replicas, with
        and without WAIT for both replicas after every enqueue, ack and fail, interleaved: the ratio
    python -m harness.bench.topologies wait-latency [--servers redis,valkey] [--calls 2000]
        one process, one topology: an enqueue and an ack of one task with and without WAIT for both
        replicas, alternating call by call (so the machine's load hits both alike): median latency, ratio
    python -m harness.bench.topologies shards [--repeat 3]
        cluster_many_queues (nine queues, as fast as they go) on one server and on the three-shard
        cluster, interleaved, in one invocation: tasks/s of each and the ratio cluster / one server

Each run is a normal run folder under reports/bench/ (verdict, history, plots); the summary is printed
and saved beside them as topologies.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.checkers.index import HistoryIndex
from harness.checkers.throughput import _back_after_s, _baseline_rate, completion_times  # the same rule as recovery
from harness.errors import HarnessError
from harness.folders import stamped_folder
from harness.history import read_history
from harness.plan import make_plan
from harness.providers import make_provider
from harness.runner import new_run_folder, run
from harness.scenario import load_scenario
from taskq import TaskQueue

SERVERS = {"redis": "replicated", "valkey": "replicated:valkey"}
CLUSTERS = {"redis": "cluster", "valkey": "cluster:valkey"}
FAILOVER_SCENARIOS = ("sentinel_failover", "sentinel_partition", "sentinel_promote_lagging")
CLUSTER_SCENARIOS = ("cluster_node_kill",)
# Each failover scenario without WAIT, and with WAIT for every replica (as sentinel_failover_wait sets it):
# two on a Sentinel topology, one (a shard's) on a cluster.
WAITS = (0, 2)
CLUSTER_WAITS = (0, 1)


@dataclass(frozen=True, slots=True)
class FaultFigures:
    kind: str
    lost: int  # acknowledged tasks lost in its window
    back_after_kill_s: float | None
    promoted_after_s: float | None


def run_one(
    scenario_name: str, redis: str, seed: int, out: Path, *, queue: dict[str, Any] | None = None, **overrides: Any
) -> tuple[Path, dict[str, Any]]:
    scenario = load_scenario(scenario_name).with_run(**overrides)
    if queue:
        scenario = replace(scenario, queue=replace(scenario.queue, **queue))
    queue_name = f"{scenario.name}-{seed}-{int(time.time() * 1000) % 10**9}"
    plan = make_plan(scenario, seed=seed, queue="taskq", redis=redis, queue_name=queue_name)
    folder = new_run_folder(out, plan)
    result = run(plan, folder, status=lambda line: None)
    return folder, result.verdict


def fault_figures(folder: Path, verdict: dict[str, Any]) -> list[FaultFigures]:
    """Per applied fault: the acknowledged tasks its window lost, and seconds from its start to throughput back."""
    index = HistoryIndex.build(read_history(folder))
    times = completion_times(index)
    load_ns = index.phases.get("load", times[0] if times else 0)
    delivery = next(c for c in verdict["checkers"] if c["name"] == "delivery")["figures"]
    windows = {round(w["at_s"], 3): w["lost"] for w in delivery.get("fault_windows", [])}
    ends = _promotions(folder)
    found = []
    for fault in index.faults:
        if fault.outcome == "info":
            continue
        rate = _baseline_rate(times, load_ns, fault)
        back = None if rate is None else _back_after_s(times, fault.start_ns, rate)
        at_s = round((fault.start_ns - load_ns) / 1e9, 3)
        found.append(FaultFigures(fault.kind, windows.get(at_s, 0), back, ends.get(fault.process)))
    return found


def _promotions(folder: Path) -> dict[str, float | None]:
    """promoted_after_s of each nemesis process's fault end, from the history."""
    found: dict[str, float | None] = {}
    for op in read_history(folder):
        if op["f"] == "fault" and op["type"] == "ok":
            found[op["process"]] = (op.get("value") or {}).get("promoted_after_s")
    return found


def failovers(
    seeds: list[int], servers: list[str], duration_s: float, out: Path, *, cluster: bool = False
) -> dict[str, Any]:
    rows = []
    scenarios, waits, specs = (CLUSTER_SCENARIOS, CLUSTER_WAITS, CLUSTERS) if cluster else (
        FAILOVER_SCENARIOS, WAITS, SERVERS)  # fmt: skip
    for server in servers:
        for scenario, wait, seed in ((sc, w, sd) for sc in scenarios for w in waits for sd in seeds):
            queue = {"replicas_to_wait": wait, "replica_wait_timeout_ms": 500} if wait else None
            folder, verdict = run_one(scenario, specs[server], seed, out, queue=queue, duration_s=duration_s)
            delivery = next(c for c in verdict["checkers"] if c["name"] == "delivery")["figures"]
            for f in fault_figures(folder, verdict):
                rows.append({
                        "server": server, "scenario": scenario, "wait": wait, "seed": seed, "valid": verdict["valid"],
                        "kind": f.kind, "lost_acknowledged": f.lost, "back_after_kill_s": f.back_after_kill_s,
                        "promoted_after_s": f.promoted_after_s, "enqueue_info": delivery["enqueue_info"],
                        "duplicated_explained": delivery["duplicated_explained"], "folder": str(folder),
                })  # fmt: skip
                print(_row_line(rows[-1]), flush=True)
    return {"failovers": rows}


def _row_line(row: dict[str, Any]) -> str:
    back = row["back_after_kill_s"]
    promoted = row["promoted_after_s"]
    return (
        f"{row['server']:6} {row['scenario']:24} WAIT {row['wait']} seed {row['seed']:<3} {row['kind']:15} "
        f"lost {row['lost_acknowledged']:4}  back {'-' if back is None else f'{back:.2f}'} s after the strike"
        f"  (promoted after {'-' if promoted is None else f'{promoted:.2f}'} s; unknown enqueues "
        f"{row['enqueue_info']}, reruns {row['duplicated_explained']}; valid {row['valid']})"
    )


def wait_cost(repeat: int, servers: list[str], out: Path) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for server in servers:
        rates: dict[str, list[float]] = {"no_wait": [], "wait_2": []}
        for i in range(repeat):
            order = ("no_wait", "wait_2") if i % 2 == 0 else ("wait_2", "no_wait")
            for case in order:
                queue = {"replicas_to_wait": 2, "replica_wait_timeout_ms": 1000} if case == "wait_2" else {}
                _, verdict = run_one("throughput", SERVERS[server], 200 + i, out, queue=queue, tasks=20_000)
                rate = float((verdict["throughput"].get("overall") or {}).get("per_second") or 0)
                rates[case].append(rate)
                print(f"{server:6} {case:8} run {i + 1}: {rate:,.0f} tasks/s (valid {verdict['valid']})", flush=True)
        plain, waiting = statistics.median(rates["no_wait"]), statistics.median(rates["wait_2"])
        ratio = waiting / plain if plain else None
        print(f"{server}: median without WAIT {plain:,.0f} tasks/s, with WAIT 2 {waiting:,.0f} tasks/s, "
              f"ratio {ratio:.2f}" if ratio else f"{server}: no throughput measured", flush=True)  # fmt: skip
        found[server] = {"tasks_per_s": rates, "ratio": ratio}
    return {"wait_cost": found}


def wait_latency(servers: list[str], calls: int, out: Path) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for server in servers:
        provider = make_provider(SERVERS[server], out / f"wait-latency-{server}")
        provider.start()
        try:
            found[server] = asyncio.run(_alternate(provider.url, calls))
        finally:
            provider.stop()
        plain, waiting = found[server]["no_wait_ms"], found[server]["wait_2_ms"]
        print(f"{server}: enqueue + ack of one task, median {plain:.3f} ms without WAIT, {waiting:.3f} ms with WAIT 2"
              f" (ratio {waiting / plain:.2f}; {calls} calls each, alternating)", flush=True)  # fmt: skip
    return {"wait_latency": found}


async def _alternate(url: str, calls: int) -> dict[str, float]:
    plain = TaskQueue(url, name="wait-latency-0")
    waiting = TaskQueue(url, name="wait-latency-2", replicas_to_wait=2, replica_wait_timeout_ms=1000)
    timings: dict[str, list[float]] = {"no_wait_ms": [], "wait_2_ms": []}
    await plain.connect()
    await waiting.connect()
    try:
        for _ in range(calls):
            for name, queue in (("no_wait_ms", plain), ("wait_2_ms", waiting)):
                started = time.perf_counter()
                await queue.add_task("t", {})
                [delivery] = await queue.read("c", 1, block_ms=0)
                await queue.ack([delivery.receipt])
                timings[name].append((time.perf_counter() - started) * 1000)
    finally:
        await plain.disconnect()
        await waiting.disconnect()
    return {name: round(statistics.median(values), 3) for name, values in timings.items()}


def shards(repeat: int, out: Path) -> dict[str, Any]:
    rates: dict[str, list[float]] = {"local": [], "cluster": []}
    for i in range(repeat):
        order = ("local", "cluster") if i % 2 == 0 else ("cluster", "local")
        for redis in order:
            _, verdict = run_one("cluster_many_queues", redis, 100 + i, out)
            overall = verdict["throughput"].get("overall") or {}
            rate = float(overall.get("per_second") or 0)
            rates[redis].append(rate)
            print(f"{redis:8} run {i + 1}: {rate:,.0f} tasks/s (valid {verdict['valid']})", flush=True)
    local, cluster = statistics.median(rates["local"]), statistics.median(rates["cluster"])
    ratio = cluster / local if local else None
    print(f"median: one server {local:,.0f} tasks/s, cluster {cluster:,.0f} tasks/s, cluster / one server = "
          f"{ratio:.2f}" if ratio else "no throughput measured")  # fmt: skip
    return {"shards": {"tasks_per_s": rates, "median_local": local, "median_cluster": cluster, "ratio": ratio}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.bench.topologies", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("failovers", "wait-cost", "wait-latency", "shards"))
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--cluster", action="store_true", help="failovers: cluster_node_kill on a cluster instead")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--servers", default="redis,valkey")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("reports/bench"))
    args = parser.parse_args(argv)
    folder = stamped_folder(args.out, "topologies", args.what)
    try:
        servers = [s for s in args.servers.split(",") if s]
        unknown = set(servers) - SERVERS.keys()
        if unknown:
            raise HarnessError(f"--servers {sorted(unknown)} unknown: use {', '.join(SERVERS)}")
        if args.what == "failovers":
            seeds = [int(s) for s in args.seeds.split(",")]
            summary = failovers(seeds, servers, args.duration, folder, cluster=args.cluster)
        elif args.what == "wait-cost":
            summary = wait_cost(args.repeat, servers, folder)
        elif args.what == "wait-latency":
            summary = wait_latency(servers, args.calls, folder)
        else:
            summary = shards(args.repeat, folder)
    except HarnessError as exc:
        print(f"harness: {exc}", file=sys.stderr)
        return 2
    (folder / "topologies.json").write_text(json.dumps(summary, indent=2))
    print(f"summary: {folder / 'topologies.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
