"""The history index: one pass over a merged history into per-task timelines.

It owns how the raw history is read: pairing each invoke with its completion (an
invoke whose process never completed it counts as "info"), the task identity (a
task is keyed by the tid in its payload, so a queue that hands it out under a new id
is still one task), and the typed records every checker reads. Checkers never walk
the raw history; they read a HistoryIndex.

Records are NamedTuples built once per task event and shared: a Delivery sits both
in its task's timeline and in the Read that returned it.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from harness.history import FAIL, INFO, INVOKE, OK, Op

REFUSED: Final = "refused"
# Failed attempts that count against a task's retry budget: the queue's answer to a fail ("retried",
# "dead"), or, in hosted runs, a handler that raised (the library decides what follows).
COUNTED_FAILURES: Final = frozenset({"retried", "dead", "raised"})
_ANSWERED_FAILURES: Final = frozenset({"retried", "dead"})
OPEN: Final = "open"  # a fault whose end was never journaled

CRASH_FAULTS: Final = frozenset({"kill", "term", "kill-main", "kill-child"})
PAUSE_FAULTS: Final = frozenset({"pause", "stop"})
GRACEFUL_STOPS: Final = frozenset({"term"})  # a worker told to stop, which hands back what it holds
# Network faults that can keep a client from Redis long enough for its lease to lapse (added latency
# of a fraction of a second cannot).
NETWORK_CUTS: Final = frozenset({"slow-replies", "blackhole", "partition", "drop-replies", "reset"})
WORKER_FAULTS: Final = CRASH_FAULTS | PAUSE_FAULTS
# Faults after which Redis may have lost or rolled back state (how much: Fault.persistence says).
# Stalls (redis-pause, client-pause, debug-sleep) and client-kill keep every acknowledged write.
_REDIS_FAULT_NAMES: Final = frozenset({"redis-kill", "redis-restart", "restart", "flushall"})
# Failovers that may promote a replica without the primary's last writes: a rollback too.
TOPOLOGY_LOSS_KINDS: Final = frozenset({"failover", "split-brain", "promote-lagging", "shard-kill"})
_NOT_AGENTS: Final = ("nemesis", "runner")
_NO_EXTRA: Final = (None, None, None)  # a delivered task of an older history: no budget, digest, errors
# Builds a NamedTuple from a tuple without the Python-level __new__: half the cost, per task event.
_new: Final = tuple.__new__


class Enqueue(NamedTuple):
    invoke_ns: int
    ok_ns: int | None  # completion time when the enqueue is known to have happened
    outcome: str  # ok / fail / info
    prio: int
    max_retries: int
    due_ns: int | None


class Delivery(NamedTuple):
    tid: str  # the task (payload tid)
    delivered_tid: str  # the id the queue handed out; differs when it re-added the task under a new id
    process: str
    invoke_ns: int
    ok_ns: int
    prio: int
    attempt: int
    deliveries: int
    # Journaled by newer agents (harness.history: delivered task elements 5-7); None in older histories.
    max_retries: int | None
    digest: str | None  # a short hash of the payload
    errors: int | None  # attempt errors stored with the task, when the queue says

    @property
    def is_first(self) -> bool:
        return self.attempt == 0 and self.deliveries == 1


class FirstDelivery(NamedTuple):
    """A task whose enqueue was acknowledged, with the read that first returned it (flat, so the
    priority and order sweeps never touch the scattered Delivery records)."""

    tid: str
    prio: int
    enqueue_invoke_ns: int
    enqueue_ok_ns: int
    read_invoke_ns: int
    read_ok_ns: int
    is_first: bool  # attempt 0, handed out once: else the true first read was lost with its reader
    # The process that read it: two reads by two processes can carry the same times to the nanosecond
    # (seen in a soak), and only the reader tells them apart.
    reader: str


class Completion(NamedTuple):
    process: str
    invoke_ns: int
    done_ns: int | None
    outcome: str  # ok / refused / info / fail


class Failure(NamedTuple):
    process: str
    invoke_ns: int
    done_ns: int | None
    attempt: int
    error: str
    outcome: str  # retried / dead / refused / info / fail


class Read(NamedTuple):
    """One deliver operation that returned tasks."""

    process: str
    invoke_ns: int
    ok_ns: int
    tasks: list[Delivery]


class Fault(NamedTuple):
    process: str  # the nemesis process that journaled it
    kind: str
    target: str
    start_ns: int
    end_ns: int | None  # None: never ended inside the history
    held: tuple[str, ...]
    outcome: str  # ok / info (could not be applied) / open
    # For faults that may lose Redis state: the server's persistence setting ("aof-always", ...,
    # "flushed"), and for RDB the time up to which writes were in the last snapshot.
    persistence: str = ""
    durable_until_ns: int | None = None


class Exit(NamedTuple):
    process: str
    time_ns: int
    code: int


class DeadEntry(NamedTuple):
    reason: str
    attempts: int
    errors: int


@dataclass(slots=True)
class FinalState:
    ready: dict[str, int] = field(default_factory=dict)
    pending: dict[str, tuple[int, str]] = field(default_factory=dict)
    delayed: list[str] = field(default_factory=list)
    dead: dict[str, DeadEntry] = field(default_factory=dict)
    acked_not_deleted: list[str] = field(default_factory=list)
    foreign: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    # Tasks the final read found more than once (twice in one place, or in two places): stored twice.
    repeated: list[str] = field(default_factory=list)
    left: frozenset[str] = field(init=False)  # still queued after the drain: ready, pending or delayed

    def __post_init__(self) -> None:
        self.left = frozenset(self.ready) | frozenset(self.pending) | frozenset(self.delayed)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while millions of small tuples are made.

    Indexing and judging create no reference cycles, but each allocation burst makes the collector
    walk the whole history (a million dicts) again and again: pausing it makes indexing ~5x faster.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def is_redis_fault(kind: str) -> bool:
    """A fault that may lose or roll back Redis state: a crash, a flush, or a failover to a replica."""
    return kind in _REDIS_FAULT_NAMES or kind in TOPOLOGY_LOSS_KINDS


def targets(target: str, process: str) -> bool:
    """Whether a fault aimed at `target` ("consumer-2") hits the logical `process` ("consumer-2#3")."""
    if process == target:
        return True
    return process.startswith(target) and process[len(target)] in "#."


@dataclass(slots=True)
class HistoryIndex:
    """Per-task timelines of one run, keyed by the task's payload tid."""

    enqueues: dict[str, Enqueue] = field(default_factory=dict)
    deliveries: dict[str, list[Delivery]] = field(default_factory=dict)  # in order of ok time
    completions: dict[str, list[Completion]] = field(default_factory=dict)
    failures: dict[str, list[Failure]] = field(default_factory=dict)
    reads: list[Read] = field(default_factory=list)
    unknown_reads_ns: list[int] = field(default_factory=list)  # invokes of reads whose result was never seen
    faults: list[Fault] = field(default_factory=list)  # by start time
    exits: list[Exit] = field(default_factory=list)
    phases: dict[str, int] = field(default_factory=dict)
    final: FinalState | None = None
    aliases: dict[str, str] = field(default_factory=dict)  # delivered id -> payload tid, where they differ
    poison: set[str] = field(default_factory=set)  # tasks planted to crash the worker that runs them
    # Agent operations (not nemesis, not runner), in invoke order: for "was anything running then?".
    agent_invoke_ns: list[int] = field(default_factory=list)
    agent_done_ns: list[int] = field(default_factory=list)
    op_count: int = 0
    end_ns: int = 0
    # Each task's first delivery (in order of ok time) with its acknowledged enqueue, for the priority
    # and order sweeps; and the tids delivered or completed that were never enqueued at all. Both are
    # gathered while indexing, when the task's enqueue record is still in the CPU cache.
    first_deliveries: list[FirstDelivery] = field(default_factory=list)
    never_enqueued: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, history: list[Op], *, read_window_ns: int = 0) -> HistoryIndex:
        """`read_window_ns`, for hosted runs: a handler journals its start after the library read the
        task, by up to this much, so a start at s is indexed as a read over [s - window, s]."""
        index = cls()
        with paused_gc():
            _Builder(index, read_window_ns).run(history)
        return index

    def resolve(self, tid: str) -> str:
        return self.aliases.get(tid, tid)

    def fault_end_ns(self, fault: Fault) -> int:
        return self.end_ns if fault.end_ns is None else fault.end_ns

    def is_dead(self, tid: str) -> bool:
        """Dead-lettered: in the final DLQ; without a final state, as the queue answered a failed attempt."""
        if self.final is not None:
            return tid in self.final.dead
        return any(f.outcome == "dead" for f in self.failures.get(tid, ()))


