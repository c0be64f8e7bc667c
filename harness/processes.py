"""Process trees of hosted workers: find every process of one worker, and signal them together.

A library's worker may fork children (rq's work-horse, celery's prefork pool) or manage them
(taskiq, dramatiq), and a child may leave its parent's process group or session (rq's horse
calls setpgrp) or outlive its parent. A supervisor that kills "the worker" (systemd's control
group, a container) kills all of them. The fleet marks each worker with an environment
variable its whole tree inherits (harness.hosted.base.TREE_ENV) and finds the tree by it in
/proc, whatever the processes did to their group, session or parent.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

PROC = Path("/proc")


def _environ_has(pid: int, marker: bytes) -> bool:
    try:
        return marker in (PROC / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:  # gone, or not ours
        return False


def _alive(pid: int) -> bool:
    """Running or stopped; a zombie is not alive (it only waits for its parent to reap it)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def tree_pids(variable: str, token: str) -> list[int]:
    """Every live process whose environment has `variable=token`, in pid order."""
    marker = f"{variable}={token}".encode()
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit() and _environ_has(int(entry.name), marker) and _alive(int(entry.name)):
            found.append(int(entry.name))
    return sorted(found)


def signal_pids(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def kill_tree(variable: str, token: str) -> list[int]:
    """SIGKILL the whole tree: stop it first, so that nothing forks a new child between the scan and
    the kill, then kill what the last scan found. Returns the pids killed."""
    stopped: set[int] = set()
    while True:
        pids = [pid for pid in tree_pids(variable, token) if pid not in stopped]
        if not pids:
            break
        signal_pids(pids, signal.SIGSTOP)
        stopped.update(pids)
    signal_pids(sorted(stopped), signal.SIGKILL)
    return sorted(stopped)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes (and of their children they already reaped)."""
    total_ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = (PROC / str(pid) / "stat").read_text().rpartition(")")[2].split()
            # utime, stime, cutime, cstime: fields 14-17 of stat, 12-15 after the command name
            total_ticks += sum(int(x) for x in fields[11:15])
    return total_ticks / os.sysconf("SC_CLK_TCK")
