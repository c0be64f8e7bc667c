"""report.md: the verdict as people read it, with the run's plots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.checkers.base import validity_label
from harness.report.explain import Trail

# The figures worth a column in the summary table, per checker.
KEY_FIGURES = {
    "delivery": (
        "enqueued_ok",
        "completed",
        "dead",
        "lost",
        "unexpected",
        "duplicated_explained",
        "duplicated_unexplained",
        "recovered",
        "re_executed",
    ),
    "priority": ("reads_checked", "inversions", "worst_wait_ms"),
    "order": ("violations",),
    "dlq": ("dead", "dead_and_completed", "missing_from_dlq", "wrong_error_count", "innocent_dead"),
    "retry": ("retries_observed", "resets", "id_changes", "attempts_without_failure", "delivery_count_resets"),
    "recovery": (
        "count",
        "p50_s",
        "p99_s",
        "max_s",
        "never_redelivered",
        "not_recovered_within_s",
        "never_back_in_service",
    ),
    "leaks": ("ready", "pending", "delayed", "acked_not_deleted", "skipped"),
    "vacuity": ("hit", "missed"),
}


def figure_summary(name: str, figures: dict[str, Any]) -> str:
    keys = KEY_FIGURES.get(name, tuple(figures)[:5])
    return ", ".join(f"{k}={_short(figures[k])}" for k in keys if k in figures)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
    return str(value)


LATENCY_COLUMNS = ("count", "p50", "p90", "p99", "p99.9", "p99.99", "max")
PLOT_CAPTIONS = {
    "throughput.png": "Throughput over time (fault windows shaded)",
    "latency.png": "Enqueue-to-start latency over time, by due time (fault windows shaded)",
    "percentiles.png": "Latency percentile spectrum: enqueue to start, enqueue to complete, start to complete",
    "depth.png": "Queue depth over time: ready, pending, delayed",
    "unseen.png": "Unseen tasks over time: enqueued ok, not yet completed (ready, held by a consumer, delayed)",
    "lag.png": "Realtime lag per consumer: how far behind the newest enqueue each read was",
}
MAX_ANOMALY_LINES = 30


def latency_table(latency_ms: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown rows: one per latency kind, percentiles in ms."""
    lines = ["| latency (ms) | " + " | ".join(LATENCY_COLUMNS) + " |", "|---" * (len(LATENCY_COLUMNS) + 1) + "|"]
    for name, figures in latency_ms.items():
        cells = [str(figures.get(k, "-")) for k in LATENCY_COLUMNS]
        lines.append(f"| {name.replace('_', ' ')} | " + " | ".join(cells) + " |")
    return lines


def overall_line(throughput: dict[str, Any]) -> str:
    """All tasks over the time from the first due time to the last completion (drain included)."""
    overall = throughput.get("overall") or {}
    if not overall.get("seconds"):
        return "overall: nothing completed"
    return (f"overall: {overall['completed']} tasks in {overall['seconds']} s from the first due time to the "
            f"last completion: {overall['per_second']} tasks/s")  # fmt: skip


def cost_table(agents: dict[str, Any]) -> list[str]:
    lines = ["| role | processes | CPU s | CPU µs per completed task |", "|---|---|---|---|"]
    for role, cost in sorted(agents.items()):
        lines.append(f"| {role} | {cost['processes']} | {cost['cpu_s']} | {cost['cpu_us_per_task']} |")
    return lines


def write_report(
    folder: Path,
    verdict: dict[str, Any],
    plots: Sequence[str] = (),
    problem: str | None = None,
    trail: Trail | None = None,
) -> None:
    lines = [
        f"# {verdict['scenario']} (seed {verdict['seed']}) on {verdict['queue']}: {validity_label(verdict['valid'])}",
        "",
        f"- code: `{verdict['code_version']}`; Redis: {verdict['redis'].get('redis_version', '?')} "
        f"({verdict['redis'].get('provider', '?')}, persistence {verdict['redis'].get('persistence', 'n/a')})",
        f"- run: {verdict['run']}",
        f"- faults applied: {verdict['faults']['applied']} of {verdict['faults']['planned']} planned; "
        f"consumer restarts: {verdict['restarts']}",
        f"- replay: `{verdict['replay']}`",
        *([f"- timeline of every operation: [{trail.timeline}]({trail.timeline})"] if trail and trail.timeline else []),
        "",
        "| checker | verdict | figures |",
        "|---|---|---|",
    ]
    for result in verdict["checkers"]:
        note = f" ({result['note']})" if result["note"] else ""
        figures = figure_summary(result["name"], result["figures"])
        lines.append(f"| {result['name']} | {validity_label(result['valid'])} | {figures}{note} |")
    throughput = verdict["throughput"]
    lines += ["", "## Throughput and latency", ""]
    lines.append(f"- completed during load: {throughput['completed_during_load']} ({throughput['per_second']} tasks/s)")
    lines.append(f"- {overall_line(throughput)}")
    source = verdict.get("latency_source", "history")
    lines.append(f"- latency counts from each task's due time (open loop); histograms from the {source}")
    if verdict["latency_ms"]:
        lines += ["", *latency_table(verdict["latency_ms"])]
    if verdict.get("agents"):
        lines += ["", *cost_table(verdict["agents"])]
    if plots or problem:
        lines += ["", "## Plots", ""]
        lines += [f"![{PLOT_CAPTIONS.get(name, name)}]({name})\n" for name in plots]
        if problem:
            lines.append(f"- {problem}")
    anomalies = [(r["name"], a) for r in verdict["checkers"] for a in r["anomalies"]]
    if anomalies:
        lines += ["", "## Anomalies (first examples)", ""]
        if trail is not None:
            lines += ["Each task's story (enqueue, deliveries, faults on its holders, answers, final state) is "
                      "beside this report and told again by the `harness explain` command named.", ""]  # fmt: skip
        lines += [
            f"- {name}: {example}{_story_links(example, trail)}" for name, example in anomalies[:MAX_ANOMALY_LINES]
        ]
    (folder / "report.md").write_text("\n".join(lines) + "\n")


def _story_links(anomaly: dict[str, Any], trail: Trail | None) -> str:
    if trail is None:
        return ""
    links = [f"[`{cmd}`]({story})" for _, cmd, story in trail.links(anomaly)]
    return f" (story: {', '.join(links)})" if links else ""
