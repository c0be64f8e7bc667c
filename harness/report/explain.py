"""`harness explain RUN_DIR TID`: one task's life, told from a run's history, to follow a verdict to its race.

The story lists, in time order (seconds since the load phase began, with the process that did it):

    its enqueue, and what the queue answered (ok, fail, or no answer: info)
    each delivery: to which consumer, which attempt and which delivery (the lease) it was
    every fault that hit one of its holders (or, for Redis and network faults, hit while it was queued)
    each completion and failure, and what the queue answered (accepted, refused: the lease had moved on,
      retried, dead-lettered, or no answer)
    a holder's death while it held the task

then where the task ended in the queue's final state, and which checkers' anomalies name it. The same
text is written beside report.md for every task an anomaly names (explain/TID.txt), so the reports link
to it. Pure apart from reading the run folder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from harness.checkers.index import WORKER_FAULTS, Fault, HistoryIndex, targets
from harness.errors import HarnessError
from harness.faults import FAULT_KINDS
from harness.history import INVOKE, Op, read_history

PRIORITIES: Final = ("CRITICAL", "HIGH", "NORMAL", "LOW")
STORIES_DIR: Final = "explain"
COMPLETION_ANSWERS: Final = {
    "ok": "accepted",
    "refused": "REFUSED (the lease had moved on)",
    "info": "no answer (outcome unknown)",
    "fail": "failed (certainly not applied)",
}
FAILURE_ANSWERS: Final = {
    "retried": "retried",
    "dead": "dead-lettered",
    "refused": "REFUSED (the lease had moved on)",
    "info": "no answer (outcome unknown)",
    "fail": "failed (certainly not applied)",
}
_SAFE_NAME: Final = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True, slots=True)
class Event:
    start_ns: int
    end_ns: int | None
    process: str
    what: str
    at_ns: int = -1  # where it goes in the story: its start, or for a delivery the read's answer

    @property
    def order_ns(self) -> int:
        return self.start_ns if self.at_ns < 0 else self.at_ns


@dataclass(frozen=True, slots=True)
class EnqueueOp:
    process: str
    invoke_ns: int
    done_ns: int | None
    outcome: str  # ok / fail / info
    batch: int


def explain(folder: Path, tid: str) -> str:
    """The story of task `tid` in the run folder `folder` (HarnessError if it is not there)."""
    history = read_history(folder)
    index = HistoryIndex.build(history)
    verdict_path = folder / "verdict.json"
    verdict = json.loads(verdict_path.read_text()) if verdict_path.exists() else {}
    resolved = index.resolve(tid)
    if not _known(index, resolved):
        raise HarnessError(
            f"task {tid!r} is not in the history of {folder}: task ids there look like "
            f"{', '.join(sorted(index.enqueues)[:3]) or '(none)'}; the anomalies in report.md name the ones to explain"
        )
    return story(index, resolved, enqueue_ops(history, {resolved}).get(resolved, []), verdict=verdict, folder=folder)


def write_stories(folder: Path, index: HistoryIndex, history: list[Op], tids: Iterable[str],
                  verdict: dict[str, Any]) -> dict[str, str]:  # fmt: skip
    """Write explain/TID.txt for each task; returns tid -> path relative to the folder."""
    wanted = [tid for tid in dict.fromkeys(tids) if _known(index, tid)]
    if not wanted:
        return {}
    enqueues = enqueue_ops(history, set(wanted))
    (folder / STORIES_DIR).mkdir(exist_ok=True)
    written = {}
    for tid in wanted:
        relative = f"{STORIES_DIR}/{story_file(tid)}"
        (folder / relative).write_text(story(index, tid, enqueues.get(tid, []), verdict=verdict, folder=folder))
        written[tid] = relative
    return written


def story_file(tid: str) -> str:
    return _SAFE_NAME.sub("_", tid) + ".txt"


def command(folder: Path | str, tid: str) -> str:
    return f"harness explain {folder} {tid}"


def _known(index: HistoryIndex, tid: str) -> bool:
    return tid in index.enqueues or tid in index.deliveries or tid in index.completions or tid in index.failures


def enqueue_ops(history: list[Op], tids: set[str]) -> dict[str, list[EnqueueOp]]:
    """The enqueue operations (with their producer) that carried each of `tids`: one pass, pairing by process."""
    found: dict[str, list[EnqueueOp]] = {}
    open_ops: dict[str, tuple[Op, list[str]]] = {}
    for op in history:
        if op["f"] != "enqueue":
            continue
        process = op["process"]
        if op["type"] == INVOKE:
            _close(open_ops.pop(process, None), None, found)
            carried = [task[0] for task in op["value"]["tasks"] if task[0] in tids]
            if carried:
                open_ops[process] = (op, carried)
        else:
            _close(open_ops.pop(process, None), op, found)
    for pending in open_ops.values():
        _close(pending, None, found)
    return found


def _close(pending: tuple[Op, list[str]] | None, done: Op | None, found: dict[str, list[EnqueueOp]]) -> None:
    if pending is None:
        return
    invoke, carried = pending
    record = EnqueueOp(invoke["process"], invoke["time_ns"], None if done is None else done["time_ns"],
                       "info" if done is None else str(done["type"]), len(invoke["value"]["tasks"]))  # fmt: skip
    for tid in carried:
        found.setdefault(tid, []).append(record)


def story(index: HistoryIndex, tid: str, enqueues: list[EnqueueOp], *, verdict: dict[str, Any],
          folder: Path | str) -> str:  # fmt: skip
    t0 = index.phases.get("load", 0)
    events = sorted(_events(index, tid, enqueues), key=lambda e: (e.order_ns, e.start_ns))
    lines = [_title(index, tid, folder), "times: seconds since the load phase began; end = when the answer came", ""]
    lines.append(f"{'start':>9} {'end':>9}  {'process':<14} event")
    for event in events:
        end = "" if event.end_ns is None else _seconds(event.end_ns, t0)
        lines.append(f"{_seconds(event.start_ns, t0):>9} {end:>9}  {event.process:<14} {event.what}")
    if not events:
        lines.append("(no operation of the history names it)")
    lines += ["", f"final state: {_final(index, tid)}"]
    named = naming(verdict, tid)
    lines.append(f"anomalies naming it: {'; '.join(named) if named else 'none'}")
    return "\n".join(lines) + "\n"


def _title(index: HistoryIndex, tid: str, folder: Path | str) -> str:
    enqueue = index.enqueues.get(tid)
    facts = []
    if enqueue is not None:
        name = PRIORITIES[enqueue.prio] if 0 <= enqueue.prio < len(PRIORITIES) else "?"
        facts.append(f"priority {enqueue.prio} {name}, max_retries {enqueue.max_retries}")
    if tid in index.poison:
        facts.append("poison: it kills the worker that runs it")
    aliases = sorted(alias for alias, target in index.aliases.items() if target == tid)
    if aliases:
        facts.append(f"also delivered as {', '.join(aliases)}")
    return f"task {tid} ({'; '.join(facts) or 'never enqueued'}) in {folder}"


def _events(index: HistoryIndex, tid: str, enqueues: list[EnqueueOp]) -> Iterator[Event]:
    for enqueue in enqueues:
        batch = f" (batch of {enqueue.batch})" if enqueue.batch > 1 else ""
        yield Event(enqueue.invoke_ns, enqueue.done_ns, enqueue.process, f"enqueue{batch}: {_enqueue_answer(enqueue)}")
    for delivery in index.deliveries.get(tid, ()):
        renamed = f", as {delivery.delivered_tid}" if delivery.delivered_tid != tid else ""
        # A blocking read may begin before the enqueue: the delivery happens when the read answers.
        yield Event(delivery.invoke_ns, delivery.ok_ns, delivery.process,
                    f"delivered: attempt {delivery.attempt}, delivery {delivery.deliveries}{renamed}",
                    at_ns=delivery.ok_ns)  # fmt: skip
    for completion in index.completions.get(tid, ()):
        answer = COMPLETION_ANSWERS.get(completion.outcome, completion.outcome)
        yield Event(completion.invoke_ns, completion.done_ns, completion.process, f"complete: {answer}")
    for failure in index.failures.get(tid, ()):
        answer = FAILURE_ANSWERS.get(failure.outcome, failure.outcome)
        error = failure.error if len(failure.error) <= 60 else failure.error[:57] + "..."
        yield Event(failure.invoke_ns, failure.done_ns, failure.process,
                    f"fail attempt {failure.attempt} ({error!r}): {answer}")  # fmt: skip
    windows = [(*window, "held the task") for window in holding_windows(index, tid)]
    windows += [(e.process, e.invoke_ns, e.done_ns or index.end_ns, "enqueued it") for e in enqueues]
    life = _life(index, tid, enqueues)
    for fault in index.faults:
        why = fault_hit(fault, tid, windows, life, index.fault_end_ns(fault))
        if why:
            end = fault.end_ns if fault.outcome != "info" else None
            yield Event(fault.start_ns, end, fault.process, f"FAULT {fault.kind} on {fault.target}: {why}")
    holders = {holder for holder, _, _, doing in windows if doing == "held the task"}
    for exit_record in index.exits:
        if exit_record.process in holders:
            yield Event(exit_record.time_ns, None, exit_record.process, f"the holder died (exit {exit_record.code})")


def _enqueue_answer(enqueue: EnqueueOp) -> str:
    return {"ok": "ok", "fail": "failed (certainly not stored)"}.get(enqueue.outcome, "no answer (outcome unknown)")


def holding_windows(index: HistoryIndex, tid: str) -> list[tuple[str, int, int]]:
    """(holder, from, until) per delivery: from the read's answer until that holder settled the task
    (its next complete or fail of it), died, or the history ended."""
    settles: dict[str, list[int]] = {}
    for record in (*index.completions.get(tid, ()), *index.failures.get(tid, ())):
        settles.setdefault(record.process, []).append(record.invoke_ns)
    deaths = {e.process: e.time_ns for e in index.exits}
    windows = []
    for delivery in index.deliveries.get(tid, ()):
        later = [t for t in settles.get(delivery.process, ()) if t >= delivery.ok_ns]
        until = min([*later, deaths.get(delivery.process, index.end_ns), index.end_ns])
        windows.append((delivery.process, delivery.ok_ns, max(until, delivery.ok_ns)))
    return windows


def _life(index: HistoryIndex, tid: str, enqueues: list[EnqueueOp]) -> tuple[int, int]:
    """From the first enqueue to the task's last event (or the end, when it was never settled)."""
    times = [e.invoke_ns for e in enqueues] + [d.ok_ns for d in index.deliveries.get(tid, ())]
    settled = [c.done_ns or c.invoke_ns for c in index.completions.get(tid, ()) if c.outcome == "ok"]
    settled += [f.done_ns or f.invoke_ns for f in index.failures.get(tid, ()) if f.outcome == "dead"]
    start = min(times) if times else index.end_ns
    return start, (max(settled) if settled else index.end_ns)


