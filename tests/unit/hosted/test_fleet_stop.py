"""Fleet.stop: workers told to stop together share one deadline, then are killed."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from harness.fleet import Agent, Fleet

# A process that ignores SIGTERM, as taskiq's stream workers do in effect.
STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"


def _stubborn(index: int, tmp_path: Path) -> Agent:
    process = subprocess.Popen([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline() == b"up\n"  # its handler is in place
    return Agent("consumer", index, 1, process, tmp_path / f"c{index}.jsonl")


def test_stubborn_workers_cost_one_timeout_not_one_each(tmp_path: Path) -> None:
    agents = [_stubborn(i, tmp_path) for i in range(3)]
    fleet = Fleet(folder=tmp_path, plan_path=tmp_path / "plan.json", url="redis://unused")
    started = time.monotonic()
    fleet.stop(agents, timeout_s=1.0)
    elapsed = time.monotonic() - started
    assert all(not agent.alive() for agent in agents)
    assert all(agent.process.returncode == -9 for agent in agents)  # SIGKILLed after the deadline
    for agent in agents:
        assert agent.process.stdout is not None
        agent.process.stdout.close()
    assert 1.0 <= elapsed < 2.5, elapsed
