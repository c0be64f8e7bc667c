"""The delivery checker: every task known to be in the queue ran (or was dead-lettered), nothing ran
that was never sent, and a task that completed twice has an expired lease, a paused owner or a Redis
fault to show for it.

A task is known to be in the queue when its enqueue was acknowledged, or, for an enqueue whose answer
was lost, once it was seen delivered.

A Redis fault that may lose state (a kill, a flush) has a loss window: the writes acknowledged in it
may be gone after the fault, by the server's persistence setting. AOF always: none (every reply came
after its fsync). AOF everysec: the last 2 s before the kill (Redis fsyncs once a second and may
postpone a write up to 2 s). RDB: everything since the last snapshot. No persistence, or a flush:
everything before it. A lost task whose enqueue falls in a window is attributed to that fault
(`fault_windows`), and counted apart (`lost_in_fault_window`) when the scenario allows such loss.

A failover (harness/nemesis/topology.py: a killed primary, a manual promotion, a cluster node's
death) has a window too: from the nemesis's sync point (`durable_until_ns`: every write acknowledged
before it was on every replica) to the end of the failover. Acknowledged writes in it may be lost,
and acks in it may be rolled back (their tasks run again). A split brain's window runs from the cut
to the deposed primary's rejoining: what it acknowledged alone is discarded; those losses are
counted on their own (`lost_in_split_brain`). A whole cluster shard's death is judged like a crash,
by the nodes' persistence. A loss outside every window is a bug.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from itertools import chain, pairwise
from typing import Any

from harness.checkers._report import NS_PER_S, Examples
from harness.checkers.base import CheckContext, CheckResult
from harness.checkers.index import (
    CRASH_FAULTS,
    NETWORK_CUTS,
    PAUSE_FAULTS,
    TOPOLOGY_LOSS_KINDS,
    Completion,
    Delivery,
    Enqueue,
    Fault,
    HistoryIndex,
    is_redis_fault,
    targets,
)
from harness.history import INFO, OK

# How long before a kill acknowledged writes may be lost: under AOF everysec (Redis's documented bound),
# and when the history does not say the persistence setting (histories of older harness versions).
EVERYSEC_LEAD_NS = 2 * NS_PER_S
REDIS_WINDOW_LEAD_NS = NS_PER_S
# Redis faults that stall every client without losing state. A slot migration is one for the queue's
# commands: while its keys are split between two nodes they are answered TRYAGAIN, an ack waits it out,
# and a lease may lapse meanwhile (seen in a soak: cluster_resharding on taskq-worker).
REDIS_STALLS = frozenset({"redis-pause", "client-pause", "debug-sleep", "client-kill", "slot-migration"})
# Persistence settings under which a crash keeps nothing (a flush keeps nothing either).
_KEEPS_NOTHING = frozenset({"none", "flushed"})
# Topology faults that may lose acknowledged writes (harness/nemesis/topology.py); a slot migration
# moves keys with MIGRATE, synchronously: it has no window, any loss across one is a bug.
SPLIT_BRAIN = "split-brain"
# The persistence a failover journals: what survives is what the promoted replica had.
REPLICATED = "replicated"


@dataclass(slots=True)
class _Tally:
    enqueued_ok: int = 0
    enqueue_info: int = 0
    enqueue_fail: int = 0
    completed: int = 0
    dead: int = 0
    lost: int = 0
    lost_in_fault_window: int = 0
    lost_in_split_brain: int = 0
    stuck: int = 0
    unexpected: int = 0
    duplicated: int = 0
    duplicated_explained: int = 0
    duplicated_unexplained: int = 0
    recovered: int = 0
    re_executed: int = 0


@dataclass(frozen=True, slots=True)
class _LossWindow:
    fault: Fault
    start_ns: int
    end_ns: int
    lost: list[int]  # enqueue times (ns) of the acknowledged tasks lost in it


@dataclass(frozen=True, slots=True)
class _Windows:
    redis: list[_LossWindow]  # by end time: a task lost twice over was lost at the first
    redis_faults: list[Fault]  # those that may have rolled state back (a loss window)
    pauses: list[Fault]
    lease_ns: int
    # Hosted runs: every fault (a library's lease can outlive a stall or a cut only by renewal), the
    # library's own visibility timeout (None: it never redelivers by timeout), and whether it renews.
    faults: list[Fault]
    visibility_ns: int | None
    renews_lease: bool
    client_timeout_ns: int
    # Hosted runs: worker processes that died on their own, as (process or lane prefix, when): a poison
    # task ends its process as its handler starts (taskiq's manager then starts a new child, unseen by
    # the fleet), and the runner journals a worker's exit once it notices.
    deaths: list[tuple[str, int, str]]  # (process or lane prefix, when, how)


def check_delivery(index: HistoryIndex, context: CheckContext) -> CheckResult:
    tally, examples = _Tally(), Examples()
    windows = _windows(index, context)
    completions = index.completions
    plain = 0  # enqueued ok and completed exactly once: most tasks, so counted without a call
    for tid, enqueue in index.enqueues.items():
        done = completions.get(tid)
        if done is not None and len(done) == 1 and done[0].outcome == OK and enqueue.outcome == OK:
            plain += 1
        else:
            _judge_enqueued(index, context, windows, tid, enqueue, tally, examples)
    tally.enqueued_ok += plain
    tally.completed += plain
    _judge_unexpected(index, tally, examples)
    explain = _explain_hosted if context.hosted else _explain
    for tid, done in completions.items():
        if len(done) > 1:
            _judge_repeats(index, windows, tid, done, tally, examples, explain)
    tally.dead = len(index.final.dead) if index.final is not None else 0
    return _verdict(index, context, tally, examples, windows)


def _verdict(
    index: HistoryIndex, context: CheckContext, tally: _Tally, examples: Examples, windows: _Windows
) -> CheckResult:
    expect = context.expect
    broken = (
        tally.lost > expect.max_lost
        or tally.duplicated_unexplained > expect.max_unexplained_duplicates
        or tally.unexpected > expect.max_unexpected
    )
    valid: bool | None = not broken
    note = ""
    if index.final is None and tally.lost > expect.max_lost:
        # Without the final state a "lost" task may be dead or still queued: do not call it a loss.
        valid, note = None, "no final state: tasks counted lost may be dead-lettered or still queued"
    figures: dict[str, Any] = asdict(tally)
    if windows.redis:
        figures["fault_windows"] = [_window_figures(index, w) for w in windows.redis]
        note = "; ".join(filter(None, (note, _windows_note(index, context, windows))))
    return CheckResult(name="delivery", valid=valid, figures=figures, anomalies=examples.pick(), note=note)


def _since_load_s(index: HistoryIndex, ns: int) -> float:
    origin = index.phases.get("load", 0)
    return round(max(ns, 0) / NS_PER_S, 3) if not origin else round((max(ns, 0) - origin) / NS_PER_S, 3)


def _window_figures(index: HistoryIndex, window: _LossWindow) -> dict[str, Any]:
    """One Redis fault's loss window, times in seconds since the load began (negative: before it)."""
    fault = window.fault
    figures: dict[str, Any] = {
        "kind": fault.kind, "persistence": "flushed" if fault.kind == "flushall" else fault.persistence or "unknown",
        "at_s": _since_load_s(index, fault.start_ns), "ended_s": _since_load_s(index, window.end_ns),
        "window_from_s": "start" if window.start_ns == 0 else _since_load_s(index, window.start_ns),
        "lost": len(window.lost),
    }  # fmt: skip
    if window.lost:
        figures["lost_enqueued_s"] = [_since_load_s(index, min(window.lost)), _since_load_s(index, max(window.lost))]
    return figures


