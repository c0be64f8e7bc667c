"""Chaos tests of tinyq under the harness (docs/your-queue.md). They start processes and a redis-server of
their own and take seconds each: run them apart from unit tests (`pytest -m chaos`)."""

from __future__ import annotations

from pathlib import Path

import pytest

QUEUE = "tinyq_adapter:factory"
KILL_WHILE_FAILING = str(Path(__file__).parent / "kill_while_failing.toml")


@pytest.mark.chaos(KILL_WHILE_FAILING, seeds=[1, 2, 3], duration=5)
def test_tinyq_keeps_every_task_when_workers_die_while_failing(chaos):
    verdict = chaos.run(queue=QUEUE)
    assert verdict
