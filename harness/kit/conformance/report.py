"""The conformance report: the protocol findings, each promise as declared and as shown, the runs, and the
exit code (0 conforms, 1 a rule broken or a promise not held or a run invalid, 2 undecided)."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.adapters.promises import Promises
from harness.kit.conformance.battery import EXCUSED_WITHOUT, RunOutcome, other_failures
from harness.kit.conformance.rules import PROMISE_LABELS, Evidence, Finding

NO_RUNS = "--no-runs: the protocol checks only"
STATUS_LABELS = {"ok": "ok", "broken": "BROKEN", "note": "note", "skipped": "skipped"}


def declared(promises: Promises) -> dict[str, bool]:
    return {
        "at-least-once": promises.delivery == "at-least-once", "ownership": promises.ownership_checked,
        "priority": promises.priorities, "fifo": promises.fifo, "retries": promises.retries, "dlq": promises.dlq,
    }  # fmt: skip


@dataclass(frozen=True, slots=True)
class PromiseResult:
    promise: str
    declared: bool
    status: str  # held, NOT HELD, unknown, not promised
    evidence: list[Evidence]


def judge(promise: str, is_declared: bool, evidence: list[Evidence]) -> PromiseResult:
    mine = [e for e in evidence if e.promise == promise]
    broken, kept = [e for e in mine if e.held is False], [e for e in mine if e.held is True]
    if not is_declared:
        return PromiseResult(promise, False, "not promised", broken or kept or mine)
    if broken:
        return PromiseResult(promise, True, "NOT HELD", broken)
    if kept:
        return PromiseResult(promise, True, "held", kept)
    return PromiseResult(promise, True, "unknown", mine)


@dataclass
class Report:
    spec: str
    kind: str  # "pull" or "hosted"
    adapter: str
    redis_version: str
    promises: Promises | None = None
    findings: list[Finding] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    runs: list[RunOutcome] = field(default_factory=list)
    runs_skipped: str = ""

    @property
    def broken(self) -> list[Finding]:
        """Each broken rule once (several checks may find the same)."""
        found = {(f.method, f.rule): f for f in reversed(self.findings) if f.status == "broken"}
        return list(reversed(found.values()))

    def failing_beyond_promises(self, outcome: RunOutcome) -> list[str]:
        """The invalid checkers of a run that no undeclared promise accounts for: a library that does not
        promise at-least-once delivery loses tasks to a kill as documented, not as a bug."""
        if outcome.verdict is None or outcome.verdict.valid is not False:
            return []
        claims = declared(self.promises) if self.promises is not None else {}
        excused = {name for p, made in claims.items() if not made for name in EXCUSED_WITHOUT[p]}
        return [c.name for c in outcome.verdict.failing if c.name not in excused]

    def results(self) -> list[PromiseResult]:
        if self.promises is None:
            return []
        claims = declared(self.promises)
        return [judge(p, claims[p], self.evidence) for p in PROMISE_LABELS]

    @property
    def exit_code(self) -> int:
        last = {o.scenario: o for o in self.runs}.values()  # a scenario run again counts by its last run
        if self.broken or any(r.status == "NOT HELD" for r in self.results()):
            return 1
        if any(self.failing_beyond_promises(o) for o in last):
            return 1
        if self.runs_skipped == NO_RUNS:
            return 0
        if self.runs_skipped or any(o.verdict is None or o.verdict.valid is None for o in last):
            return 2
        return 0

    def render(self) -> str:
        lines = [f"check-adapter {self.spec}: a {self.kind} adapter ({self.adapter}), against {self.redis_version}", ""]
        lines += self._protocol()
        if self.promises is not None and (self.evidence or not self.broken):
            lines += ["", "promises (declared by the adapter; shown by the checks above and the runs below):"]
            lines += [line for result in self.results() for line in _promise_lines(result)]
        elif self.promises is not None:
            lines += ["", "promises: not judged (a rule is broken)"]
        lines += ["", "runs:"] + (self._runs() if self.runs else [f"  none: {self.runs_skipped}"])
        lines += ["", _conclusion(self)]
        return "\n".join(lines)

    def _protocol(self) -> list[str]:
        title = "protocol: each method against a real Redis" + (
            " (hosted: the client side; the workers are judged by the runs)" if self.kind == "hosted" else ""
        )
        seen: set[tuple[str, str, str]] = set()
        lines = [title]
        for f in self.findings:
            key = (f.status, f.method, f.rule)
            if key in seen:
                continue
            seen.add(key)
            text = f"{f.rule}" + (f": {f.detail}" if f.detail else "")
            lines.append(f"  {STATUS_LABELS[f.status]:<8} {f.method:<12} {text}")
        return lines

    def _runs(self) -> list[str]:
        lines = []
        for outcome in self.runs:
            head = f"  {outcome.scenario:<17} seed {outcome.seed:<4} {outcome.label:<8}"
            if outcome.verdict is None:
                lines.append(f"{head} {outcome.error}")
                continue
            failing = ", ".join(c.name for c in outcome.verdict.failing + outcome.verdict.undecided)
            lines.append(f"{head} {outcome.verdict.folder}" + (f"  ({failing})" if failing else ""))
            lines += [f"      also INVALID: {c.line()}" for c in other_failures(outcome, self.evidence)]
        return lines


def _promise_lines(result: PromiseResult) -> list[str]:
    label = PROMISE_LABELS[result.promise]
    head = f"  {result.status:<13} {label:<22}"
    if not result.evidence:
        return [f"{head} nothing showed it either way"]
    lines = []
    for number, evidence in enumerate(result.evidence):
        seen = "observed: " if result.status == "not promised" else ""
        lead = head if number == 0 else " " * len(head)
        lines.append(f"{lead} {seen}{evidence.source}: {evidence.detail}")
        lines += [" " * (len(head) + 3) + command for command in evidence.commands]
    return lines


def _conclusion(report: Report) -> str:
    code = report.exit_code
    if code == 0 and report.runs_skipped == NO_RUNS:
        return "result: every rule kept, every declared promise the checks could show held; no runs (exit 0)"
    if code == 0:
        undecided = [PROMISE_LABELS[r.promise] for r in report.results() if r.status == "unknown"]
        held = "every declared promise held"
        if undecided:
            held = f"no declared promise broken ({', '.join(undecided)}: unknown)"
        as_declared = [o.scenario for o in report.runs if o.verdict is not None and o.verdict.valid is False]
        runs = (
            "every run valid"
            if not as_declared
            else (
                f"every run valid but {', '.join(dict.fromkeys(as_declared))}, invalid only where nothing was promised"
            )
        )
        return f"result: conforms: every rule kept, {held}, {runs} (exit 0)"
    if code == 2:
        return "result: undecided: a run was unknown or could not run (exit 2)"
    parts = []
    if report.broken:
        parts.append(f"{len(report.broken)} rule(s) broken")
    not_held = [PROMISE_LABELS[r.promise] for r in report.results() if r.status == "NOT HELD"]
    if not_held:
        parts.append(f"declared but not held: {', '.join(not_held)}")
    invalid = [o.scenario for o in report.runs if report.failing_beyond_promises(o)]
    if invalid:
        parts.append(f"invalid runs: {', '.join(dict.fromkeys(invalid))}")
    return f"result: does not conform: {'; '.join(parts)} (exit 1)"
