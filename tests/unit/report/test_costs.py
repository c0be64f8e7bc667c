from __future__ import annotations

from pathlib import Path

from harness.agents.stats import AgentStats
from harness.bench.runs import figure
from harness.report.verdict import agent_costs


def test_cpu_per_task_adds_the_server_to_the_agents(tmp_path: Path) -> None:
    (tmp_path / "journals").mkdir()
    for name, role in (("producer-0", "producer"), ("consumer-0#1", "consumer"), ("consumer-1#1", "consumer")):
        AgentStats(name, role).write(tmp_path / "journals" / f"{name}.jsonl")
    costs = agent_costs(tmp_path, 1000, redis_cpu_s=0.5)
    assert costs["consumer"]["processes"] == 2 and costs["producer"]["processes"] == 1
    assert costs["redis-server"] == {"processes": 1, "cpu_s": 0.5, "cpu_us_per_task": 500.0}
    total = costs["total"]
    assert total["processes"] == 4
    assert total["cpu_s"] == round(costs["consumer"]["cpu_s"] + costs["producer"]["cpu_s"] + 0.5, 3)
    assert figure({"agents": costs}, "cpu_per_task") == total["cpu_us_per_task"]
    assert "total" not in agent_costs(tmp_path, 1000)  # without the server's share there is no total
