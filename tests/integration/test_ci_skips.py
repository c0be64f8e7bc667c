"""tests/conftest.py's CI rule: under CI=true a root, container or TLS test that skips on a machine that can
run it fails; locally, and where the machine truly cannot, it stays a skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import conftest

REPO = Path(__file__).resolve().parents[2]
INNER_TESTS = """
import pytest

@pytest.mark.root
def test_needs_root():
    pytest.skip("iptables is not installed")

@pytest.mark.tls
def test_needs_tls():
    pytest.skip("openssl is not installed")

def test_plain():
    pytest.skip("nothing to do with the machine")
"""


def inner_pytest(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text("from tests.conftest import pytest_configure, pytest_runtest_makereport\n")
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"PYTHONPATH": str(REPO)}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.skipif(os.geteuid() != 0 or not conftest.redis_server_speaks_tls(), reason="needs root and TLS")
def test_under_ci_a_skip_the_machine_could_avoid_fails_with_what_it_needs(tmp_path: Path) -> None:
    done = inner_pytest(tmp_path, "true")
    assert done.returncode == 1, done.stdout
    assert "2 failed, 1 skipped" in done.stdout
    assert "CI=true: this root test skipped (iptables is not installed)" in done.stdout
    assert "iproute2 and iptables" in done.stdout
    assert "CI=true: this tls test skipped (openssl is not installed)" in done.stdout


def test_without_ci_the_same_skips_stay_skips(tmp_path: Path) -> None:
    done = inner_pytest(tmp_path, None)
    assert done.returncode == 0, done.stdout
    assert "3 skipped" in done.stdout


class FakeItem:
    def __init__(self, *markers: str) -> None:
        self.markers = markers

    def get_closest_marker(self, name: str) -> Any:
        return name if name in self.markers else None


def test_a_machine_that_truly_cannot_keeps_the_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "MACHINE_LIMITS", {
        "root": (lambda: "not root", "iptables"),
        "container": (lambda: "", "a Docker engine"),
        "tls": (lambda: "this redis-server was built without TLS", "openssl"),
    })  # fmt: skip
    assert conftest.ci_skip_failure(FakeItem("root"), "need root") == ""  # type: ignore[arg-type]
    assert conftest.ci_skip_failure(FakeItem("tls"), "no TLS") == ""  # type: ignore[arg-type]
    assert conftest.ci_skip_failure(FakeItem(), "unmarked") == ""  # type: ignore[arg-type]
    message = conftest.ci_skip_failure(FakeItem("container"), "no Docker engine: socket refused")  # type: ignore[arg-type]
    assert message.startswith("CI=true: this container test skipped (no Docker engine: socket refused)")
    assert "a Docker engine" in message
