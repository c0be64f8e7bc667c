"""The guide's example (examples/tinyq, docs/your-queue.md) both ways, as a user runs it: with its planted
race the chaos test fails and says why; with fix-the-race.patch applied it passes. One seed each."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tinyq"
FILES = ("tinyq.py", "tinyq_adapter.py", "kill_while_failing.toml", "test_tinyq_chaos.py", "fix-the-race.patch")


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    for name in FILES:
        shutil.copy(EXAMPLE / name, pytester.path / name)
    pytester.makeini("[pytest]\npythonpath = .\nasyncio_default_fixture_loop_scope = function\n")
    return pytester


def test_the_planted_race_fails_the_test_with_a_readable_summary(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("-k", "seed1", "--junitxml", "junit.xml", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, warnings=0)
    result.stdout.fnmatch_lines([
        "*assert Verdict(INVALID kill_while_failing seed=1 queue=tinyq_adapter:factory: *",
        "*harness verdict: kill_while_failing seed 1*",
        "harness verdict: INVALID (scenario kill_while_failing, seed 1, queue tinyq_adapter:factory)",
        "anomalies (* of * shown):",
        "replay:  harness replay *kill_while_failing-1-tinyq_adapter-factory",
        "explain: harness explain *kill_while_failing-1-tinyq_adapter-factory *",
    ])  # fmt: skip
    out = result.stdout.str()
    assert "  delivery  INVALID  " in out or "  dlq       INVALID  " in out, out
    junit = (project.path / "junit.xml").read_text()
    assert '<property name="harness.kill_while_failing.valid" value="INVALID"' in junit
    assert 'name="harness.kill_while_failing.delivery.lost"' in junit


def test_the_fixed_queue_passes_it(project: pytest.Pytester) -> None:
    subprocess.run(["git", "apply", "fix-the-race.patch"], cwd=project.path, check=True, timeout=60)
    assert "fail_script" in (project.path / "tinyq.py").read_text()
    result = project.runpytest_subprocess("-k", "seed1", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
