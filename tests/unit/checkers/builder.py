"""HistoryBuilder: synthetic histories for checker tests, written the way the agents journal them.

Every record gets a strictly later time_ns (one step per record, `advance` for longer gaps); `history()`
splits the records into per-process journals and merges them with harness.history.merge, like a run.

    h = HistoryBuilder()
    h.enqueue("p0", ["t1", "t2"], prio=2)
    h.deliver("c1", [("t1", 2, 0, 1)])
    h.complete("c1", ["t1"])
    h.kill("c1", held=["t2"])
    h.final(pending=[("t2", 2, "c1")])
    history = h.history()
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from harness.checkers import CheckContext, CheckResult, HistoryIndex
from harness.history import Op, merge

MS = 1_000_000
S = 1_000_000_000

# (tid, prio, attempt, deliveries), optionally followed by payload tid, max_retries, digest, errors
# (the delivered task's elements in harness.history).
DeliveredTask = tuple[Any, ...]


class HistoryBuilder:
    def __init__(self, *, start_ns: int = 10 * S, step_ns: int = MS) -> None:
        self.ops: list[Op] = []
        self.now_ns = start_ns
        self.step_ns = step_ns

    # -- time ---------------------------------------------------------------------------------------
    def advance(self, *, s: float = 0.0, ms: float = 0.0) -> int:
        self.now_ns += int(s * S + ms * MS)
        return self.now_ns

    def record(self, process: str, type_: str, f: str, value: Any = None) -> Op:
        self.now_ns += self.step_ns
        op = {"index": -1, "time_ns": self.now_ns, "process": process, "type": type_, "f": f, "value": value}
        self.ops.append(op)
        return op

    def invoke(self, process: str, f: str, value: Any) -> Op:
        return self.record(process, "invoke", f, value)

    def respond(self, process: str, f: str, type_: str = "ok", value: Any = None) -> Op:
        return self.record(process, type_, f, {} if value is None else value)

    # -- agents -------------------------------------------------------------------------------------
    def enqueue(
        self,
        process: str,
        tids: Iterable[str],
        *,
        prio: int = 2,
        max_retries: int = 3,
        outcome: str | None = "ok",
        due_ns: int | None = None,
        poison: Iterable[str] = (),
    ) -> None:
        """outcome None: the producer died before the answer (no completion record)."""
        tasks = [[tid, prio, max_retries] for tid in tids]
        value: dict[str, Any] = {"tasks": tasks, "due_ns": self.now_ns if due_ns is None else due_ns}
        if poison:
            value["poison"] = list(poison)
        self.invoke(process, "enqueue", value)
        if outcome is not None:
            self.respond(process, "enqueue", outcome, {} if outcome == "ok" else {"error": "synthetic"})

    def deliver(self, process: str, tasks: Sequence[DeliveredTask], *, outcome: str | None = "ok") -> None:
        self.invoke(process, "deliver", {})
        if outcome == "ok":
            self.respond(process, "deliver", "ok", {"tasks": [list(task) for task in tasks]})
        elif outcome is not None:
            self.respond(process, "deliver", outcome, {"error": "synthetic"})

    def deliver_invoke(self, process: str) -> None:
        """Start a read; finish it with deliver_ok (so other records can fall in between)."""
        self.invoke(process, "deliver", {})

    def deliver_ok(self, process: str, tasks: Sequence[DeliveredTask]) -> None:
        self.respond(process, "deliver", "ok", {"tasks": [list(task) for task in tasks]})

    def complete(
        self, process: str, tids: Sequence[str], *, refused: Sequence[str] = (), outcome: str | None = "ok"
    ) -> None:
        self.invoke(process, "complete", {"tasks": list(tids)})
        if outcome == "ok":
            self.respond(process, "complete", "ok", {"refused": list(refused)})
        elif outcome is not None:
            self.respond(process, "complete", outcome, {"error": "synthetic"})

    def fail(
        self,
        process: str,
        tasks: Sequence[tuple[str, int] | tuple[str, int, str]],
        outcomes: Sequence[str] | str | None = "retried",
    ) -> None:
        """outcomes: one per task, one for all, "info" (answer lost) or None (no completion record)."""
        value = [[task[0], task[1], task[2] if len(task) > 2 else "boom"] for task in tasks]  # type: ignore[misc]
        self.invoke(process, "fail", {"tasks": value})
        if outcomes is None:
            return
        if outcomes in ("info", "fail"):
            self.respond(process, "fail", str(outcomes), {"error": "synthetic"})
            return
        listed = [outcomes] * len(tasks) if isinstance(outcomes, str) else list(outcomes)
        self.respond(process, "fail", "ok", {"outcomes": listed})

    # -- hosted workers (harness.hosted.handler: each start and finish is an invoke and its reply at once)
    def _paired(self, lane: str, f: str, invoke_value: Any, ok_value: Any) -> None:
        self.now_ns += self.step_ns
        for type_, value in (("invoke", invoke_value), ("ok", ok_value)):
            op = {"index": -1, "time_ns": self.now_ns, "process": lane, "type": type_, "f": f, "value": value}
            self.ops.append(op)

    def start(self, lane: str, tid: str, *, prio: int = 2, attempt: int | None = 0, deliveries: int | None = 1) -> None:
        self._paired(lane, "deliver", {}, {"tasks": [[tid, prio, attempt, deliveries]]})

    def finish(self, lane: str, tid: str, *, error: str | None = None, attempt: int = 0) -> None:
        if error is None:
            self._paired(lane, "complete", {"tasks": [tid]}, {"refused": []})
        else:
            self._paired(lane, "fail", {"tasks": [[tid, attempt, error]]}, {"outcomes": ["raised"]})

    # -- nemesis and runner -------------------------------------------------------------------------
    def fault(
        self, kind: str, target: str, *, held: Sequence[str] = (), ends: bool = True, process: str = "nemesis"
    ) -> None:
        """A fault; ends=False leaves it active until end_fault (pause, Redis down)."""
        self.invoke(process, "fault", {"kind": kind, "target": target, "held": list(held)})
        if ends:
            self.respond(process, "fault")

    def end_fault(self, *, process: str = "nemesis", outcome: str = "ok", restarted: str | None = None) -> None:
        """End the fault; `restarted` names the replacement of a killed worker, as the nemesis does."""
        value = {"restarted": restarted} if restarted else {}
        self.respond(process, "fault", outcome, value if outcome == "ok" else {"error": "synthetic"})

    def kill(self, target: str, *, held: Sequence[str] = ()) -> None:
        self.fault("kill", target, held=held)

    def pause(self, target: str, *, held: Sequence[str] = ()) -> None:
        self.fault("pause", target, held=held, ends=False)

    def resume(self) -> None:
        self.end_fault()

    def exit(self, process: str, code: int = -9) -> None:
        self.record(process, "info", "exit", {"code": code})

    def phase(self, name: str) -> None:
        self.record("runner", "ok", "phase", {"name": name})

    def final(
        self,
        *,
        ready: Sequence[tuple[str, int]] = (),
        pending: Sequence[tuple[str, int, str]] = (),
        delayed: Sequence[str] = (),
        dead: Sequence[tuple[str, str, int, int]] = (),
        acked_not_deleted: Sequence[str] = (),
        foreign: int = 0,
    ) -> None:
        value = {
            "ready": [list(x) for x in ready], "pending": [list(x) for x in pending], "delayed": list(delayed),
            "dead": [list(x) for x in dead], "acked_not_deleted": list(acked_not_deleted), "foreign": foreign,
            "stats": {},
        }  # fmt: skip
        self.record("runner", "ok", "final", value)

    # -- result -------------------------------------------------------------------------------------
    def history(self) -> list[Op]:
        journals: dict[str, list[Op]] = {}
        for op in copy.deepcopy(self.ops):
            journals.setdefault(op["process"].split("#")[0].split(".")[0], []).append(op)
        return merge(journals.values())


def run_task(h: HistoryBuilder, tid: str, *, prio: int = 2, producer: str = "p0", consumer: str = "c0") -> None:
    """One task's happy path: enqueued, delivered once, completed."""
    h.enqueue(producer, [tid], prio=prio)
    h.deliver(consumer, [(tid, prio, 0, 1)])
    h.complete(consumer, [tid])


def judge(
    checker: Callable[[HistoryIndex, CheckContext], CheckResult], h: HistoryBuilder, **context: Any
) -> CheckResult:
    """Run one checker on the builder's history; keyword arguments go to CheckContext, `expect` included."""
    return checker(HistoryIndex.build(h.history()), CheckContext(**context))
