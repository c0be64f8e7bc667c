"""Hosted runs given bad input: one line that says what was wrong and what to do, exit 2, never a hung run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import AdapterError
from harness.peers import PEERS, Peer, peer_factory

REPO = Path(__file__).resolve().parents[2]


def harness(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "harness", *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout_s, check=False)


def test_a_worker_that_cannot_start_fails_setup_with_its_own_error_line(tmp_path: Path) -> None:
    done = harness("run", "steady", "--duration", "2", "--queue", "tests.integration.broken_hosted:factory",
                   "--out", str(tmp_path))  # fmt: skip
    assert done.returncode == 2
    assert "before it was ready" in done.stderr
    assert "tests.integration.no_such_module" in done.stderr  # taskq's own message about the bad import
    assert "Traceback" not in done.stderr.split("harness:")[-1]


def test_an_unknown_peer_lists_the_peers() -> None:
    with pytest.raises(AdapterError, match="use one of arq, celery"):
        peer_factory("nope")


def test_an_unknown_variant_lists_the_variants() -> None:
    pytest.importorskip("huey", reason="needs the peers extra")
    pytest.importorskip("harness.peers.huey", reason="the huey peer is not here yet")
    with pytest.raises(AdapterError, match="use one of default"):
        peer_factory("huey:nope")


def test_a_missing_library_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    ghost = Peer(name="ghost", module="harness.peers.ghost", requires={"no-such-dist-anywhere": "1.0"}, extra="peers")
    monkeypatch.setitem(PEERS, "ghost", ghost)
    with pytest.raises(AdapterError, match=r"needs the no-such-dist-anywhere package .*install the extra 'peers'"):
        peer_factory("ghost")