Window = tuple[str, int, int, str]  # (process, from, until, what it was doing with the task)


def fault_hit(fault: Fault, tid: str, windows: list[Window], life: tuple[int, int], end_ns: int) -> str:
    """Why `fault` touched the task, or "" when it did not: a worker fault that struck a process while
    it held the task, a network fault on the path of a process while it held or enqueued it, a Redis
    fault while the task was queued or held."""
    if tid in fault.held:
        return "its victim held the task when struck"
    kind = FAULT_KINDS.get(fault.kind)
    role = kind.role if kind is not None else ("consumer" if fault.kind in WORKER_FAULTS else "redis")
    if role == "consumer":
        for process, since, until, doing in windows:
            if targets(fault.target, process) and since <= fault.start_ns <= until:
                return f"struck {process} while it {doing}"
        return ""
    if role == "network":
        for process, since, until, doing in windows:
            if _cuts(fault.target, process) and fault.start_ns <= until and since <= end_ns:
                return f"on the path of {process} while it {doing}"
        return ""
    if fault.start_ns <= life[1] and life[0] <= end_ns:
        return "Redis was hit while the task was queued or held"
    return ""


def _cuts(target: str, process: str) -> bool:
    return target == "all" or process.startswith(target.removesuffix("s"))


def _final(index: HistoryIndex, tid: str) -> str:
    final = index.final
    if final is None:
        return "unknown (the history has no final state: the drain was never read)"
    if tid in final.dead:
        dead = final.dead[tid]
        return f"dead-lettered ({dead.reason}; attempts {dead.attempts}, errors {dead.errors})"
    if tid in final.pending:
        prio, consumer = final.pending[tid]
        return f"still PENDING (priority {prio}), held by consumer {consumer}"
    if tid in final.ready:
        return f"still READY (priority {final.ready[tid]}): never served"
    if tid in final.delayed:
        return "still DELAYED: waiting for a retry"
    if tid in final.acked_not_deleted:
        return "acked but its entry never deleted"
    return "gone from the queue (not ready, pending, delayed nor dead)"


