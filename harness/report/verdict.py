"""The verdict of a run: every checker's result, throughput and latency, and the facts
needed to reproduce it. Written as verdict.json and report.md in the run folder."""

from __future__ import annotations

import json
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from harness.checkers import check_history
from harness.checkers.base import CheckContext, compose
from harness.history import Op
from harness.plan import Plan
from harness.report.latency import completions_per_second, latency_histograms, summarize
from harness.report.markdown import write_report

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


def judge_run(folder: Path, plan: Plan, history: list[Op], facts: dict[str, Any]) -> dict[str, Any]:
    """Check the history, write verdict.json and report.md, and return the verdict."""
    scenario = plan.scenario
    context = CheckContext(
        expect=scenario.expect,
        pending_timeout_s=scenario.queue.pending_timeout_s,
        delivery_cap=scenario.queue.delivery_cap,
    )
    results = check_history(history, context)
    phases = facts.get("phases_ns", {})
    load_start, load_end = phases.get("load", 0), phases.get("heal", phases.get("drain", 0))
    per_second = completions_per_second(history, load_start, load_end) if load_end > load_start else []
    histograms = latency_histograms(history)
    verdict = {
        "format": VERDICT_FORMAT,
        "valid": compose(r.valid for r in results),
        "scenario": scenario.name,
        "seed": plan.seed,
        "queue": plan.queue,
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
        },
        "latency_ms": {name: summarize(h) for name, h in histograms.items()},
        "faults": {"planned": len(plan.faults), "applied": facts.get("faults_applied", 0)},
        "restarts": facts.get("restarts", 0),
        "journaling": facts.get("journaling", True),
        "replay": f"harness replay {folder}",
    }
    (folder / "verdict.json").write_text(json.dumps(verdict, indent=2, default=str))
    write_report(folder, verdict)
    return verdict


def unjudged_verdict(folder: Path, plan: Plan, facts: dict[str, Any]) -> dict[str, Any]:
    """A run without journals (to measure journaling's cost): throughput from the queue's
    own completion count, nothing checked, so the verdict is unknown."""
    phases = facts.get("phases_ns", {})
    load_s = (phases.get("heal", 0) - phases.get("load", 0)) / 1e9
    completed = int(facts.get("completed_in_load", 0))
    verdict = {
        "format": VERDICT_FORMAT, "valid": None, "scenario": plan.scenario.name, "seed": plan.seed,
        "queue": plan.queue, "code_version": code_version(), "redis": facts.get("redis", {}),
        "started_at": facts.get("started_at"), "run": plan.to_dict()["scenario"]["run"], "checkers": [],
        "throughput": {"load_seconds": round(load_s, 3), "completed_during_load": completed,
                       "per_second": round(completed / load_s, 1) if load_s > 0 else 0, "timeline": []},
        "latency_ms": {}, "faults": {"planned": len(plan.faults), "applied": facts.get("faults_applied", 0)},
        "restarts": facts.get("restarts", 0), "journaling": False, "replay": f"harness replay {folder}",
        "note": "journaling was off: throughput only, nothing was checked",
    }  # fmt: skip
    (folder / "verdict.json").write_text(json.dumps(verdict, indent=2, default=str))
    return verdict
