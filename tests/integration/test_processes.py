"""harness.processes: a worker's whole tree is found by its environment mark and killed together, even
a child that left its parent's session, or outlived it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from harness.processes import kill_tree, tree_pids

VAR = "HARNESS_TEST_TREE"
# A parent that forks a child; the child leaves the session (as rq's work-horse leaves the group) and both sleep.
FORKING = """
import os, sys, time
child = os.fork()
if child == 0:
    os.setsid()
    open(sys.argv[1], "w").write(str(os.getpid()))
time.sleep(60)
"""


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def start_tree(tmp_path: Path, token: str) -> tuple[subprocess.Popen[bytes], Path]:
    marker = tmp_path / "child.pid"
    env = {**os.environ, VAR: token}
    parent = subprocess.Popen([sys.executable, "-c", FORKING, str(marker)], env=env, start_new_session=True)
    wait_for(lambda: marker.exists() and marker.read_text() != "")
    return parent, marker


def test_the_tree_holds_the_parent_and_a_child_that_left_its_session(tmp_path: Path) -> None:
    parent, marker = start_tree(tmp_path, f"tree-{os.getpid()}-a")
    child = int(marker.read_text())
    try:
        assert sorted(tree_pids(VAR, f"tree-{os.getpid()}-a")) == sorted([parent.pid, child])
    finally:
        kill_tree(VAR, f"tree-{os.getpid()}-a")
        parent.wait(timeout=10)


def test_kill_tree_kills_children_that_outlive_their_parent(tmp_path: Path) -> None:
    token = f"tree-{os.getpid()}-b"
    parent, marker = start_tree(tmp_path, token)
    child = int(marker.read_text())
    parent.kill()  # the parent alone, as a plain `kill PID` does: the child lives on
    parent.wait(timeout=10)
    assert tree_pids(VAR, token) == [child]
    assert kill_tree(VAR, token) == [child]
    wait_for(lambda: tree_pids(VAR, token) == [])


def test_other_trees_are_left_alone(tmp_path: Path) -> None:
    ours, theirs = f"tree-{os.getpid()}-c", f"tree-{os.getpid()}-d"
    (tmp_path / "ours").mkdir()
    (tmp_path / "theirs").mkdir()
    parent, _ = start_tree(tmp_path / "ours", ours)
    other, _ = start_tree(tmp_path / "theirs", theirs)
    try:
        kill_tree(VAR, ours)
        parent.wait(timeout=10)
        assert other.poll() is None
        assert len(tree_pids(VAR, theirs)) == 2
    finally:
        kill_tree(VAR, theirs)
        other.wait(timeout=10)


def _agents_of(folder: Path) -> list[int]:
    """Pids of agent processes whose command line names a plan under `folder`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"harness.agents" in argv and any(str(folder).encode() in arg for arg in argv):
            found.append(int(entry.name))
    return found


def test_agents_die_with_a_runner_that_was_killed(tmp_path: Path) -> None:
    """A test's timeout SIGKILLs `harness run`: its agents must not live on (they die with their parent)."""
    runner = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "steady", "--duration", "60", "--out", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: len(_agents_of(tmp_path)) >= 2, timeout_s=30)
    finally:
        runner.kill()
        runner.wait()
    wait_for(lambda: _agents_of(tmp_path) == [], timeout_s=5)
