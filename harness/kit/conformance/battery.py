"""The conformance suite's short battery of scenario runs, and what each run shows about each promise.

Every run is a real harness run (harness.kit.Chaos): the queue's own promises decide what its checkers
judge, and this module reads the verdicts back per promise, naming the scenario and seed that showed a
promise broken, with the commands to replay the run and follow one task through it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.kit.chaos import Chaos
from harness.kit.conformance.rules import Evidence
from harness.kit.verdict import CheckerVerdict, Verdict

SCENARIOS = Path(__file__).resolve().parent / "scenarios"


@dataclass(frozen=True, slots=True)
class RunSpec:
    scenario: str  # a built-in scenario, its faults scheduled by time
    promises: tuple[str, ...]  # what its verdict shows (keys of rules.PROMISE_LABELS)
    # The same scenario with its faults at progress barriers (scenarios/ beside this module): faults that
    # wait for so many completions strike while work flows, however slowly a loaded machine starts the
    # agents. They need the queue's completed count (depth()["completed"]).
    barriers: str = ""

    def source(self, counts_completed: bool) -> str:
        return str(SCENARIOS / f"{self.barriers}.toml") if self.barriers and counts_completed else self.scenario


BATTERY = (
    RunSpec("steady", ("fifo",)),
    RunSpec("kill_workers", ("at-least-once",), "check_kills"),
    RunSpec("pause_workers", ("ownership",), "check_pauses"),
    RunSpec("priority_backlog", ("priority", "fifo")),
    RunSpec("retries_and_dlq", ("at-least-once", "retries", "dlq"), "check_retries"),
)
# The checker each promise is read from; an invalid checker not named here is listed with its run.
PROMISE_CHECKERS = {
    "at-least-once": ("delivery", "leaks"), "ownership": ("ownership", "delivery"), "priority": ("priority",),
    "fifo": ("order", "producer_order"), "retries": ("retry", "budget"), "dlq": ("dlq",),
}  # fmt: skip
# The checkers whose invalid verdict a promise the queue does not make accounts for (at-least-once: losses,
# and kills' tasks never handed out again; ownership alone excuses no loss).
EXCUSED_WITHOUT = {
    "at-least-once": ("delivery", "leaks", "recovery"), "ownership": ("ownership",), "priority": ("priority",),
    "fifo": ("order", "producer_order"), "retries": ("retry", "budget"), "dlq": ("dlq",),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class RunOutcome:
    scenario: str
    seed: int
    verdict: Verdict | None
    error: str = ""

    @property
    def label(self) -> str:
        return self.verdict.label if self.verdict is not None else "error"


def run_battery(
    spec: str,
    chaos: Chaos,
    *,
    seed: int,
    duration_s: float,
    hosted: bool,
    counts_completed: bool,
    status: Callable[[str], None],
) -> tuple[list[RunOutcome], list[Evidence]]:
    """Each scenario once (again with the next seed when its verdict was unknown); the evidence per promise."""
    outcomes: list[RunOutcome] = []
    evidence: list[Evidence] = []
    for run_spec in BATTERY:
        source = run_spec.source(counts_completed)
        outcome = _run(spec, chaos, source, seed, duration_s, status)
        if outcome.verdict is not None and outcome.verdict.valid is None:
            outcomes.append(outcome)
            outcome = _run(spec, chaos, source, seed + 1, duration_s, status)
        outcomes.append(outcome)
        if outcome.verdict is not None:
            evidence += [_READERS[p](outcome.verdict, hosted) for p in run_spec.promises]
    return outcomes, evidence


def _run(
    spec: str, chaos: Chaos, scenario: str, seed: int, duration_s: float, status: Callable[[str], None]
) -> RunOutcome:
    name = Path(scenario).stem
    status(f"run {name} seed {seed} ({duration_s:g} s of load)")
    try:
        verdict = chaos.run(scenario, queue=spec, seed=seed, duration=duration_s)
    except HarnessError as exc:
        return RunOutcome(name, seed, None, str(exc))
    status(f"run {name} seed {seed}: {verdict.label}")
    return RunOutcome(name, seed, verdict)


def other_failures(outcome: RunOutcome, evidence: list[Evidence]) -> list[CheckerVerdict]:
    """Invalid checkers of a run that no promise shown broken by this run accounts for."""
    if outcome.verdict is None:
        return []
    source = f"{outcome.scenario} seed {outcome.seed}"
    shown = {name for e in evidence if e.held is False and e.source == source for name in PROMISE_CHECKERS[e.promise]}
    return [c for c in outcome.verdict.failing if c.name not in shown]


def _source(verdict: Verdict) -> str:
    return f"{verdict.scenario} seed {verdict.seed}"


def _commands(verdict: Verdict, checker: CheckerVerdict | None) -> tuple[str, ...]:
    tid = next((str(a["tid"]) for a in (checker.anomalies if checker else []) if "tid" in a), None)
    return (verdict.replay_command, *((verdict.explain_command(tid),) if tid else ()))


def _vacuous(verdict: Verdict) -> bool:
    vacuity = verdict.checkers.get("vacuity")
    return vacuity is not None and vacuity.valid is None


def _at_least_once(verdict: Verdict, hosted: bool) -> Evidence:
    delivery, leaks = verdict.checkers.get("delivery"), verdict.checkers.get("leaks")
    if delivery is None:
        return Evidence("at-least-once", None, _source(verdict), "no delivery verdict")
    lost, stuck = delivery.figures.get("lost", 0), delivery.figures.get("stuck", 0)
    if lost or stuck or (leaks is not None and leaks.valid is False):
        left = {k: v for k, v in (leaks.figures if leaks is not None else {}).items() if v}
        detail = f"lost={lost}, stuck={stuck}" + (", left after the drain: " if left else "")
        detail += ", ".join(f"{k}={v}" for k, v in left.items())
        return Evidence("at-least-once", False, _source(verdict), detail, _commands(verdict, delivery))
    if _vacuous(verdict):
        return Evidence("at-least-once", None, _source(verdict), "the faults hit nothing: it proves nothing")
    figures = delivery.figures
    done = f"lost=0 of {figures.get('enqueued_ok')} (completed={figures.get('completed')}, dead={figures.get('dead')})"
    return Evidence("at-least-once", True, _source(verdict), done)


def _ownership(verdict: Verdict, hosted: bool) -> Evidence:
    if hosted:
        return Evidence("ownership", None, _source(verdict), "not judged through runs: a hosted worker acks after its "
                        "handler returns, out of the harness's sight")  # fmt: skip
    ownership = verdict.checkers.get("ownership")
    if ownership is not None and "late_settlements" in ownership.figures:
        return _late_settlements(verdict, ownership)
    delivery = verdict.checkers.get("delivery")
    figures = delivery.figures if delivery is not None else {}
    twice = figures.get("duplicated", figures.get("duplicated_explained", 0) + figures.get("duplicated_unexplained", 0))
    taken_over = figures.get("re_executed", 0)
    if twice:
        detail = f"{twice} tasks completed twice: a paused worker's late ack was taken after another took the task over"
        return Evidence("ownership", False, _source(verdict), detail, _commands(verdict, delivery))
    if taken_over:
        return Evidence("ownership", True, _source(verdict), f"{taken_over} tasks taken over from paused workers, "
                        "none completed twice: their late acks were refused")  # fmt: skip
    return Evidence("ownership", None, _source(verdict), "no task was taken over from a paused worker")


def _late_settlements(verdict: Verdict, ownership: CheckerVerdict) -> Evidence:
    """The ownership checker's count: acks and fails a consumer sent after its task was handed to another."""
    late, accepted = ownership.figures.get("late_settlements", 0), ownership.figures.get("accepted", 0)
    if accepted:
        detail = f"{accepted} of {late} late acks or fails were taken (the task had moved on to another consumer)"
        return Evidence("ownership", False, _source(verdict), detail, _commands(verdict, ownership))
    if late:
        return Evidence("ownership", True, _source(verdict), f"{late} late acks or fails, every one refused")
    return Evidence("ownership", None, _source(verdict), "no ack or fail came late: nothing to judge")


