"""consumer_state: what a consumer holds, settles and took over, read from the end of its journal."""

from __future__ import annotations

from pathlib import Path

import orjson

from harness.fleet import consumer_state


def journal(path: Path, *ops: tuple[str, str, dict[str, object]]) -> Path:
    lines = [
        orjson.dumps({"process": "consumer-0#1", "time_ns": n, "type": kind, "f": f, "value": value})
        for n, (kind, f, value) in enumerate(ops)
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_tasks_handed_out_before_are_told_apart(tmp_path: Path) -> None:
    path = journal(
        tmp_path / "c.jsonl",
        ("invoke", "deliver", {}),
        ("ok", "deliver", {"tasks": [["t1", 2, 0, 1], ["t2", 2, 0, 2], ["t3", 2, 1, 3]]}),
    )
    state = consumer_state(path)
    assert state.held == ["t1", "t2", "t3"]
    assert state.reclaimed == ["t2", "t3"]


def test_settled_tasks_are_neither_held_nor_reclaimed(tmp_path: Path) -> None:
    path = journal(
        tmp_path / "c.jsonl",
        ("ok", "deliver", {"tasks": [["t1", 2, 0, 2], ["t2", 2, 0, 2]]}),
        ("invoke", "complete", {"tasks": ["t1"]}),
        ("ok", "complete", {"refused": []}),
    )
    state = consumer_state(path)
    assert (state.held, state.reclaimed, state.settling) == (["t2"], ["t2"], "")


def test_a_new_batch_replaces_the_last(tmp_path: Path) -> None:
    path = journal(
        tmp_path / "c.jsonl",
        ("ok", "deliver", {"tasks": [["t1", 2, 0, 2]]}),
        ("ok", "complete", {"refused": []}),
        ("ok", "deliver", {"tasks": [["t2", 2, 0, 1]]}),
    )
    assert consumer_state(path).reclaimed == []


def test_a_missing_journal_holds_nothing(tmp_path: Path) -> None:
    state = consumer_state(tmp_path / "none.jsonl")
    assert (state.held, state.reclaimed) == ([], [])