def _windows_note(index: HistoryIndex, context: CheckContext, windows: _Windows) -> str:
    hit = [w for w in windows.redis if w.lost]
    if not hit:
        return ""
    allowed = context.expect.loss_allowed_in_redis_fault_windows
    parts = []
    for window in hit:
        f = _window_figures(index, window)
        enqueued = f["lost_enqueued_s"]
        parts.append(
            f"{f['lost']} by {f['kind']} at {f['at_s']}s ({f['persistence']}; enqueued {enqueued[0]}-{enqueued[1]}s)"
        )
    total = sum(len(w.lost) for w in hit)
    return f"{total} lost in Redis fault windows{' (allowed)' if allowed else ''}: " + ", ".join(parts)


def loss_window(index: HistoryIndex, fault: Fault) -> tuple[int, int] | None:
    """When writes acknowledged before `fault` may have been lost by it: [start, end] ns, or None."""
    if fault.outcome == "info" or not is_redis_fault(fault.kind):
        return None
    end_ns = index.fault_end_ns(fault)
    persistence = "flushed" if fault.kind == "flushall" else fault.persistence
    if persistence == REPLICATED:
        # No sync point (the replicas never caught up before the strike): nothing is known to be safe.
        return (fault.durable_until_ns or 0), end_ns
    if persistence == "aof-always":
        return None
    if persistence in _KEEPS_NOTHING:
        return 0, end_ns
    if persistence == "aof-everysec":
        return fault.start_ns - EVERYSEC_LEAD_NS, end_ns
    if persistence == "rdb":
        return (fault.durable_until_ns or 0), end_ns
    return fault.start_ns - REDIS_WINDOW_LEAD_NS, end_ns


