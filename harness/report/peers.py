"""The report of `harness bench peers`: a markdown table (the one the README carries), report.md, and
plots: drain throughput and CPU per task as bars, enqueue-to-start latency against offered load."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.report.plots import CurvePoint, plot_bars, plot_throughput_latency

if TYPE_CHECKING:
    from harness.bench.peers import PeersBench

MAIN_CASE = "empty W=2"


def _cell(stats: dict[str, float] | None) -> str:
    if not stats:
        return "-"
    median, low, high = stats["median"], stats["min"], stats["max"]
    if low == high:
        return f"{median:,.0f}"
    return f"{median:,.0f} ({low:,.0f}-{high:,.0f})"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _latency_cells(bench: PeersBench, queue: str) -> tuple[str, str]:
    points = [p for p in bench.latency if p["queue"] == queue]
    sustained = [p["offered"] for p in points if p.get("sustained")]
    lowest = points[0] if points else None
    at_lowest = "-"
    if lowest is not None and lowest.get("p50_ms") is not None:
        at_lowest = f"{lowest['p50_ms']:.2f} / {lowest['p99_ms']:.2f} / {lowest['p999_ms']:.2f}"
    ceiling = f"{max(sustained):,.0f}" if sustained else "-"
    if points and points[-1].get("sustained") and sustained:
        ceiling = f">= {ceiling}"
    return at_lowest, ceiling


def markdown_table(bench: PeersBench) -> str:
    summary: dict[str, Any] = bench.as_dict()["summary"]
    cases = [f"{body} W={w}" for body in bench.settings.bodies for w in bench.settings.workers]
    rate = min(bench.settings.latency_rates) if bench.settings.latency_rates else 0
    header = [
        "queue",
        "enqueue/s",
        *(f"{c} (tasks/s)" for c in cases),
        f"{MAIN_CASE} vs taskq",
        f"{MAIN_CASE} vs raw",
        "worker CPU µs/task",
        "redis CPU µs/task",
        f"start p50/p99/p99.9 ms at {rate:g}/s",
        "sustains (tasks/s)",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for queue, by_case in summary.items():
        main = by_case.get(MAIN_CASE, {})
        at_rate, ceiling = _latency_cells(bench, queue)
        row = [queue, _cell(main.get("enqueue")), *(_cell(by_case.get(c, {}).get("drain")) for c in cases),
               _ratio(main.get("vs_taskq")), _ratio(main.get("vs_raw")), _cell(main.get("cpu")),
               _cell(main.get("redis")), at_rate, ceiling]  # fmt: skip
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _journal_lines(bench: PeersBench) -> list[str]:
    summary: dict[str, Any] = bench.as_dict()["summary"]
    lines = []
    for queue, by_case in summary.items():
        journaled = next((row for key, row in by_case.items() if key.endswith("journaled")), None)
        plain = by_case.get(f"empty W={max(bench.settings.workers)}")
        if journaled and plain and journaled.get("drain") and plain.get("drain"):
            on, off = journaled["drain"]["median"], plain["drain"]["median"]
            lines.append(f"- {queue}: journaling costs {1 - on / off:.1%} of drain throughput "
                         f"({on:,.0f} vs {off:,.0f} tasks/s)")  # fmt: skip
    return lines


def write_peers_report(bench: PeersBench, command: str) -> list[str]:
    summary: dict[str, Any] = bench.as_dict()["summary"]
    plots = []
    drains = {q: (c.get(MAIN_CASE, {}).get("drain") or {}).get("median") or 0.0 for q, c in summary.items()}
    title = f"drain, empty tasks, 2 workers x {bench.settings.concurrency}"
    plots.append(plot_bars(drains, bench.folder / "drain.png", title, "tasks/s"))
    cpu = {q: (c.get(MAIN_CASE, {}).get("cpu") or {}).get("median") or 0.0 for q, c in summary.items()}
    plots.append(plot_bars(cpu, bench.folder / "cpu.png", "worker CPU per task (empty tasks, 2 workers)", "µs"))
    curves: dict[str, list[CurvePoint]] = {}
    for point in bench.latency:
        if point.get("p50_ms") is not None:
            achieved = point.get("achieved") or 0.0
            curve = CurvePoint(point["offered"], achieved, point["p50_ms"], point["p99_ms"], point["p999_ms"])
            curves.setdefault(point["queue"], []).append(curve)
    if curves:
        plots.append(plot_throughput_latency(curves, bench.folder / "latency.png", "enqueue-to-start against load"))
    skipped = [f"- {queue}: {why}" for queue, why in bench.skipped.items()]
    journal = _journal_lines(bench)
    text = [
        "# Peers benchmark", "", f"Command: `{command}`", "",
        f"{bench.settings.tasks:,} tasks per drain, concurrency {bench.settings.concurrency} per worker process, "
        f"{bench.settings.repeat} interleaved repeats (median, range). Drain = tasks / time from starting the "
        "workers (start-up included) until the queue is empty (empty body) or the counter reached the tasks "
        "(INCR body).", "", markdown_table(bench), "", *(["Journaling's cost:", "", *journal, ""] if journal else []),
        *(["Not measured:", "", *skipped, ""] if skipped else []), *(f"![{p}]({p})" for p in plots),
    ]  # fmt: skip
    (bench.folder / "report.md").write_text("\n".join(text) + "\n")
    return plots
