"""The report of a scenario benchmark (harness.bench.scenarios): bench.json, report.md,
report.html and its curve, in the benchmark's folder beside the runs it was made of."""

from __future__ import annotations

import json
from html import escape
from typing import TYPE_CHECKING, Any

from harness.report.html import figures_html, page, table, verdict_badge
from harness.report.plots import CurvePoint, plot_bars, plot_scaling, plot_throughput_latency

if TYPE_CHECKING:
    from harness.bench.scenarios import Bench, Point

X_NAMES = {"throughput": "repetition", "sweep": "offered tasks/s", "scaling": "consumers"}
CAPTIONS = {
    "throughput.png": "Median throughput per queue (all tasks over the time to the last completion)",
    "throughput-latency.png": "Throughput-latency curve: enqueue-to-start p50 and p99 against achieved throughput",
    "scaling.png": "Throughput against the number of consumer processes (dotted: linear from one)",
}


def _curves(bench: Bench) -> dict[str, list[CurvePoint]]:
    return {
        queue: [CurvePoint(p.x, p.throughput or 0.0, p.p50_ms, p.p99_ms, p.p999_ms) for p in points]
        for queue, points in bench.by_queue().items()
    }


def _plot(bench: Bench) -> list[str]:
    title = f"{bench.kind}: {bench.scenario} ({', '.join(bench.queues)})"
    if bench.kind == "sweep":
        knees = bench.summary.get("knee_tasks_per_s", {})
        return [plot_throughput_latency(_curves(bench), bench.folder / "throughput-latency.png", title, knees)]
    if bench.kind == "scaling":
        return [plot_scaling(_curves(bench), bench.folder / "scaling.png", title)]
    medians = {q: v or 0.0 for q, v in bench.summary.get("median_tasks_per_s", {}).items()}
    return [plot_bars(medians, bench.folder / "throughput.png", title, "tasks/s")]


def _num(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.{digits}g}"


def point_rows(points: list[Point]) -> list[tuple[Any, ...]]:
    return [
        (p.queue, f"{p.x:g}", _num(p.throughput), _num(p.cpu_us_per_task), _num(p.p50_ms), _num(p.p99_ms),
         _num(p.p999_ms), _num(p.send_lag_p99_ms), {True: "valid", False: "INVALID", None: "unknown"}[p.valid], p.run)
        for p in sorted(points, key=lambda p: (p.x, p.queue))
    ]  # fmt: skip


POINT_HEADER = ("queue", "x", "tasks/s", "CPU µs/task", "start p50 ms", "start p99 ms", "start p99.9 ms",
                "send lag p99 ms", "verdict", "run folder")  # fmt: skip


def write_bench_report(bench: Bench, command: str) -> list[str]:
    """Write everything into the bench folder; returns the plot file names."""
    plots = _plot(bench)
    data = {**bench.as_dict(), "command": command, "plots": plots}
    (bench.folder / "bench.json").write_text(json.dumps(data, indent=2))
    header = (POINT_HEADER[0], X_NAMES.get(bench.kind, "x"), *POINT_HEADER[2:])
    rows = point_rows(bench.points)
    summary = json.dumps(bench.summary, indent=2)
    md = [f"# {bench.kind} benchmark: {bench.scenario}", "", f"Command: `{command}`", "",
          "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]  # fmt: skip
    md += ["| " + " | ".join(str(c) for c in row[:-1]) + f" | [{row[-1]}]({row[-1]}/report.md) |" for row in rows]
    md += ["", "## Summary", "", "```json", summary, "```", ""]
    md += [f"![{CAPTIONS.get(name, name)}]({name})\n" for name in plots]
    (bench.folder / "report.md").write_text("\n".join(md) + "\n")
    html_rows = [(*row[:-1], f'<a href="{row[-1]}/report.html">{row[-1]}</a>') for row in rows]
    valid = all(p.valid for p in bench.points)
    body = (
        f"<h1>{bench.kind} benchmark: {bench.scenario} {verdict_badge(valid if valid else None)}</h1>"
        f"<p>Command: <code>{escape(command)}</code></p>"
        + table(header, html_rows, raw_columns=frozenset({len(header) - 1}))
        + f"<h2>Summary</h2><pre>{escape(summary)}</pre>"
        + figures_html(plots)
    )
    (bench.folder / "report.html").write_text(page(f"{bench.kind} benchmark: {bench.scenario}", body))
    return plots
