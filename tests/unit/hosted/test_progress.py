"""JournalCompletions: handler finishes counted from hosted workers' journals, read incrementally."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.hosted.handler import HostedRun, PlannedFailure
from harness.hosted.progress import JournalCompletions
from harness.plan import make_plan
from harness.scenario import Scenario, Workload


def _run(journal: Path, failure_probability: float = 0.0) -> HostedRun:
    scenario = Scenario(name="t", workload=Workload(failure_probability=failure_probability))
    plan = make_plan(scenario, seed=1, queue="peer:x", redis="local", queue_name="q")
    return HostedRun(plan, journal, "consumer-0#1")


def test_counts_finishes_not_starts_nor_failures(tmp_path: Path) -> None:
    journal = tmp_path / "consumer-0#1.jsonl"
    run = _run(journal)
    counter = JournalCompletions(tmp_path)
    assert counter.count() == 0
    for n in range(3):
        run.finish(run.begin({"tid": f"t{n}"}, attempt=0))
    run.begin({"tid": "held"}, attempt=0)  # started, never finished
    assert counter.count() == 3
    run.finish(run.begin({"tid": "t9"}, attempt=0))
    assert counter.count() == 4  # only the new lines were read


def test_failed_attempts_do_not_count(tmp_path: Path) -> None:
    journal = tmp_path / "consumer-1#1.jsonl"
    run = _run(journal, failure_probability=0.999)
    started = run.begin({"tid": "f"}, attempt=0)
    with pytest.raises(PlannedFailure):
        run.finish(started)
    assert JournalCompletions(tmp_path).count() == 0


def test_a_line_cut_short_counts_once_whole(tmp_path: Path) -> None:
    journal = tmp_path / "consumer-2#1.jsonl"
    _run(journal).finish(_run(journal).begin({"tid": "a"}, attempt=0))
    whole = journal.read_bytes()
    journal.write_bytes(whole[:-10])  # the ok record still being written
    counter = JournalCompletions(tmp_path)
    assert counter.count() == 0
    journal.write_bytes(whole)
    assert counter.count() == 1
    assert counter.count() == 1


def test_other_journals_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "runner.jsonl").write_bytes(b'{"type":"ok","f":"complete"}\n')
    assert JournalCompletions(tmp_path).count() == 0
