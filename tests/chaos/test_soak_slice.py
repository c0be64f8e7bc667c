"""A fixed slice of the soak (`harness soak`): runs that once gave false alarms, each must be valid.

`dropped_replies --seed 9001 --duration 15` is the false alarm the soak was built for: the drain gave up
while consumers were still inside their socket timeout, and the final read found their backlog (leaks:
ready=836). The other is a graceful stop of the real worker (a task handed back at the tail once read as a
FIFO violation, then as a delivery count reset). The split brain whose re-reads once read as tasks stored
twice is tests/chaos/test_topology_scenarios.py's own run (sentinel_partition, seed 11).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.soak import SoakCase, soak

pytestmark = pytest.mark.slow

SLICE = [
    SoakCase("dropped_replies", 9001, 15.0),
    SoakCase("sigterm_workers", 7, 10.0, queue="taskq-worker"),
]


@pytest.mark.timeout(300)
def test_the_soak_slice_is_valid(tmp_path: Path) -> None:
    folder = soak(SLICE, tmp_path, status=lambda line: None)
    summary = json.loads((folder / "soak.json").read_text())
    assert (summary["ran"], summary["valid"]) == (len(SLICE), len(SLICE)), (folder / "soak.md").read_text()
