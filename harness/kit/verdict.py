"""Verdict: a run's verdict.json as a test reads it: is it valid, which checker said what, with which
figures and anomalies, where the run folder is, and a summary a person can act on.

`bool(verdict)` is True only for a valid verdict: unknown (a checker could not decide, a fault hit
nothing) is not a pass, so `assert verdict` fails on it too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.checkers.base import validity_label
from harness.report.markdown import figure_summary

# How many anomalies the summary shows: enough to recognise the pattern, few enough to read.
SUMMARY_ANOMALIES = 3


@dataclass(frozen=True, slots=True)
class CheckerVerdict:
    """One checker's result, as verdict.json holds it."""

    name: str
    valid: bool | None
    figures: dict[str, Any] = field(default_factory=dict)
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""

    @property
    def label(self) -> str:
        return validity_label(self.valid)

    def line(self) -> str:
        figures = figure_summary(self.name, self.figures)
        return f"{self.name:<9} {self.label:<8} {figures}" + (f" ({self.note})" if self.note else "")


class Verdict:
    """A run's verdict; `data` is verdict.json, `folder` the run folder."""

    def __init__(self, data: dict[str, Any], folder: Path, *, agent_errors: list[str] | None = None) -> None:
        self.data, self.folder = data, Path(folder)
        # What the run's agents or workers died of (harness.kit.agent_errors): a broken adapter shows here.
        self.agent_errors = list(agent_errors or [])
        self.checkers = {
            c["name"]: CheckerVerdict(c["name"], c["valid"], c.get("figures", {}), c.get("anomalies", []),
                                      c.get("note", ""))
            for c in data.get("checkers", [])
        }  # fmt: skip

    @classmethod
    def from_folder(cls, folder: Path) -> Verdict:
        return cls(json.loads((Path(folder) / "verdict.json").read_text()), Path(folder))

    # -- what a test asks -----------------------------------------------------------------

    @property
    def valid(self) -> bool | None:
        valid: bool | None = self.data.get("valid")
        return valid

    def __bool__(self) -> bool:
        return self.valid is True

    @property
    def scenario(self) -> str:
        return str(self.data.get("scenario", "?"))

    @property
    def seed(self) -> int | None:
        seed = self.data.get("seed")
        return int(seed) if seed is not None else None

    @property
    def queue(self) -> str:
        return str(self.data.get("queue", "?"))

    @property
    def failing(self) -> list[CheckerVerdict]:
        return [c for c in self.checkers.values() if c.valid is False]

    @property
    def undecided(self) -> list[CheckerVerdict]:
        return [c for c in self.checkers.values() if c.valid is None]

    @property
    def anomalies(self) -> list[dict[str, Any]]:
        """Every anomaly example, each with the checker that found it: the failing checkers' first."""
        ordered = sorted(self.checkers.values(), key=lambda c: (c.valid is not False, c.valid is not None))
        return [{"checker": c.name, **a} for c in ordered for a in c.anomalies]

    def figures(self) -> dict[str, Any]:
        """Scalar figures by dotted name ("delivery.lost", "throughput.per_second", ...): what CI shows."""
        flat: dict[str, Any] = {"valid": self.label, "scenario": self.scenario, "seed": self.seed}
        for checker in self.checkers.values():
            flat[f"{checker.name}.valid"] = checker.label
            for key, value in checker.figures.items():
                if isinstance(value, int | float | str | bool) or value is None:
                    flat[f"{checker.name}.{key}"] = value
        flat["throughput.per_second"] = self.data.get("throughput", {}).get("per_second")
        for name, summary in self.data.get("latency_ms", {}).items():
            for pct in ("p50", "p99"):
                if pct in summary:
                    flat[f"latency_ms.{name}.{pct}"] = summary[pct]
        flat["run_folder"] = str(self.folder)
        return flat

    # -- what a person reads --------------------------------------------------------------

    @property
    def label(self) -> str:
        return validity_label(self.valid)

    @property
    def replay_command(self) -> str:
        return f"harness replay {self.folder}"

    def explain_command(self, tid: str) -> str:
        return f"harness explain {self.folder} {tid}"

    def __repr__(self) -> str:
        named = ", ".join(c.name for c in self.failing or self.undecided)
        why = f": {named}" if named else ""
        return f"Verdict({self.label} {self.scenario} seed={self.seed} queue={self.queue}{why})"

    def summary(self) -> str:
        """The failing and undecided checkers with their figures, a few anomalies, what the agents died
        of, and the commands that replay the run and explain one task's story."""
        lines = [f"harness verdict: {self.label} (scenario {self.scenario}, seed {self.seed}, queue {self.queue})"]
        shown = self.failing + self.undecided
        lines += [f"  {c.line()}" for c in shown]
        valid = [c.name for c in self.checkers.values() if c.valid is True]
        if valid:
            lines.append(f"  valid: {', '.join(valid)}")
        judged = [{"checker": c.name, **a} for c in shown for a in c.anomalies]
        examples = judged[:SUMMARY_ANOMALIES]
        if examples:
            lines.append(f"anomalies ({len(examples)} of {len(judged)} shown):")
            lines += [f"  {_anomaly_line(a)}" for a in examples]
        if self.agent_errors:
            lines.append("agent errors (from the run's logs):")
            lines += [f"  {e}" for e in self.agent_errors]
        lines.append(f"run folder: {self.folder}")
        lines.append(f"replay:  {self.replay_command}")
        tid = next((str(a["tid"]) for a in examples if "tid" in a), None)
        if tid is not None:
            lines.append(f"explain: {self.explain_command(tid)}")
        return "\n".join(lines)


def _anomaly_line(anomaly: dict[str, Any]) -> str:
    # Monotonic clock readings (*_ns) mean nothing outside their run: verdict.json keeps them for `harness explain`.
    rest = {k: v for k, v in anomaly.items() if k not in ("checker", "kind", "tid") and not k.endswith("_ns")}
    head = f"{anomaly.get('checker', '?')}: {anomaly.get('kind', 'anomaly')}"
    if "tid" in anomaly:
        head += f" {anomaly['tid']}"
    details = ", ".join(f"{k}={_short(v)}" for k, v in rest.items())
    return f"{head} ({details})" if details else head


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."
