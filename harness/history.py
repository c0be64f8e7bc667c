"""Operation records, per-process journals, and the merged history.

One JSON object per line, one journal file per OS process, merged by time after
the run. Every record has:

    index     position in the merged history (assigned by merge; -1 in journals)
    time_ns   CLOCK_MONOTONIC, the same clock for every process on the host
    process   the logical process: at most one operation in flight per process.
              "producer-0.1" (OS process producer-0, logical thread 1),
              "consumer-2#3" (consumer slot 2, third incarnation), "nemesis-4" (the
              fifth planned fault: each fault is a process of its own), "runner"
    type      "invoke", then one completion: "ok", "fail" (it certainly did not
              happen), or "info" (outcome unknown: timeout, connection lost, crash)
    f         what the operation is (below)
    value     f-specific data (below); task ids are strings ("tid")

An invoke and its completion are paired by order within one process: the next
completion of a process completes its last invoke. A process that dies leaves its
last invoke without completion: the checkers treat that as "info".

f          invoke value                                  completion value
---------  --------------------------------------------  ---------------------------------------
enqueue    {"tasks": [[tid, prio, max_retries], ...],    ok: {}; fail/info: {"error": str}
            "due_ns": intended send time (open loop),
            "poison": [tid, ...] (only when some are: tasks
            that crash the worker running them)}
deliver    {}                                            ok: {"tasks": [[tid, prio, attempt, deliveries,
                                                                   payload_tid, max_retries, digest, errors], ...]}
                                                         (attempt = retry count, 0 on the first try;
                                                         deliveries = times this entry was handed out)
complete   {"tasks": [tid, ...]}  (handlers succeeded)   ok: {"refused": [tid, ...]} (acks the queue
                                                         refused: lease lost); info: {"error": str}
fail       {"tasks": [[tid, attempt, error], ...]}       ok: {"outcomes": ["retried"|"dead"|"refused", ...]}
                                                         aligned with the invoke's tasks; info: {"error"}
fault      {"kind": str, "target": str, "held": [tid]}   ok: {} when the fault ends (resume, restart;
           (held: tasks the victim held when hit)        "held": [tid] what a killed or paused victim's
                                                         journal showed once it stood still);
                                                         info: {"error": str} if it could not be applied
exit       (no invoke) type "info": a process died unexpectedly: {"code": int}
phase      (no invoke) type "ok" by "runner": {"name": "setup"|"load"|"heal"|"drain"|"final"}
depth      (no invoke) type "ok" by "runner", sampled every 0.2 s through load and drain:
           the adapter's depth(): {"ready": int, "pending": int, "delayed": int, "dead": int,
           "completed": int (when the queue counts it)}; for the depth plot, never judged
final      (no invoke) type "ok" by "runner": the server state after the drain:
           {"ready": [[tid, prio], ...], "pending": [[tid, prio, consumer], ...],
            "delayed": [tid, ...], "dead": [[tid, reason, attempts, errors], ...],
            "acked_not_deleted": [tid, ...], "foreign": int, "stats": {...}}
           (attempts = retry count stored with the dead task; errors = how many attempt
           errors it carries; foreign = entries that are not harness tasks)

`prio` is 0 (CRITICAL) .. 3 (LOW). Tasks carry their own id in the payload, so a
queue that re-adds a task under a new id is caught ("tid" in the payload vs the id
delivered).

A delivered task is a list whose first four elements are always there; the rest were
added later and are optional, so histories of older harness versions still read:

    0 tid          the id the queue handed out
    1 prio         the priority (stream) it was read from
    2 attempt      retry count, 0 on the first try
    3 deliveries   times this entry was handed out (a reclaim adds one, a retry is a new entry)
    4 payload_tid  the tid in the payload: the task's identity. Older journals wrote it only when
                   it differed from element 0; now it is always written (repeating element 0)
    5 max_retries  the retry budget the delivered task carries
    6 digest       8 hex digits of blake2b over the payload's JSON (keys sorted), or null when
                   the payload is not JSON: a retry must carry the payload it was enqueued with
    7 errors       how many attempt errors the queue stored with the task, or null when the
                   queue does not say; it grows by one per failed attempt

A reader takes element 4 as the task's identity when present, and elements 5-7 only when
the list is that long.
"""