def _priority(verdict: Verdict, hosted: bool) -> Evidence:
    return _counted(verdict, "priority", "priority", "inversions")


def _fifo(verdict: Verdict, hosted: bool) -> Evidence:
    """The order checker, unless the per-producer one saw a violation it did not."""
    found = _counted(verdict, "fifo", "order", "violations")
    if found.held is not False and "producer_order" in verdict.checkers:
        per_producer = _counted(verdict, "fifo", "producer_order", "violations")
        return per_producer if per_producer.held is False else found
    return found


def _counted(verdict: Verdict, promise: str, name: str, figure: str) -> Evidence:
    """Held when the checker counted none of `figure` (the checker's figures are kept even where the queue
    does not promise it, so an unpromised behaviour is reported as observed)."""
    checker = verdict.checkers.get(name)
    if checker is None or figure not in checker.figures:
        note = checker.note if checker is not None else "no verdict"
        return Evidence(promise, None, _source(verdict), f"{name}: {note or 'not checked'}")
    count = checker.figures[figure]
    detail = ", ".join(f"{k}={v}" for k, v in checker.figures.items() if not isinstance(v, dict | list))
    if count or checker.valid is False:
        return Evidence(promise, False, _source(verdict), detail, _commands(verdict, checker))
    return Evidence(promise, True, _source(verdict), detail)


def _retries(verdict: Verdict, hosted: bool) -> Evidence:
    return _judged(verdict, "retries", "retry", "retries_observed")


def _dlq(verdict: Verdict, hosted: bool) -> Evidence:
    return _judged(verdict, "dlq", "dlq", "dead")


def _judged(verdict: Verdict, promise: str, name: str, exercised: str) -> Evidence:
    checker = verdict.checkers.get(name)
    if checker is None or checker.valid is None:
        return Evidence(promise, None, _source(verdict), f"{name}: {checker.note if checker else 'no verdict'}")
    detail = ", ".join(f"{k}={v}" for k, v in checker.figures.items() if not isinstance(v, dict | list))
    if checker.valid is False:
        return Evidence(promise, False, _source(verdict), detail, _commands(verdict, checker))
    if not checker.figures.get(exercised):
        return Evidence(promise, None, _source(verdict), f"{exercised}=0: nothing to judge")
    return Evidence(promise, True, _source(verdict), detail)


_READERS: dict[str, Callable[[Verdict, bool], Evidence]] = {
    "at-least-once": _at_least_once, "ownership": _ownership, "priority": _priority, "fifo": _fifo,
    "retries": _retries, "dlq": _dlq,
}  # fmt: skip
