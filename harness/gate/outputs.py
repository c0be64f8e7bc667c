"""What a gate leaves for CI systems and people: verdict.json, junit.xml, summary.md
(GitHub's job summary renders it), report.html."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from html import escape
from pathlib import Path
from typing import Any

from harness.checkers.base import validity_label
from harness.gate import CaseResult, GateResult
from harness.gate.judge import NO_BASELINE, MetricVerdict
from harness.report.html import page, table, verdict_badge

MARK = {True: "✅", False: "❌"}
STATUS_MARK = {"ok": "✅", "regression": "❌", "unsure": "❌", "no-data": "❌", NO_BASELINE: "⚪"}


def _run_row(rep: int, measured: Any, root: Path) -> dict[str, Any]:
    return {"rep": rep + 1, "queue": measured.queue, "valid": measured.valid,
            "folder": str(measured.folder.relative_to(root))}  # fmt: skip


def gate_verdict(result: GateResult) -> dict[str, Any]:
    return {
        "format": 1,
        "suite": result.suite.name,
        "queue": result.queue,
        "passed": result.passed,
        "valid": all(c.validity is True for c in result.cases),
        "seconds": result.seconds,
        "baseline": {
            "file": str(result.suite.baseline),
            "found": result.baseline_found,
            "updated": result.baseline_updated,
        },
        "cases": [
            {
                "name": c.case.name,
                "scenario": c.case.scenario.name,
                "compare_with": c.case.compare_with,
                "passed": c.passed,
                "valid": c.validity,
                "runs": [_run_row(rep, m, result.folder) for rep, m in c.runs],
                "metrics": [m.as_dict() for m in c.metrics],
            }
            for c in result.cases
        ],
    }


def _metric_line(m: MetricVerdict) -> str:
    def num(value: float | None) -> str:
        return "-" if value is None else f"{value:.3g}"

    samples = ", ".join(f"{s:.3g}" for s in m.samples)
    return (f"| {STATUS_MARK.get(m.status, '?')} {m.status} | {m.case} | {m.figure} ({m.kind}, {m.better} is better) "
            f"| {num(m.median)} | {num(m.baseline)} | {num(m.limit)} | {samples} | {m.note} |")  # fmt: skip


def summary_markdown(result: GateResult) -> str:
    verdict = "passed" if result.passed else "FAILED"
    lines = [
        f"## {MARK[result.passed]} harness gate `{result.suite.name}` on `{result.queue}`: {verdict}",
        "",
        f"{len(result.cases)} cases, {sum(len(c.runs) for c in result.cases)} runs in {result.seconds:.0f} s; "
        f"baseline `{result.suite.baseline.name}` {'found' if result.baseline_found else 'missing'}"
        f"{' (updated)' if result.baseline_updated else ''}. Folder: `{result.folder}`",
        "",
        "| case | scenario | runs of the queue | verdicts |",
        "|---|---|---|---|",
    ]
    for c in result.cases:
        verdicts = ", ".join(validity_label(m.valid) for _, m in c.runs_of(c.queue))
        lines.append(f"| {MARK[c.validity is True]} {c.case.name} | {c.case.scenario.name} | "
                     f"{len(c.runs_of(c.queue))} | {verdicts} |")  # fmt: skip
    if result.metrics:
        lines += ["", "| status | case | figure | median | baseline | limit | samples | note |",
                  "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        lines += [_metric_line(m) for m in result.metrics]
    failed = [f"{c.case.name}: {_why(c)}" for c in result.cases if not c.passed]
    if failed:
        lines += ["", "Why it failed:", "", *(f"- {line}" for line in failed)]
    return "\n".join(lines) + "\n"


def _why(case: CaseResult) -> str:
    reasons = []
    if case.validity is not True:
        bad = [str(m.folder) for _, m in case.runs_of(case.queue) if m.valid is not True]
        reasons.append(f"verdict {validity_label(case.validity)} (see {', '.join(bad)})")
    reasons += [f"{m.figure} {m.status}: {m.note}" for m in case.metrics if m.failed]
    return "; ".join(reasons)


def junit_xml(result: GateResult) -> str:
    suites = ET.Element("testsuites", name=f"harness gate {result.suite.name}")
    tests = failures = skipped = 0
    suite = ET.SubElement(suites, "testsuite", name=f"harness gate {result.suite.name} on {result.queue}",
                          time=f"{result.seconds:.1f}")  # fmt: skip
    for c in result.cases:
        for rep, measured in c.runs_of(c.queue):
            tests += 1
            case = ET.SubElement(suite, "testcase", classname=f"gate.{result.suite.name}.{c.case.name}",
                                 name=f"verdict [{measured.queue} run {rep + 1}]")  # fmt: skip
            ET.SubElement(case, "system-out").text = str(measured.folder)
            if measured.valid is not True:
                failures += 1
                ET.SubElement(
                    case, "failure", message=f"verdict {validity_label(measured.valid)}"
                ).text = f"see {measured.folder}/report.md"
        for m in c.metrics:
            tests += 1
            case = ET.SubElement(suite, "testcase", classname=f"gate.{result.suite.name}.{c.case.name}",
                                 name=f"{m.figure} ({m.kind})")  # fmt: skip
            ET.SubElement(case, "system-out").text = json.dumps(m.as_dict())
            if m.failed:
                failures += 1
                ET.SubElement(case, "failure", message=f"{m.status}: {m.note}")
            elif m.status == NO_BASELINE:
                skipped += 1
                ET.SubElement(case, "skipped", message=m.note)
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def gate_html(result: GateResult) -> str:
    title = f"harness gate {result.suite.name} on {result.queue}"
    runs = [
        (c.case.name, rep + 1, m.queue, verdict_badge(m.valid),
         f'<a href="{escape(str(m.folder.relative_to(result.folder)))}/report.html">report</a>')
        for c in result.cases for rep, m in c.runs
    ]  # fmt: skip
    metrics = [
        (m.status, m.case, m.figure, m.kind, m.better, m.median, m.baseline, m.limit,
         ", ".join(f"{s:.3g}" for s in m.samples), m.note)
        for m in result.metrics
    ]  # fmt: skip
    body = (
        f"<h1>{escape(title)}: {verdict_badge(result.passed)}</h1>"
        f"<p>{result.seconds:.0f} s; baseline {escape(str(result.suite.baseline))} "
        f"{'found' if result.baseline_found else 'missing'}</p>"
        "<h2>Figures</h2>"
        + table(
            ("status", "case", "figure", "kind", "better", "median", "baseline", "limit", "samples", "note"), metrics
        )
        + "<h2>Runs</h2>"
        + table(("case", "run", "queue", "verdict", "report"), runs, raw_columns=frozenset({3, 4}))
    )
    return page(title, body)


def write_outputs(result: GateResult, *, junit: Path | None = None, summary: Path | None = None) -> None:
    """Into the gate folder, and also to `junit` / appended to `summary` (e.g. $GITHUB_STEP_SUMMARY)."""
    folder = result.folder
    (folder / "verdict.json").write_text(json.dumps(gate_verdict(result), indent=2, default=str) + "\n")
    xml = junit_xml(result)
    (folder / "junit.xml").write_text(xml)
    markdown = summary_markdown(result)
    (folder / "summary.md").write_text(markdown)
    (folder / "report.html").write_text(gate_html(result))
    if junit is not None:
        junit.parent.mkdir(parents=True, exist_ok=True)
        junit.write_text(xml)
    if summary is not None:
        with summary.open("a") as handle:
            handle.write(markdown)