from __future__ import annotations

import heapq
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

import orjson

from harness.errors import HistoryError

FORMAT_VERSION: Final = 1
Op = dict[str, Any]

INVOKE, OK, FAIL, INFO = "invoke", "ok", "fail", "info"


def now_ns() -> int:
    return time.monotonic_ns()


class Journal:
    """Appends operations of one OS process to its journal file.

    Each record is written with one write(2) before the operation it describes goes
    to Redis, so a SIGKILL loses nothing that was already sent; nothing is buffered
    in the process.
    """

    def __init__(self, path: Path, *, enabled: bool = True) -> None:
        self.path = path
        self.enabled = enabled
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) if enabled else -1

    def record(self, process: str, type_: str, f: str, value: Any = None, time_ns: int | None = None) -> int:
        stamp = time.monotonic_ns() if time_ns is None else time_ns
        if self.enabled:
            op = {"index": -1, "time_ns": stamp, "process": process, "type": type_, "f": f, "value": value}
            os.write(self._fd, orjson.dumps(op) + b"\n")
        return stamp

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_journal(path: Path) -> list[Op]:
    """All records of one journal. A torn last line (the process was killed mid-write) is dropped;
    any other unreadable line is an error naming the file and line."""
    ops: list[Op] = []
    lines = path.read_bytes().split(b"\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            op = orjson.loads(line)
            _check_op(op)
        except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
            if number == len(lines) and not line.endswith(b"}"):
                break  # torn final write of a killed process
            raise HistoryError(
                f"{path}:{number} is not a history record ({exc}); the journal is corrupt: "
                "re-run the scenario, or delete the line if you know it is noise"
            ) from exc
        ops.append(op)
    return ops


def _check_op(op: Any) -> None:
    if not isinstance(op, dict) or not {"time_ns", "process", "type", "f"} <= op.keys():
        raise ValueError("missing time_ns, process, type or f")
    if op["type"] not in (INVOKE, OK, FAIL, INFO):
        raise ValueError(f"unknown type {op['type']!r}")


def merge(journals: Iterable[list[Op]]) -> list[Op]:
    """Merge per-process journals by time (stable within a journal) and number the result."""
    keyed = ([(op["time_ns"], n, i, op) for i, op in enumerate(ops)] for n, ops in enumerate(journals))
    history = [op for _, _, _, op in heapq.merge(*keyed)]
    for index, op in enumerate(history):
        op["index"] = index
    return history


def read_history(folder: Path) -> list[Op]:
    """The merged history of a run folder: history.jsonl, or the journals/ it was merged from."""
    merged = folder / "history.jsonl"
    if merged.exists():
        return read_journal(merged)
    journals = sorted((folder / "journals").glob("*.jsonl"))
    if not journals:
        raise HistoryError(f"{folder} has no history.jsonl and no journals/: is it a harness run folder?")
    return merge(read_journal(p) for p in journals)


def write_history(path: Path, history: list[Op]) -> None:
    with path.open("wb") as out:
        for op in history:
            out.write(orjson.dumps(op) + b"\n")


def pair_operations(history: list[Op]) -> Iterator[tuple[Op, Op | None]]:
    """(invoke, completion) pairs in invoke order; completion is None when the process died first.

    Records without an invoke (exit, phase, final) are yielded as (record, record).
    """
    open_invokes: dict[str, Op] = {}
    pairs: list[tuple[Op, Op | None]] = []
    slot: dict[int, int] = {}
    for op in history:
        process = op["process"]
        if op["type"] == INVOKE:
            if process in open_invokes:  # a second invoke: the first never completed
                slot_index = slot.pop(id(open_invokes[process]))
                pairs[slot_index] = (open_invokes[process], None)
            open_invokes[process] = op
            slot[id(op)] = len(pairs)
            pairs.append((op, None))
        elif process in open_invokes and op["f"] == open_invokes[process]["f"]:
            invoke = open_invokes.pop(process)
            pairs[slot.pop(id(invoke))] = (invoke, op)
        else:
            pairs.append((op, op))
    return iter(pairs)
