"""How far the consumers were behind, over time: unseen tasks and realtime lag, from a history.

Two series for the plots (after Jepsen's kafka workload):

    unseen     tasks enqueued ok and not yet completed (nor dead-lettered), split by where they
               were: ready (in the queue), held (delivered, not settled yet) or delayed (failed,
               waiting for their retry). A task counts from its enqueue's answer until its first
               accepted completion or its dead letter; what is left at the end was never served.
    lag        per consumer slot, at each read: how long ago the oldest task it had not yet been
               able to see was enqueued. Jepsen's definition, with one log per priority stream:
               a consumer's position in a stream is the newest task (in enqueue order) any of its
               reads returned as a first delivery (a retry or a reclaimed task comes from elsewhere
               than the stream's tail), and a read that returned nothing had seen everything acknowledged
               before it began; the lag of a read is the time since the task after that position
               was acknowledged (0 when there is none), the worst over the streams it has seen.
               A new incarnation of a slot starts with no positions, as a new process does.

Times are seconds since the load phase began. Pure: reads a HistoryIndex and the raw history.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from harness.checkers.index import HistoryIndex
from harness.history import INVOKE, OK, Op

UNSEEN_STATES: Final = ("ready", "held", "delayed")
SAMPLES: Final = 400
_DONE: Final = "done"


@dataclass(frozen=True, slots=True)
class Unseen:
    t_s: list[float]
    counts: dict[str, list[int]]  # state -> count at each t_s


@dataclass(slots=True)
class Lag:
    """Per consumer slot: read times and the lag of each read, in seconds."""

    t_s: dict[str, list[float]] = field(default_factory=dict)
    lag_s: dict[str, list[float]] = field(default_factory=dict)

    def worst(self) -> tuple[str, float, float] | None:
        """(slot, time, lag) of the worst read, or None without reads."""
        best: tuple[str, float, float] | None = None
        for slot, lags in self.lag_s.items():
            for t, lag in zip(self.t_s[slot], lags, strict=True):
                if best is None or lag > best[2]:
                    best = (slot, t, lag)
        return best


def load_start_ns(index: HistoryIndex, history: list[Op]) -> int:
    return index.phases.get("load", history[0]["time_ns"] if history else 0)


def unseen_over_time(index: HistoryIndex, t0_ns: int, *, samples: int = SAMPLES) -> Unseen:
    """Counts of unseen tasks by state, sampled evenly from the load start to the history's end."""
    starts: dict[str, list[int]] = {state: [] for state in UNSEEN_STATES}
    ends: dict[str, list[int]] = {state: [] for state in UNSEEN_STATES}
    for tid, enqueue in index.enqueues.items():
        if enqueue.ok_ns is not None:
            _walk(_task_events(index, tid, enqueue.ok_ns), starts, ends)
    end_ns = max(index.end_ns, t0_ns + 1)
    grid = np.linspace(t0_ns, end_ns, samples, dtype=np.float64)
    counts = {}
    for state in UNSEEN_STATES:
        opened = np.sort(np.asarray(starts[state], dtype=np.float64))
        closed = np.sort(np.asarray(ends[state], dtype=np.float64))
        now = np.searchsorted(opened, grid, side="right") - np.searchsorted(closed, grid, side="right")
        counts[state] = [int(n) for n in now]
    return Unseen(t_s=[round((t - t0_ns) / 1e9, 4) for t in grid], counts=counts)


def _task_events(index: HistoryIndex, tid: str, ok_ns: int) -> list[tuple[int, str]]:
    deliveries, completions = index.deliveries.get(tid, ()), index.completions.get(tid, ())
    if len(deliveries) == 1 and tid not in index.failures and len(completions) == 1:
        # Most tasks of a run: delivered once, completed once, never failed (no sort needed).
        done = completions[0]
        held = deliveries[0].ok_ns
        if done.outcome == OK and done.done_ns and ok_ns <= held <= done.done_ns:
            return [(ok_ns, "ready"), (held, "held"), (done.done_ns, _DONE)]
    events = [(d.ok_ns, "held") for d in deliveries]
    if not deliveries or deliveries[0].ok_ns >= ok_ns:  # a blocking read may answer before the enqueue does
        events.append((ok_ns, "ready"))
    events += [(c.done_ns, _DONE) for c in index.completions.get(tid, ()) if c.outcome == OK and c.done_ns]
    for failure in index.failures.get(tid, ()):
        if failure.done_ns is not None and failure.outcome in ("retried", "dead"):
            events.append((failure.done_ns, "delayed" if failure.outcome == "retried" else _DONE))
    events.sort()
    return events


