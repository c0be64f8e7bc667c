"""The verdict of a run: every checker's result, throughput and latency, and the facts
needed to reproduce it. Written as verdict.json in the run folder, with what people
read beside it: report.md, report.html and the plots (see harness.report.artifacts)."""

from __future__ import annotations

import json
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from harness.adapters import adapter_factory
from harness.adapters.promises import DEFAULT_READ_WINDOW_S, Promises, promises_of
from harness.agents.stats import merged_histograms, read_stats
from harness.checkers import check_history
from harness.checkers.base import CheckContext, compose
from harness.history import Op, read_journal
from harness.plan import Plan
from harness.report.artifacts import write_artifacts
from harness.report.latency import (
    LATENCIES,
    completions_per_second,
    latency_histograms,
    overall_throughput,
    summarize,
    task_times,
)

VERDICT_FORMAT = 1


def code_version() -> str:
    try:
        package = version("taskq-harness")
    except PackageNotFoundError:
        package = "unknown"
    try:
        root = Path(__file__).resolve().parents[2]
        commit = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "no-git"
    return f"{package}+{commit}"


def judge_run(
    folder: Path, plan: Plan, history: list[Op], facts: dict[str, Any], *, reports: bool = True
) -> dict[str, Any]:
    """Check the history, write verdict.json and (with `reports`) report.md and the plots, and return
    the verdict."""
    scenario = plan.scenario
    context = CheckContext(
        expect=scenario.expect,
        pending_timeout_s=scenario.queue.pending_timeout_s,
        delivery_cap=scenario.queue.delivery_cap,
        hosted=bool(facts.get("hosted")),
        # Runs record what their queue promised; for a folder of an older harness, ask its adapter.
        promises=Promises(**facts["promises"]) if facts.get("promises") else queue_promises(plan.queue),
        client_timeout_s=float(facts.get("client_timeout_s", 5.0)),
        hosted_read_window_ms=float(facts.get("read_window_s", DEFAULT_READ_WINDOW_S)) * 1000,
    )
    results = check_history(history, context)
    phases = facts.get("phases_ns", {})
    load_start, load_end = phases.get("load", 0), phases.get("heal", phases.get("drain", 0))
    times = task_times(history)
    per_second = completions_per_second(history, load_start, load_end, times) if load_end > load_start else []
    histograms = latency_histograms(history, times)
    verdict = {
        "format": VERDICT_FORMAT,
        "valid": compose(r.valid for r in results),
        "scenario": scenario.name,
        "seed": plan.seed,
        "queue": plan.queue,
        "hosted": context.hosted,
        "promises": context.promises.as_dict(),
        "code_version": code_version(),
        "redis": facts.get("redis", {}),
        "started_at": facts.get("started_at"),
        "run": plan.to_dict()["scenario"]["run"],
        "checkers": [r.as_dict() for r in results],
        "throughput": {
            "load_seconds": round((load_end - load_start) / 1e9, 3) if load_end > load_start else None,
            "completed_during_load": sum(per_second),
            "per_second": round(sum(per_second) / max(1e-9, (load_end - load_start) / 1e9), 1) if per_second else 0,
            "timeline": per_second,
            "overall": overall_throughput(times, load_start),
        },
        "latency_ms": {name: summarize(h) for name, h in histograms.items()},
        "latency_source": "history",
        "agents": agent_costs(folder, len(times[2]), facts.get("redis_cpu_s")),
        "faults": {"planned": len(plan.faults), "applied": facts.get("faults_applied", 0)},
        "restarts": facts.get("restarts", 0),
        "journaling": facts.get("journaling", True),
        "replay": f"harness replay {folder}",
    }
    verdict["plots"] = write_artifacts(folder, verdict, history, histograms, times) if reports else []
    (folder / "verdict.json").write_text(json.dumps(verdict, indent=2, default=str))
    return verdict


def queue_promises(spec: str) -> Promises:
    """What the run's queue promises, from its adapter; taskq's when the adapter cannot be loaded now."""
    try:
        return promises_of(adapter_factory(spec)())
    except Exception:  # an adapter that cannot be built here is judged as taskq is, as before promises existed
        return Promises()


def agent_costs(folder: Path, completed: int, redis_cpu_s: float | None = None) -> dict[str, Any]:
    """CPU seconds per role (the agents' stats files; the server's from INFO cpu) and per completed
    task, in microseconds; "total" adds them up when the server's share is known."""
    costs: dict[str, Any] = {}
    for entry in read_stats(folder):
        role = costs.setdefault(entry["role"], {"processes": 0, "cpu_s": 0.0})
        role["processes"] += 1
        role["cpu_s"] = round(role["cpu_s"] + entry["cpu_user_s"] + entry["cpu_system_s"], 3)
    if redis_cpu_s is not None and costs:
        costs["redis-server"] = {"processes": 1, "cpu_s": redis_cpu_s}
        total = sum(c["cpu_s"] for c in costs.values())
        costs["total"] = {"processes": sum(c["processes"] for c in costs.values()), "cpu_s": round(total, 3)}
    for role in costs.values():
        role["cpu_us_per_task"] = round(role["cpu_s"] / completed * 1e6, 1) if completed else None
    return costs


def unjudged_verdict(folder: Path, plan: Plan, facts: dict[str, Any]) -> dict[str, Any]:
    """A run without journals (to measure journaling's cost): throughput from the queue's
    own completion count, nothing checked, so the verdict is unknown."""
    phases = facts.get("phases_ns", {})
    load_s = (phases.get("heal", 0) - phases.get("load", 0)) / 1e9
    completed = int(facts.get("completed_in_load", 0))
    histograms = merged_histograms(read_stats(folder))
    verdict = {
        "format": VERDICT_FORMAT, "valid": None, "scenario": plan.scenario.name, "seed": plan.seed,
        "queue": plan.queue, "code_version": code_version(), "redis": facts.get("redis", {}),
        "started_at": facts.get("started_at"), "run": plan.to_dict()["scenario"]["run"], "checkers": [],
        "throughput": {"load_seconds": round(load_s, 3), "completed_during_load": completed,
                       "per_second": round(completed / load_s, 1) if load_s > 0 else 0, "timeline": []},
        "latency_ms": {name: summarize(h) for name, h in histograms.items() if name in LATENCIES},
        "latency_source": "agents", "agents": agent_costs(folder, completed, facts.get("redis_cpu_s")),
        "faults": {"planned": len(plan.faults), "applied": facts.get("faults_applied", 0)},
        "restarts": facts.get("restarts", 0), "journaling": False, "replay": f"harness replay {folder}",
        "note": "journaling was off: nothing was checked; latency from the agents' own histograms",
    }  # fmt: skip
    runner_ops = read_journal(folder / "journals" / "runner.jsonl")
    verdict["plots"] = write_artifacts(folder, verdict, runner_ops, histograms)
    (folder / "verdict.json").write_text(json.dumps(verdict, indent=2, default=str))
    return verdict
