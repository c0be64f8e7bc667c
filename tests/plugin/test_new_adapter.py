"""`harness new adapter`: the skeletons it writes are Python that loads, and `harness check-adapter` on an
untouched one says what to fill in first, without a stack trace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def harness(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip


@pytest.mark.parametrize(
    ("flags", "files"),
    [
        ((), ["myq_adapter.py", "tests/test_myq_chaos.py"]),
        (("--hosted",), ["myq_adapter.py", "myq_handlers.py", "tests/test_myq_chaos.py"]),
    ],
)
def test_the_skeleton_loads_and_check_adapter_says_what_to_fill_in(
    tmp_path: Path, flags: tuple[str, ...], files: list[str]
) -> None:
    done = harness("new", "adapter", "myq", *flags, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.py"))
    assert written == sorted(files)
    for name in files:
        compile((tmp_path / name).read_text(), name, "exec")
    assert "harness check-adapter myq_adapter:factory" in done.stdout
    checked = harness("check-adapter", "myq_adapter:factory", "--no-runs", cwd=tmp_path)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "BROKEN   connect      is implemented: it raised NotImplementedError: TODO: connect" in checked.stdout
    assert "Traceback" not in checked.stdout + checked.stderr


def test_the_skeletons_test_is_a_chaos_test_over_three_seeds(tmp_path: Path) -> None:
    assert harness("new", "adapter", "myq", cwd=tmp_path).returncode == 0
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "chaos", "-p", "no:cacheprovider",
         "-o", "asyncio_default_fixture_loop_scope=function", "tests"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert "6 tests collected" in collected.stdout, collected.stdout + collected.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("new", "adapter", "My-Queue"), "adapter name 'My-Queue' must be a lowercase Python identifier"),
        (("new", "adapter", "class"), "adapter name 'class' must be a lowercase Python identifier"),
    ],
)
def test_a_bad_name_is_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...], says: str) -> None:
    done = harness(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith(f"harness: {says}")
    assert not list(tmp_path.iterdir())


def test_existing_files_are_not_overwritten_without_force(tmp_path: Path) -> None:
    (tmp_path / "myq_adapter.py").write_text("# mine\n")
    done = harness("new", "adapter", "myq", cwd=tmp_path)
    assert done.returncode == 2
    assert "already exist(s): move them away, or pass --force" in done.stderr
    assert (tmp_path / "myq_adapter.py").read_text() == "# mine\n"
    assert harness("new", "adapter", "myq", "--force", cwd=tmp_path).returncode == 0
    assert "class MyqAdapter" in (tmp_path / "myq_adapter.py").read_text()
