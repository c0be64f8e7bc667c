"""JournalTally (harness.hosted.tally): handler completions counted from the journals, incrementally."""

from __future__ import annotations

from pathlib import Path

import orjson

from harness.hosted.tally import JournalTally


def _record(f: str, type_: str) -> bytes:
    op = {"index": -1, "time_ns": 1, "process": "consumer-0#1.5.0", "type": type_, "f": f, "value": {}}
    return orjson.dumps(op) + b"\n"


def test_completions_are_counted_once_and_a_half_written_record_waits(tmp_path: Path) -> None:
    tally = JournalTally()
    assert tally.completed() == 0  # no worker started yet
    first, second = tmp_path / "consumer-0#1.jsonl", tmp_path / "consumer-1#1.jsonl"
    first.write_bytes(_record("complete", "invoke") + _record("complete", "ok") + _record("fail", "ok"))
    second.write_bytes(_record("complete", "ok") + _record("complete", "ok")[:20])
    (tmp_path / "producer-0.jsonl").write_bytes(_record("complete", "ok"))
    tally.watch(first)
    assert tally.completed() == 2
    with second.open("ab") as f:
        f.write(_record("complete", "ok")[20:])
    assert tally.completed() == 3
    assert tally.completed() == 3