class _Builder:
    """Fills a HistoryIndex from a merged history in one pass."""

    __slots__ = (
        "_handlers", "_index", "_last_heard", "_open_faults", "_pauses", "_read_window_ns", "_silences", "_stops",
        "_unmatched",
    )  # fmt: skip

    def __init__(self, index: HistoryIndex, read_window_ns: int = 0) -> None:
        self._index = index
        self._read_window_ns = read_window_ns
        self._handlers = {
            "enqueue": self._enqueue,
            "deliver": self._deliver,
            "complete": self._complete,
            "fail": self._fail,
        }
        self._open_faults: list[Op] = []
        # Hosted runs: faults that can delay a start, [target ("" = all), start ns, end ns or None, invoke op].
        self._pauses: list[list[Any]] = []
        # Hosted runs: graceful stops, [start ns, end ns or None, invoke op]. A stopping worker hands back
        # what it read and did not start as fresh entries at the tail; the harness never saw that read, so
        # a task stored before a stop ended and first seen after it began is not known to be a first delivery.
        self._stops: list[list[Any]] = []
        # First deliveries and completions whose enqueue was not (yet) indexed: settled at the end.
        self._unmatched: list[Delivery | str] = []
        # Hosted runs: each worker process's latest journal entry (its lanes are PROCESS.PID.N), and its
        # latest silence longer than the read window, [last heard before it, first heard after it].
        self._last_heard: dict[str, int] = {}
        self._silences: dict[str, tuple[int, int]] = {}

    def run(self, history: list[Op]) -> None:
        index = self._index
        open_ops: dict[str, tuple[Op, int]] = {}
        invoked_ns, done_ns, handlers = index.agent_invoke_ns, index.agent_done_ns, self._handlers
        # The hottest loop of the harness: one iteration per operation, so it stays inline.
        for op in history:
            process = op["process"]
            if op["f"] == "fault":
                self._fault_record(op)
                continue
            if op["type"] == INVOKE:
                if process in open_ops:  # a second invoke: the first never completed
                    self._abandon(process, open_ops)
                position = -1
                if not process.startswith(_NOT_AGENTS):
                    position = len(invoked_ns)
                    invoked_ns.append(op["time_ns"])
                    done_ns.append(op["time_ns"])  # never completed: instantaneous, its process is gone
                open_ops[process] = (op, position)
                continue
            pending = open_ops.get(process)
            if pending is None or pending[0]["f"] != op["f"]:
                self._standalone(op, open_ops)
                continue
            del open_ops[process]
            if pending[1] >= 0:
                done_ns[pending[1]] = op["time_ns"]
            handler = handlers.get(pending[0]["f"])
            if handler is not None:
                handler(pending[0], op)
        self._finish(history, open_ops)

    def _finish(self, history: list[Op], open_ops: dict[str, tuple[Op, int]]) -> None:
        index = self._index
        for process in list(open_ops):
            self._abandon(process, open_ops)
        for invoke in self._open_faults:
            self._fault(invoke, None)
        self._match_late()
        index.faults.sort(key=lambda fault: fault.start_ns)
        index.unknown_reads_ns.sort()
        index.op_count = len(history)
        index.end_ns = history[-1]["time_ns"] if history else 0

    def _match_late(self) -> None:
        """Enqueues answered after the task was delivered, or never answered: now they are all indexed."""
        index, seen = self._index, set()
        for item in self._unmatched:
            tid = item if isinstance(item, str) else item.tid
            enqueue = index.enqueues.get(tid)
            if enqueue is None and tid not in seen:
                seen.add(tid)
                index.never_enqueued.append(tid)
            elif enqueue is not None and enqueue.ok_ns is not None and not isinstance(item, str):
                index.first_deliveries.append(_first_delivery(enqueue, item))

    def _abandon(self, process: str, open_ops: dict[str, tuple[Op, int]]) -> None:
        """The process will never complete its open invoke: it is judged as info."""
        invoke, _ = open_ops.pop(process)
        handler = self._handlers.get(invoke["f"])
        if handler is not None:
            handler(invoke, None)

    def _standalone(self, op: Op, open_ops: dict[str, tuple[Op, int]]) -> None:
        f, index = op["f"], self._index
        if f == "exit":
            index.exits.append(Exit(op["process"], op["time_ns"], int((op.get("value") or {}).get("code", -1))))
            if op["process"] in open_ops:
                self._abandon(op["process"], open_ops)
        elif f == "phase":
            index.phases.setdefault(str(op["value"]["name"]), op["time_ns"])
        elif f == "final":
            index.final = self._final(op["value"])

    def _enqueue(self, invoke: Op, completion: Op | None) -> None:
        value = invoke["value"]
        outcome = INFO if completion is None else completion["type"]
        ok_ns = completion["time_ns"] if completion is not None and outcome == OK else None
        invoke_ns, due_ns = invoke["time_ns"], value.get("due_ns")
        enqueues = self._index.enqueues
        self._index.poison.update(value.get("poison") or ())
        for tid, prio, max_retries in value["tasks"]:
            record = _new(Enqueue, (invoke_ns, ok_ns, outcome, prio, max_retries, due_ns))
            enqueues[tid] = _merge_enqueues(enqueues[tid], record) if tid in enqueues else record

    def _deliver(self, invoke: Op, completion: Op | None) -> None:
        index = self._index
        if completion is None or completion["type"] != OK:
            if completion is None or completion["type"] == INFO:
                index.unknown_reads_ns.append(invoke["time_ns"])
            return
        process, invoke_ns, ok_ns = invoke["process"], invoke["time_ns"], completion["time_ns"]
        if self._read_window_ns and invoke_ns == ok_ns:  # a hosted handler's start: the read came before it
            self._heard(process, ok_ns)
            invoke_ns = self._read_start(process, ok_ns)
        deliveries, aliases, enqueues = index.deliveries, index.aliases, index.enqueues
        batch: list[Delivery] = []
        for entry in completion["value"]["tasks"]:
            delivered = entry[0]
            tid = entry[4] if len(entry) > 4 else delivered
            if tid != delivered:
                aliases[delivered] = tid
            timeline = deliveries.get(tid)
            attempt, count = entry[2], entry[3]
            if attempt is None or count is None:  # a hosted library that does not report them: count here
                attempt, count = self._counted(tid, timeline, attempt, count)
            extra = entry[5:8] if len(entry) > 7 else _NO_EXTRA
            record = _new(Delivery, (tid, delivered, process, invoke_ns, ok_ns, entry[1], attempt, count, *extra))
            batch.append(record)
            if timeline is not None:
                timeline.append(record)
                continue
            deliveries[tid] = [record]
            enqueue = enqueues.get(tid)
            if enqueue is not None and enqueue.ok_ns is not None:
                index.first_deliveries.append(self._first_delivery(enqueue, record))
            else:
                self._unmatched.append(record)
        if batch:
            index.reads.append(Read(process, invoke_ns, ok_ns, batch))

    def _counted(
        self, tid: str, timeline: list[Delivery] | None, attempt: int | None, count: int | None
    ) -> tuple[int, int]:
        """Attempt (failed attempts before this one) and delivery count, as far as the history shows them."""
        if attempt is None:
            attempt = counted_failures(self._index.failures.get(tid, ()))
        if count is None:
            count = 1 + (len(timeline) if timeline else 0)
        return attempt, count

    def _complete(self, invoke: Op, completion: Op | None) -> None:
        index = self._index
        kind = INFO if completion is None else completion["type"]
        done_ns = None if completion is None else completion["time_ns"]
        refused: set[str] = set(completion["value"].get("refused") or ()) if kind == OK and completion else set()
        process, invoke_ns, aliases = invoke["process"], invoke["time_ns"], index.aliases
        if self._read_window_ns:
            self._heard(process, invoke_ns)
        completions = index.completions
        shared = _new(Completion, (process, invoke_ns, done_ns, kind))  # one record for the whole batch
        for delivered in invoke["value"]["tasks"]:
            record = _new(Completion, (process, invoke_ns, done_ns, REFUSED)) if delivered in refused else shared
            tid = aliases.get(delivered, delivered) if aliases else delivered  # ids are nearly always kept
            timeline = completions.get(tid)
            if timeline is not None:
                timeline.append(record)
                continue
            completions[tid] = [record]
            if tid not in index.deliveries and tid not in index.enqueues:
                self._unmatched.append(tid)

    def _fail(self, invoke: Op, completion: Op | None) -> None:
        index = self._index
        kind = INFO if completion is None else completion["type"]
        done_ns = None if completion is None else completion["time_ns"]
        tasks = invoke["value"]["tasks"]
        outcomes: list[str] = [kind] * len(tasks)
        if kind == OK and completion is not None:
            outcomes = list(completion["value"].get("outcomes") or outcomes)
        process, invoke_ns = invoke["process"], invoke["time_ns"]
        if self._read_window_ns:
            self._heard(process, invoke_ns)
        for (delivered, attempt, error), outcome in zip(tasks, outcomes):
            tid = index.aliases.get(delivered, delivered)
            index.failures.setdefault(tid, []).append(Failure(process, invoke_ns, done_ns, attempt, error, outcome))

    def _first_delivery(self, enqueue: Enqueue, record: Delivery) -> FirstDelivery:
        first = _first_delivery(enqueue, record)
        stored_ns = enqueue.ok_ns if enqueue.ok_ns is not None else record.ok_ns
        if first.is_first and any(
            start_ns <= record.ok_ns and (end_ns is None or stored_ns <= end_ns) for start_ns, end_ns, _ in self._stops
        ):
            return first._replace(is_first=False)  # maybe handed back by a stopping worker
        return first

    def _heard(self, lane: str, time_ns: int) -> None:
        """A hosted worker process journaled something: it was running then (and, after a silence longer
        than the read window, it may have been stopped by the machine until then)."""
        worker = lane.rsplit(".", 1)[0]
        before = self._last_heard.get(worker)
        if before is not None and time_ns - before > self._read_window_ns:
            self._silences[worker] = (before, time_ns)
        self._last_heard[worker] = time_ns

    def _read_start(self, process: str, ok_ns: int) -> int:
        """When the library may have read a task whose handler started at ok_ns: up to the read window
        before; for the starts just after the worker process was silent longer than that, up to the read
        window before its silence (a process the machine did not run for a while, 424 ms seen in a soak,
        read them before it went quiet); and for a worker paused, or held by a Redis or network fault,
        just before the start, before that fault (a prefetched or popped task waits it out)."""
        window_ns = self._read_window_ns
        invoke_ns = ok_ns - window_ns
        silence = self._silences.get(process.rsplit(".", 1)[0])
        if silence is not None and ok_ns - silence[1] <= window_ns:
            invoke_ns = min(invoke_ns, silence[0] - window_ns)
        for target, start_ns, end_ns, op in self._pauses:
            held_until_ns = end_ns
            if end_ns is not None and op["value"].get("kind") in NETWORK_CUTS:
                # The reply to a read a cut held comes after the cut, as late again as the cut lasted (TCP
                # doubles the wait between its retransmissions).
                held_until_ns = end_ns + (end_ns - start_ns)
            if (
                start_ns <= ok_ns
                and (held_until_ns is None or held_until_ns >= invoke_ns)
                and (not target or targets(target, process))
            ):
                invoke_ns = min(invoke_ns, start_ns - self._read_window_ns)
        return invoke_ns

    def _fault_record(self, op: Op) -> None:
        """The nemesis journals each fault under a process of its own (nemesis-N); histories with
        overlapping faults under one process name are paired by _ended_fault's rules."""
        if op["type"] == INVOKE:
            self._open_faults.append(op)
            value = op.get("value") or {}
            kind = value.get("kind")
            if self._read_window_ns and kind in GRACEFUL_STOPS:
                self._stops.append([op["time_ns"], None, op])
            if self._read_window_ns and (kind in PAUSE_FAULTS or kind not in WORKER_FAULTS):
                # A paused worker, or a Redis or network fault that holds every client: either delays a start
                # the library had already read. "" = every process.
                target = str(value.get("target", "")) if kind in PAUSE_FAULTS else ""
                self._pauses.append([target, op["time_ns"], None, op])
            return
        invoke = _ended_fault(self._open_faults, op)
        if invoke is not None:
            self._open_faults.remove(invoke)
            self._fault(invoke, op)
            for pause in (*self._pauses, *self._stops):
                if pause[-1] is invoke:
                    pause[-2] = op["time_ns"]

    def _fault(self, invoke: Op, completion: Op | None) -> None:
        index = self._index
        value = invoke["value"]
        outcome = OPEN if completion is None else completion["type"]
        end_ns = None if completion is None else completion["time_ns"]
        # Held when the fault began (the aim's look), and what the nemesis found once the victim stood still.
        after = (completion.get("value") or {}).get("held") if completion is not None else None
        held = tuple(dict.fromkeys(index.aliases.get(tid, tid) for tid in [*(value.get("held") or ()), *(after or ())]))
        durable_until_ns = value.get("durable_until_ns")
        fault = Fault(invoke["process"], str(value["kind"]), str(value.get("target") or ""), invoke["time_ns"],
                      end_ns, held, outcome, str(value.get("persistence") or ""),
                      None if durable_until_ns is None else int(durable_until_ns))  # fmt: skip
        index.faults.append(fault)

    def _final(self, value: dict[str, Any]) -> FinalState:
        resolve = self._index.resolve
        dead = value.get("dead") or ()
        found = [
            *(resolve(e[0]) for e in value.get("ready") or ()), *(resolve(e[0]) for e in value.get("pending") or ()),
            *(resolve(tid) for tid in value.get("delayed") or ()), *(resolve(e[0]) for e in dead),
        ]  # fmt: skip
        return FinalState(
            repeated=sorted(tid for tid, n in Counter(found).items() if n > 1),
            ready={resolve(entry[0]): entry[1] for entry in value.get("ready") or ()},
            pending={resolve(entry[0]): (entry[1], entry[2]) for entry in value.get("pending") or ()},
            delayed=[resolve(tid) for tid in value.get("delayed") or ()],
            dead={resolve(entry[0]): DeadEntry(str(entry[1]), int(entry[2]), int(entry[3])) for entry in dead},
            acked_not_deleted=[resolve(tid) for tid in value.get("acked_not_deleted") or ()],
            foreign=int(value.get("foreign") or 0),
            stats=dict(value.get("stats") or {}),
        )