def _windows(index: HistoryIndex, context: CheckContext) -> _Windows:
    redis = []
    for fault in index.faults:
        window = loss_window(index, fault)
        if window is not None:
            redis.append(_LossWindow(fault, *window, lost=[]))
    redis.sort(key=lambda w: w.end_ns)
    visibility_s = context.promises.visibility_timeout_s
    return _Windows(
        redis=redis,
        redis_faults=[w.fault for w in redis],
        pauses=[f for f in index.faults if f.kind in PAUSE_FAULTS],
        lease_ns=int(context.pending_timeout_s * NS_PER_S),
        faults=[f for f in index.faults if f.outcome != "info"],
        visibility_ns=None if visibility_s is None else int(visibility_s * NS_PER_S),
        renews_lease=context.promises.renews_lease,
        client_timeout_ns=int(context.client_timeout_s * NS_PER_S),
        deaths=_deaths(index),
    )


def _deaths(index: HistoryIndex) -> list[tuple[str, int, str]]:
    found = [
        (d.process.rsplit(".", 1)[0], d.ok_ns, "process died of a poison task")
        for tid in index.poison
        for d in index.deliveries.get(tid, ())
    ]
    found.extend((e.process, e.time_ns, f"worker died (exit {e.code})") for e in index.exits)
    return found


def _judge_enqueued(
    index: HistoryIndex,
    context: CheckContext,
    windows: _Windows,
    tid: str,
    enqueue: Enqueue,
    tally: _Tally,
    examples: Examples,
) -> None:
    outcome = enqueue.outcome
    if outcome == OK:
        tally.enqueued_ok += 1
    elif outcome == INFO:
        tally.enqueue_info += 1
    else:
        tally.enqueue_fail += 1
    completions = index.completions.get(tid, ())
    if any(c.outcome == OK for c in completions):
        tally.completed += 1
        if outcome != OK:
            tally.recovered += 1
        return
    # An unanswered or refused enqueue may not have happened; once the task is seen delivered, it did.
    exists = outcome == OK or tid in index.deliveries
    if not exists or any(c.outcome == INFO for c in completions) or index.is_dead(tid):
        return
    if index.final is not None and tid in index.final.left:
        tally.stuck += 1  # reported by the leaks checker
        return
    enqueued_ns = enqueue.invoke_ns if enqueue.ok_ns is None else enqueue.ok_ns
    # A write happened somewhere between its invoke and its answer.
    spans = chain(((enqueue.invoke_ns, enqueued_ns),), ((c.invoke_ns, _settled_ns(c)) for c in completions))
    window = _window_of(enqueue.invoke_ns, spans, windows.redis)
    if window is not None:
        window.lost.append(enqueued_ns)
        if window.fault.kind == SPLIT_BRAIN and context.expect.loss_allowed_in_redis_fault_windows:
            tally.lost_in_split_brain += 1
            examples.add("lost_in_split_brain", tid=tid, enqueue=outcome, enqueued_ns=enqueued_ns,
                         fault_ns=window.fault.start_ns)  # fmt: skip
            return
        if context.expect.loss_allowed_in_redis_fault_windows:
            tally.lost_in_fault_window += 1
            examples.add("lost_in_fault_window", tid=tid, enqueue=outcome, enqueued_ns=enqueued_ns,
                         fault=window.fault.kind, fault_ns=window.fault.start_ns)  # fmt: skip
            return
    tally.lost += 1
    examples.add(
        "lost", tid=tid, enqueue=outcome, enqueued_ns=enqueued_ns, deliveries=len(index.deliveries.get(tid, ()))
    )


def _window_of(sent_ns: int, spans: Iterable[tuple[int, int]], windows: list[_LossWindow]) -> _LossWindow | None:
    """The loss window that took the task: of the windows its writes overlap, the first whose fault began
    after the task was sent (a task sent while Redis was down or restarting was written after that
    crash, so a later one lost it), else the last."""
    found = [(start, end) for start, end in spans]
    overlapping = [w for w in windows if any(s <= w.end_ns and e >= w.start_ns for s, e in found)]
    return next((w for w in overlapping if w.fault.start_ns >= sent_ns), overlapping[-1] if overlapping else None)


