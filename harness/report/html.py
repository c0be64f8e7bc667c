"""report.html: the verdict, the figures and the plots on one page that opens from the run folder.

Self-contained apart from the PNGs beside it, referenced by relative path, so the
folder can be moved or uploaded as a CI artifact whole. No scripts, no external CSS.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path
from typing import Any

from harness.checkers.base import validity_label
from harness.report.explain import Trail
from harness.report.markdown import LATENCY_COLUMNS, MAX_ANOMALY_LINES, PLOT_CAPTIONS, figure_summary, overall_line

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.valid { color: #1a7f37; font-weight: bold; } .INVALID { color: #cf222e; font-weight: bold; }
.unknown { color: #9a6700; font-weight: bold; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #555; }
code { background: #f6f8fa; padding: 1px 4px; }
"""


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, raw_columns: frozenset[int] = frozenset()) -> str:
    """An HTML table; cells are escaped except in `raw_columns` (already HTML)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{c if i in raw_columns else escape(str(c))}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def verdict_badge(valid: bool | None) -> str:
    label = validity_label(valid)
    return f'<span class="{label}">{label}</span>'


def figures_html(plots: Sequence[str]) -> str:
    return "".join(
        f'<figure><img src="{escape(name)}" alt="{escape(PLOT_CAPTIONS.get(name, name))}">'
        f"<figcaption>{escape(PLOT_CAPTIONS.get(name, name))}</figcaption></figure>"
        for name in plots
    )


def page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>{body}</body></html>\n"
    )


def anomalies_html(verdict: dict[str, Any], trail: Trail | None) -> str:
    """The first anomaly examples, each with the `harness explain` command of its tasks, linked to their story."""
    rows = []
    for checker in verdict.get("checkers", []):
        for anomaly in checker.get("anomalies") or ():
            links = trail.links(anomaly) if trail is not None else []
            stories = "<br>".join(
                f'<a href="{escape(story)}"><code>{escape(cmd)}</code></a>' for _, cmd, story in links
            )
            example = ", ".join(f"{k}={v}" for k, v in anomaly.items() if k != "kind")
            rows.append((checker["name"], anomaly.get("kind", ""), example, stories or "-"))
    if not rows:
        return ""
    return "<h2>Anomalies (first examples)</h2>" + table(
        ("checker", "kind", "example", "the task's story"), rows[:MAX_ANOMALY_LINES], raw_columns=frozenset({3})
    )


def write_html(
    folder: Path,
    verdict: dict[str, Any],
    plots: Sequence[str] = (),
    problem: str | None = None,
    trail: Trail | None = None,
) -> None:
    title = f"{verdict['scenario']} (seed {verdict['seed']}) on {verdict['queue']}"
    redis = verdict.get("redis", {})
    facts = [
        ("code", verdict.get("code_version", "?")),
        ("Redis", f"{redis.get('redis_version', '?')} ({redis.get('provider', '?')}, "
                  f"persistence {redis.get('persistence', 'n/a')})"),
        ("run", verdict.get("run", {})),
        ("faults applied", f"{verdict['faults']['applied']} of {verdict['faults']['planned']} planned"),
        ("consumer restarts", verdict.get("restarts", 0)),
        ("replay", verdict.get("replay", "")),
    ]  # fmt: skip
    timeline = (
        f'<p><a href="{escape(trail.timeline)}">timeline.html</a>: every operation of every process, '
        "fault windows and anomalous tasks marked.</p>"
        if trail is not None and trail.timeline
        else ""
    )
    checkers = [
        (
            c["name"],
            verdict_badge(c["valid"]),
            figure_summary(c["name"], c["figures"]) + (f" ({c['note']})" if c["note"] else ""),
        )
        for c in verdict.get("checkers", [])
    ]
    throughput = verdict["throughput"]
    parts = [
        f"<h1>{escape(title)}: {verdict_badge(verdict['valid'])}</h1>",
        table(("fact", "value"), facts),
        timeline,
        "<h2>Checkers</h2>"
        + (
            table(("checker", "verdict", "figures"), checkers, raw_columns=frozenset({1}))
            if checkers
            else f"<p>{escape(verdict.get('note', 'nothing was checked'))}</p>"
        ),
        "<h2>Throughput and latency</h2>",
        f"<p>Completed during load: {throughput['completed_during_load']} ({throughput['per_second']} tasks/s); "
        f"{escape(overall_line(throughput))}. "
        f"Latency counts from each task's due time (open loop); histograms from the "
        f"{escape(verdict.get('latency_source', 'history'))}.</p>",
    ]
    if verdict["latency_ms"]:
        rows = [
            (name.replace("_", " "), *(f.get(k, "-") for k in LATENCY_COLUMNS))
            for name, f in verdict["latency_ms"].items()
        ]
        parts.append(table(("latency (ms)", *LATENCY_COLUMNS), rows))
    if verdict.get("agents"):
        rows = [
            (role, c["processes"], c["cpu_s"], c["cpu_us_per_task"]) for role, c in sorted(verdict["agents"].items())
        ]
        parts.append(table(("role", "processes", "CPU s", "CPU µs per completed task"), rows))
    if plots or problem:
        parts.append("<h2>Plots</h2>" + figures_html(plots) + (f"<p>{escape(problem)}</p>" if problem else ""))
    parts.append(anomalies_html(verdict, trail))
    (folder / "report.html").write_text(page(title, "\n".join(parts)))