def counted_failures(failures: Iterable[Failure]) -> int:
    """Failed attempts that counted against the budget. A queue's answer ("retried", "dead") counts once
    each; a hosted handler that raised counts once per attempt number: when its worker died before the
    library recorded the failure, the library ran the same attempt again, and it raised again."""
    answered = sum(1 for f in failures if f.outcome in _ANSWERED_FAILURES)
    raised = len({f.attempt for f in failures if f.outcome == "raised"})
    return answered + raised


def _first_delivery(enqueue: Enqueue, delivery: Delivery) -> FirstDelivery:
    return _new(FirstDelivery, (delivery.tid, enqueue.prio, enqueue.invoke_ns, enqueue.ok_ns, delivery.invoke_ns,
                                delivery.ok_ns, delivery.attempt == 0 and delivery.deliveries == 1,
                                delivery.process))  # fmt: skip


def _ended_fault(open_faults: list[Op], completion: Op) -> Op | None:
    """Which open fault a nemesis completion ends.

    The completion does not name its fault, so: a fault that could not be applied is answered at
    once (the latest); a restart names the replacement, whose slot is the victim's; any other end
    (a resume) belongs to the oldest open fault that does not restart its victim.
    """
    candidates = [f for f in open_faults if f["process"] == completion["process"]]
    if not candidates:
        return None
    if completion["type"] != OK:
        return candidates[-1]
    restarted = (completion.get("value") or {}).get("restarted")
    if restarted:
        slot = str(restarted).split("#")[0]
        matching = [f for f in candidates if str(f["value"].get("target", "")).split("#")[0] == slot]
    else:
        matching = [f for f in candidates if f["value"].get("kind") not in CRASH_FAULTS]
    return (matching or candidates)[0]


def _merge_enqueues(earlier: Enqueue, later: Enqueue) -> Enqueue:
    """The same tid enqueued twice (a producer retrying after info): it happened if either did."""
    rank = {OK: 0, INFO: 1, FAIL: 2}
    best = min(earlier, later, key=lambda record: rank.get(record.outcome, 3))
    return best._replace(invoke_ns=min(earlier.invoke_ns, later.invoke_ns))