def naming(verdict: dict[str, Any], tid: str) -> list[str]:
    """'checker: kind' for each anomaly example of the verdict that names the task."""
    found = []
    for checker in verdict.get("checkers") or ():
        for anomaly in checker.get("anomalies") or ():
            if tid in anomaly_tids(anomaly):
                label = f"{checker['name']}: {anomaly.get('kind', 'anomaly')}"
                if label not in found:
                    found.append(label)
    return found


def anomaly_tids(anomaly: dict[str, Any], known: Any = None) -> list[str]:
    """The task ids an anomaly example names: its string values and string list items (other than its
    kind), kept when `known` (a container of task ids) holds them; all of them without `known`."""
    found: list[str] = []
    for key, value in anomaly.items():
        if key == "kind":
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and (known is None or item in known) and item not in found:
                found.append(item)
    return found


def _seconds(time_ns: int, t0_ns: int) -> str:
    return f"{(time_ns - t0_ns) / 1e9:.3f}"


@dataclass(frozen=True, slots=True)
class Trail:
    """What the reports link to from the verdict: each anomalous task's story, and the timeline."""

    folder: str
    stories: dict[str, str]  # tid -> explain/TID.txt
    timeline: str | None = None

    def links(self, anomaly: dict[str, Any], limit: int = 3) -> list[tuple[str, str, str]]:
        """(tid, `harness explain` command, story file) for the tasks an anomaly names that have a story."""
        tids = [tid for tid in anomaly_tids(anomaly, self.stories)][:limit]
        return [(tid, command(self.folder, tid), self.stories[tid]) for tid in tids]