def _walk(events: list[tuple[int, str]], starts: dict[str, list[int]], ends: dict[str, list[int]]) -> None:
    """One task's state changes, until it is done; a task never done stays in its last state."""
    state = ""
    for time_ns, new in events:
        if new == state:
            continue
        if state:
            ends[state].append(time_ns)
        if new == _DONE:
            return
        starts[new].append(time_ns)
        state = new


def realtime_lag(index: HistoryIndex, history: list[Op], t0_ns: int) -> Lag:
    """Jepsen's realtime lag of every read, per consumer slot (see the module docstring)."""
    streams = _streams(index)
    positions: dict[str, dict[int, int]] = {}  # process -> prio -> newest position seen
    lag = Lag()
    for read_invoke_ns, process, returned, tasks in _reads(index, history, streams):
        seen = positions.setdefault(process, {})
        if returned:
            for prio, position in tasks:
                seen[prio] = max(seen.get(prio, -1), position)
        else:  # nothing ready: everything acknowledged before the read began had been handed out
            for prio, (ok_times, _) in streams.items():
                seen[prio] = max(seen.get(prio, -1), bisect_left(ok_times, read_invoke_ns) - 1)
        worst = 0
        for prio, position in seen.items():
            ok_times = streams[prio][0]
            if position + 1 < len(ok_times):
                worst = max(worst, read_invoke_ns - ok_times[position + 1])
        slot = process.split("#")[0]
        lag.t_s.setdefault(slot, []).append(round((read_invoke_ns - t0_ns) / 1e9, 4))
        lag.lag_s.setdefault(slot, []).append(round(worst / 1e9, 4))
    return lag


Streams = dict[int, tuple[list[int], dict[str, int]]]


def _streams(index: HistoryIndex) -> Streams:
    """Per priority: enqueue-ok times in stream order, and each task's position in it.

    Stream order is approximated by the enqueue's answer time, then by the order the index met the
    tasks (a batch's tasks as listed): a stable sort of index.enqueues, which is in that order.
    """
    keyed: dict[int, list[tuple[int, str]]] = {}
    for tid, enqueue in index.enqueues.items():
        if enqueue.ok_ns is not None:
            keyed.setdefault(enqueue.prio, []).append((enqueue.ok_ns, tid))
    streams = {}
    for prio, rows in keyed.items():
        rows.sort(key=lambda row: row[0])
        streams[prio] = ([row[0] for row in rows], {row[1]: n for n, row in enumerate(rows)})
    return streams


def _reads(
    index: HistoryIndex, history: list[Op], streams: Streams
) -> list[tuple[int, str, bool, list[tuple[int, int]]]]:
    """Every read answered ok, by invoke time: (invoke_ns, process, returned any task, [(prio, position), ...]).

    Reads that returned tasks come from the index; the empty ones (which the index does not keep, and
    which say a consumer had caught up) from one pass over the history's deliver records.
    """
    reads = []
    for read in index.reads:
        seen = []
        for delivery in read.tasks:
            if delivery.attempt == 0 and delivery.deliveries == 1:  # a retry or a reclaim is not the tail
                position = streams.get(delivery.prio, ([], {}))[1].get(delivery.tid)
                if position is not None:
                    seen.append((delivery.prio, position))
        reads.append((read.invoke_ns, read.process, True, seen))
    reads += [(invoke_ns, process, False, []) for invoke_ns, process in _empty_reads(history)]
    reads.sort(key=lambda read: read[0])
    return reads


def _empty_reads(history: list[Op]) -> list[tuple[int, str]]:
    """(invoke_ns, process) of every deliver answered ok with nothing."""
    invoked: dict[str, int] = {}
    empty = []
    for op in history:
        if op["f"] != "deliver":
            continue
        if op["type"] == INVOKE:
            invoked[op["process"]] = op["time_ns"]
        elif op["type"] == OK and not (op["value"] or {}).get("tasks"):
            invoke_ns = invoked.pop(op["process"], None)
            if invoke_ns is not None:
                empty.append((invoke_ns, op["process"]))
        else:
            invoked.pop(op["process"], None)
    return empty