def _judge_unexpected(index: HistoryIndex, tally: _Tally, examples: Examples) -> None:
    enqueues, completions = index.enqueues, index.completions
    for tid in index.never_enqueued:
        tally.completed += any(c.outcome == OK for c in completions.get(tid, ()))
        deliveries = index.deliveries.get(tid, ())
        if any(d.delivered_tid in enqueues for d in deliveries):
            continue  # handed out under another id: the retry checker's id change, not a stranger
        tally.unexpected += 1
        examples.add("unexpected", tid=tid, delivered=len(deliveries))


# (windows, the task's deliveries, the earlier and later completion, when the task became readable)
_Explain = Callable[["_Windows", list[Delivery], Completion, Completion, int], str]


def _judge_repeats(
    index: HistoryIndex,
    windows: _Windows,
    tid: str,
    completions: list[Completion],
    tally: _Tally,
    examples: Examples,
    explain: _Explain,
) -> None:
    tally.re_executed += 1
    done = sorted((c for c in completions if c.outcome == OK), key=_settled_ns)
    if len(done) < 2:
        return
    tally.duplicated += 1
    deliveries = index.deliveries.get(tid, [])
    reasons = [
        explain(windows, deliveries, earlier, later, _readable_since(index, tid, deliveries, earlier, later))
        for earlier, later in pairwise(done)
    ]
    if all(reasons):
        tally.duplicated_explained += 1
        examples.add("duplicated_explained", tid=tid, reasons=reasons, by=[c.process for c in done])
    else:
        tally.duplicated_unexplained += 1
        examples.add("duplicated_unexplained", tid=tid, by=[c.process for c in done], at_ns=[c.done_ns for c in done])


def _readable_since(
    index: HistoryIndex, tid: str, deliveries: list[Delivery], earlier: Completion, later: Completion
) -> int:
    """The earliest a first holder of this run of the task can have read it: when it was enqueued, or when
    the failed attempt that scheduled this retry ended (a hosted history shows starts, not reads)."""
    first_ns = min(_received_ns((_holding(deliveries, c), c)) for c in (earlier, later))
    enqueue = index.enqueues.get(tid)
    since = [enqueue.invoke_ns] if enqueue is not None else [first_ns]
    since += [f.invoke_ns for f in index.failures.get(tid, ()) if f.invoke_ns <= first_ns]
    return max(since)


def _explain(
    windows: _Windows, deliveries: list[Delivery], earlier: Completion, later: Completion, readable_ns: int
) -> str:
    """Why a task completed a second time, or "" if nothing in the history explains it.

    The two holders are ordered by when they received the task. The task may be handed out again
    while the first owner still holds it if that owner's lease ran out or it was paused; and after
    a Redis fault between the two deliveries, Redis may have lost the first ack or the lease.
    (`readable_ns` is for hosted runs: the harness's own consumer journals its reads.)
    """
    holds = sorted(((_holding(deliveries, c), c) for c in (earlier, later)), key=_received_ns)
    (first, first_completion), second_hold = holds
    handed_again_ns = _received_ns(second_hold)
    if first is not None and handed_again_ns <= _settled_ns(first_completion):
        held_until_ns = first_completion.invoke_ns
        if held_until_ns - first.ok_ns > windows.lease_ns:
            return "lease expired"
        if any(_overlaps(f, first.ok_ns, held_until_ns) and targets(f.target, first.process) for f in windows.pauses):
            return "owner paused"
    first_received_ns = _received_ns(holds[0])
    acked_ns = _settled_ns(first_completion)
    for window in windows.redis:
        if not _overlaps(window.fault, first_received_ns, handed_again_ns):
            continue
        if window.fault.kind not in TOPOLOGY_LOSS_KINDS:
            return "redis fault between the deliveries"
        # A failover undoes only what the promoted replica lacked: an ack answered before the sync point was on it.
        if acked_ns >= window.start_ns:
            return f"{window.fault.kind} between the deliveries"
    return ""


