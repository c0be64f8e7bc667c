"""Bad input to the harness: one line that says what to do, exit 2, and no run folder
passed off as a result."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import HistoryError
from harness.history import Journal, read_journal

REPO = Path(__file__).resolve().parents[2]


def harness(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})}, check=False,
    )  # fmt: skip


def assert_one_line_error(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("harness: "), done.stderr
    for fragment in fragments:
        assert fragment in lines[-1], lines[-1]
    assert "Traceback" not in done.stderr


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real, short, valid run folder to corrupt copies of."""
    out = tmp_path_factory.mktemp("runs")
    done = harness("run", "steady", "--duration", "1", "--rate", "200", "--seed", "3", "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    [folder] = out.iterdir()
    return folder


def test_unknown_scenario(tmp_path: Path) -> None:
    done = harness("run", "no_such_scenario", "--out", str(tmp_path))
    assert_one_line_error(done, "unknown scenario 'no_such_scenario'", "kill_workers")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [("--duration", "-1", "--duration"), ("--consumers", "0", "--consumers"), ("--rate", "fast", "--rate")],
)
def test_bad_option_value(tmp_path: Path, option: str, value: str, says: str) -> None:
    done = harness("run", "steady", option, value, "--out", str(tmp_path))
    assert_one_line_error(done, says, "harness run --help")
    assert not list(tmp_path.iterdir())


def test_unknown_queue(tmp_path: Path) -> None:
    assert_one_line_error(harness("run", "steady", "--queue", "nosuch", "--out", str(tmp_path)), "unknown queue")
    assert_one_line_error(
        harness("run", "steady", "--queue", "taskq-mutant:nope", "--out", str(tmp_path)), "unknown mutant", "no-delete"
    )
    assert not list(tmp_path.iterdir())


def test_unreachable_redis(tmp_path: Path) -> None:
    done = harness("run", "steady", "--redis", "redis://127.0.0.1:1/0", "--out", str(tmp_path))
    assert_one_line_error(done, "cannot reach Redis at redis://127.0.0.1:1", "--redis local")
    assert not list(tmp_path.iterdir())


def test_missing_redis_server(tmp_path: Path) -> None:
    done = harness("run", "steady", "--out", str(tmp_path), env={"REDIS_SERVER": str(tmp_path / "nope")})
    assert_one_line_error(done, "REDIS_SERVER=", "not an executable")
    assert not list(tmp_path.iterdir())


def test_bad_scenario_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "bad"\n[run]\nconsumers = 2\n[[faults]]\nkind = "kill"\nevery_s = 1\ntarget = "consumer-7"\n'
    )
    assert_one_line_error(harness("run", str(bad), "--out", str(tmp_path / "out")), "bad.toml", "consumer-7")
    bad.write_text('name = "bad"\n[workload]\nfailure_probability = 2\n')
    assert_one_line_error(harness("run", str(bad), "--out", str(tmp_path / "out")), "failure_probability")
    bad.write_text('name = "bad"\n[run]\nduration_s = "ten"\n')  # once a TypeError traceback and exit 1
    assert_one_line_error(harness("run", str(bad), "--out", str(tmp_path / "out")), "duration_s", "expected a number")
    bad.write_text("name = [")
    assert_one_line_error(harness("run", str(bad), "--out", str(tmp_path / "out")), "not valid TOML")
    assert not (tmp_path / "out").exists()


def test_corrupt_journal_line(good_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    lines = (run / "history.jsonl").read_text().splitlines()
    lines[len(lines) // 2] = '{"index": 3, "time_ns": '  # torn in the middle of the file
    (run / "history.jsonl").write_text("\n".join(lines) + "\n")
    assert_one_line_error(harness("check", str(run)), "history.jsonl:", "corrupt")


def test_torn_last_line_of_a_killed_process_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "consumer-0#1.jsonl"
    with Journal(path) as journal:
        journal.record("consumer-0#1", "invoke", "deliver", {})
    with path.open("ab") as out:
        out.write(b'{"index":-1,"time_ns":12,"proc')  # SIGKILL mid-write
    assert [op["f"] for op in read_journal(path)] == ["deliver"]
    path.write_bytes(b'{"index":-1,\n' + path.read_bytes())  # the same, not at the end: an error
    with pytest.raises(HistoryError, match="corrupt"):
        read_journal(path)


def test_run_folder_of_an_older_format(good_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    plan = json.loads((run / "plan.json").read_text())
    plan["format"] = 0
    (run / "plan.json").write_text(json.dumps(plan))
    assert_one_line_error(harness("check", str(run)), "plan format 0", "re-run the scenario")
    assert_one_line_error(harness("replay", str(run)), "plan format 0")


def test_not_a_run_folder(tmp_path: Path) -> None:
    assert_one_line_error(harness("check", str(tmp_path)), "is this a harness run folder")


def test_a_run_that_breaks_leaves_error_txt_and_no_verdict(tmp_path: Path) -> None:
    done = harness(
        "run", "steady", "--duration", "2", "--queue", "tests.integration.broken_adapter:BrokenAdapter",
        "--out", str(tmp_path), timeout=120,
    )  # fmt: skip
    assert_one_line_error(done, "broken on purpose")
    [folder] = tmp_path.iterdir()
    assert (folder / "error.txt").exists()
    assert not (folder / "verdict.json").exists()
