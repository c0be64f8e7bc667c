"""What the arq and saq tests share: where their environment is, and running the `harness` command.

arq and saq need redis-py 5, so they live in .venv-redis5 (harness.peers.environments), not in the
.venv the main test run uses. Their adapter tests need the library importable and skip elsewhere;
`run_here_in_peer_environment` runs them in .venv-redis5 from the main run. The end-to-end tests go
through the `harness` command, which moves itself into .venv-redis5 when the library is not here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
PEER_PYTHON = REPO / ".venv-redis5" / "bin" / "python"
INSTALL_HINT = "`.venv/bin/harness peers install arq` creates .venv-redis5 with arq and saq"


def importable(module: str) -> bool:
    return find_spec(module) is not None


def needs_library_here(module: str) -> pytest.MarkDecorator:
    """For tests that import the library: they run where it is importable (in .venv-redis5)."""
    return pytest.mark.skipif(
        not importable(module),
        reason=f"{module} is not importable in this environment (it needs redis-py 5): these tests run in "
        f".venv-redis5, started from here by test_adapter_tests_pass_in_the_peer_environment",
    )


def needs_library_somewhere(module: str) -> pytest.MarkDecorator:
    """For tests through the `harness` command: the library here, or in .venv-redis5."""
    return pytest.mark.skipif(
        not importable(module) and not PEER_PYTHON.exists(),
        reason=f"{module} is not installed here and .venv-redis5 is missing: {INSTALL_HINT}",
    )


def run_here_in_peer_environment(test_file: Path, selection: str) -> subprocess.CompletedProcess[str]:
    """This test file's adapter tests (`-k selection`), run by pytest in .venv-redis5."""
    command = [str(PEER_PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file), "-k", selection]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)


def harness(*args: str, timeout_s: float = 150) -> subprocess.CompletedProcess[str]:
    """The `harness` command, run from this environment (it moves itself to the peer's)."""
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout_s, check=False)  # fmt: skip


def run_for_verdict(*args: str, out: Path) -> dict[str, Any]:
    """`harness ARGS --out OUT`, and the verdict of its one run."""
    done = harness(*args, "--out", str(out))
    found = list(out.glob("*/verdict.json"))
    assert len(found) == 1, f"no single verdict.json (exit {done.returncode}): {done.stderr[-2000:]}"
    verdict: dict[str, Any] = json.loads(found[0].read_text())
    return verdict


def figures(verdict: dict[str, Any], name: str) -> dict[str, Any]:
    return checker(verdict, name)["figures"]  # type: ignore[no-any-return]


def verdict_in(out: Path) -> dict[str, Any]:
    found = list(out.glob("*/verdict.json"))
    assert len(found) == 1, f"expected one run folder with a verdict in {out}, found {found}"
    verdict: dict[str, Any] = json.loads(found[0].read_text())
    return verdict


def checker(verdict: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in verdict["checkers"] if c["name"] == name)
    return found


def invalid_checkers(verdict: dict[str, Any]) -> set[str]:
    return {c["name"] for c in verdict["checkers"] if c["valid"] is False}
