"""The checker speed bench: its simulated queue is correct, so every checker passes its history."""

from __future__ import annotations

import pytest

from harness.bench.checkers import generate_history, judge, main
from harness.checkers import CHECKERS, CheckContext


def test_generated_history_passes_every_checker() -> None:
    history = generate_history(20_000)
    assert len(history) >= 20_000
    _, _, timed = judge(history, CheckContext())
    assert {result.name: result.valid for result, _ in timed} == dict.fromkeys(CHECKERS, True)


def test_main_prints_the_verdict_line(capsys: pytest.CaptureFixture[str]) -> None:
    main(5_000)
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("checkers: ")
    assert last.endswith("target < 10 s: OK")