def _explain_hosted(
    windows: _Windows, deliveries: list[Delivery], earlier: Completion, later: Completion, readable_ns: int
) -> str:
    """Why a hosted library ran a task a second time, or "" if nothing in the history explains it.

    The first holder finished (or not) and its library was to ack after that; the task may run again
    if, between the first holder asking for it and the second receiving it, the first holder was
    killed (before or after its finish: the ack may never have been sent) or died, was paused or cut
    off from Redis, if Redis itself was hurt, or, for a library that does not renew leases, if its own
    visibility timeout passed. The harness sees a handler start, not the read behind it: the read was
    sent at most a client timeout before its reply came (a held reply can arrive after a later
    delivery, so holders are ordered by the library's delivery count where it reports one), and a
    library that prefetches or holds a task until its ETA read it earlier, as early as the task became
    readable (`readable_ns`), so its visibility timeout counts from there; a fault that stalls every
    client could have let the lease lapse any time after that. A library that renews leases promises no
    repeat while its holder is alive and reachable: a repeat then is unexplained.
    """
    holds = sorted(((_holding(deliveries, c), c) for c in (earlier, later)), key=_library_order)
    first_received_ns, handed_again_ns = _received_ns(holds[0]), _received_ns(holds[1])
    asked_ns = first_received_ns - windows.client_timeout_ns
    # Nothing before the task became readable touched it (a read sent earlier may block until it came).
    start_ns = max(min(asked_ns, handed_again_ns), min(readable_ns, handed_again_ns))
    end_ns = max(asked_ns, handed_again_ns)
    holder, second = holds[0][1].process, holds[1][1].process
    for fault in windows.faults:
        since_readable = (readable_ns, handed_again_ns)
        if reason := _hosted_fault_reason(fault, (start_ns, end_ns), since_readable, (holder, second)):
            return reason
    for who, at_ns, how in windows.deaths:
        if start_ns <= at_ns <= end_ns and targets(who, holder):
            return f"holder's {how}"
    if windows.renews_lease or windows.visibility_ns is None:
        return ""
    if handed_again_ns - readable_ns > windows.visibility_ns:
        return "visibility timeout passed"
    return ""


def _hosted_fault_reason(
    fault: Fault, window: tuple[int, int], since_readable: tuple[int, int], by: tuple[str, str]
) -> str:
    holder, second = by
    if _hurts_every_holder(fault):
        if _overlaps(fault, *window):
            return _hurt(fault)
        if _overlaps(fault, *since_readable):
            return f"{_hurt(fault)} between the send and the second delivery"
    if not _overlaps(fault, *window):
        return ""
    if fault.kind in CRASH_FAULTS and targets(fault.target, holder):
        return f"holder hit by {fault.kind}"
    if fault.kind in PAUSE_FAULTS and targets(fault.target, holder):
        return "owner paused"
    # The later starter may have read it first (a prefetch), been paused holding it, and started it once
    # resumed, after the other ran it.
    if fault.kind in PAUSE_FAULTS and targets(fault.target, second):
        return "second holder paused (it may have read the task before the pause)"
    return ""


def _library_order(hold: tuple[Delivery | None, Completion]) -> tuple[int, int]:
    """Holders in the order the library handed the task out: by its delivery count, then by receipt."""
    delivery = hold[0]
    return (delivery.deliveries if delivery is not None else 0, _received_ns(hold))


def _hurts_every_holder(fault: Fault) -> bool:
    """A Redis fault or stall, or a network cut of every consumer: whoever held the task was hit."""
    cut = fault.kind in NETWORK_CUTS and fault.target in ("all", "consumers")
    return cut or is_redis_fault(fault.kind) or fault.kind in REDIS_STALLS


def _hurt(fault: Fault) -> str:
    if fault.kind in NETWORK_CUTS:
        return f"holder cut off from Redis ({fault.kind})"
    return f"redis fault ({fault.kind})"


def _settled_ns(completion: Completion) -> int:
    return completion.invoke_ns if completion.done_ns is None else completion.done_ns


def _holding(deliveries: list[Delivery], completion: Completion) -> Delivery | None:
    """The delivery a completion acknowledges: the last one its process received before completing."""
    found = None
    for delivery in deliveries:
        if delivery.process == completion.process and delivery.ok_ns <= completion.invoke_ns:
            found = delivery
    return found


def _received_ns(hold: tuple[Delivery | None, Completion]) -> int:
    delivery, completion = hold
    return completion.invoke_ns if delivery is None else delivery.ok_ns


def _overlaps(fault: Fault, start_ns: int, end_ns: int) -> bool:
    return fault.start_ns <= end_ns and (fault.end_ns is None or fault.end_ns >= start_ns)
