"""The checks of a pull adapter's own methods: consume, complete and fail outcomes, a retry coming back,
a stale receipt after a takeover, the final state accounting for every task, and a probe of the order
tasks come out in."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from harness.adapters.base import Delivered, TaskSpec
from harness.kit.conformance.client import (
    HOLD_OPTIONS,
    Target,
    accounting,
    check_batch,
    connected,
    depth_of,
    final_of,
    task,
)
from harness.kit.conformance.rules import Probe, RuleBroken, plural

BATCH = 12
READ_COUNT = 5
WAIT_S = 10.0
LEASE_S = 0.5
ONE_RETRY, NO_RETRY = "t08", "t09"  # max_retries 1 and 0: the fail checks' tasks


def batch_tasks() -> list[TaskSpec]:
    budget = {ONE_RETRY: 1, NO_RETRY: 0}
    return [task(f"t{i:02d}", i % 4, budget.get(f"t{i:02d}", 3), n=i) for i in range(BATCH)]


async def consume_until(probe: Probe, consumer: str, wanted: set[str], count: int = READ_COUNT) -> list[Delivered]:
    """Deliveries to `consumer` until every wanted tid came, or WAIT_S; each batch's shape checked."""
    got: list[Delivered] = []
    deadline = time.monotonic() + WAIT_S
    while wanted - {d.tid for d in got} and time.monotonic() < deadline:
        batch = await probe.call("consume", consumer, count)
        probe.must(isinstance(batch, list) and len(batch) <= count, "consume", "returns a list of at most count tasks",
                   f"asked for {count}, it returned {_size(batch)}")  # fmt: skip
        for delivered in batch:
            probe.must(isinstance(delivered, Delivered), "consume", "returns harness.adapters.Delivered objects",
                       f"it returned a {type(delivered).__name__}")  # fmt: skip
        got += batch
    return got


def _size(batch: Any) -> str:
    return f"{len(batch)} tasks" if isinstance(batch, list) else repr(batch)


def check_delivered(probe: Probe, delivered: Delivered, spec: TaskSpec, *, attempt: int) -> None:
    """A delivery is the task as enqueued: its tid, priority, retry budget, payload, and attempt."""
    rule = "hands a task back as enqueued (tid, priority, max_retries, payload) with its attempt"
    facts = (delivered.priority, delivered.max_retries, delivered.attempt)
    expected = (spec.priority, spec.max_retries, attempt)
    probe.must(facts == expected, "consume", rule,
               f"{spec.tid}: (priority, max_retries, attempt) = {facts}, enqueued as {expected}")  # fmt: skip
    payload = delivered.payload if isinstance(delivered.payload, dict) else {}
    missing = {k for k, v in spec.payload.items() if payload.get(k) != v}
    probe.must(not missing, "consume", rule, f"{spec.tid}: payload keys {sorted(missing)} differ or are missing")
    probe.must(isinstance(delivered.deliveries, int) and delivered.deliveries >= 1, "consume",
               "counts deliveries (1 on the first)", f"{spec.tid}: deliveries={delivered.deliveries!r}")  # fmt: skip


async def check_deliveries(probe: Probe, target: Target) -> None:
    """One queue through its life: a batch in, all of it out, acks, fails, a retry back, the final state."""
    specs = {t.tid: t for t in batch_tasks()}
    async with connected(probe, target, "deliveries", HOLD_OPTIONS):
        await check_batch(probe, list(specs.values()))
        held = await _consume_all(probe, specs)
        acked = await _complete_some(probe, held)
        dead = await _fail_some(probe, held, specs)
        more = [task("t12"), task("t13")]
        await probe.call("enqueue", more)
        expected = {
            "pending": sorted(set(held) - set(acked) - {ONE_RETRY, NO_RETRY}), "dead": sorted(dead),
            "ready": ["t12", "t13"], "delayed": [],
        }  # fmt: skip
        await _check_final(probe, {*specs, "t12", "t13"}, set(acked), expected)


async def _consume_all(probe: Probe, specs: dict[str, TaskSpec]) -> dict[str, Delivered]:
    got = await consume_until(probe, "c1", set(specs))
    seen: dict[str, Delivered] = {}
    for delivered in got:
        probe.must(delivered.tid in specs, "consume", "hands out only enqueued tasks, by the tid they had",
                   f"it handed out {delivered.tid!r}")  # fmt: skip
        probe.must(delivered.tid not in seen, "consume", "hands a held task out once (its lease has not run out)",
                   f"{delivered.tid} came twice to c1 within 30 s")  # fmt: skip
        check_delivered(probe, delivered, specs[delivered.tid], attempt=0)
        seen[delivered.tid] = delivered
    missing = sorted(set(specs) - set(seen))
    probe.must(not missing, "consume", "hands out every ready task",
               f"{plural(len(missing), 'task')} never came within {WAIT_S:g} s: {missing[:3]}")  # fmt: skip
    again = await probe.call("consume", "c2", READ_COUNT)
    probe.must(again == [], "consume", "returns [] when nothing is ready (after waiting up to block_ms)",
               f"it handed {_size(again)} already held by c1 to c2")  # fmt: skip
    depth = await depth_of(probe)
    probe.must((depth["ready"], depth["pending"]) == (0, len(specs)), "depth",
               "counts handed-out tasks as pending", f"with {len(specs)} held it said {depth}")  # fmt: skip
    probe.ok(
        "consume",
        "hands out every task as enqueued, once",
        f"{len(specs)} tasks in reads of at most {READ_COUNT}; depth() pending={depth['pending']}",
    )
    return seen


async def _complete_some(probe: Probe, held: dict[str, Delivered]) -> list[str]:
    chosen = [held[f"t{i:02d}"] for i in range(4)]
    outcomes = await probe.call("complete", "c1", chosen)
    probe.must(outcomes == [True] * len(chosen), "complete", "acks tasks their consumer holds: True for each",
               f"4 held tasks: it returned {outcomes!r}")  # fmt: skip
    again = await probe.call("complete", "c1", chosen[:1])
    probe.must(isinstance(again, list) and len(again) == 1 and isinstance(again[0], bool), "complete",
               "returns one bool per task", f"it returned {again!r}")  # fmt: skip
    refused = again == [False]
    probe.saw(
        "ownership",
        refused,
        "stale receipt check",
        "an ack of a task acked before: " + ("refused" if refused else "accepted (True)"),
    )
    probe.ok("complete", "acks held tasks", "4 acks: True each; " + ("a second ack: False" if refused else
             "a second ack of the same task: True (not refused)"))  # fmt: skip
    return [d.tid for d in chosen]


async def _fail_some(probe: Probe, held: dict[str, Delivered], specs: dict[str, TaskSpec]) -> list[str]:
    first = await _fail(probe, held[ONE_RETRY])
    last = await _fail(probe, held[NO_RETRY])
    probe.must(last == "dead", "fail", "a failed task with no retries left is dead",
               f"{NO_RETRY} (max_retries 0) failed: {last!r}")  # fmt: skip
    if first != "retried":
        probe.saw("retries", False, "fail check", f"{ONE_RETRY} (max_retries 1) failed once: {first!r}, not retried")
        return [ONE_RETRY, NO_RETRY] if first == "dead" else [NO_RETRY]
    back = [d for d in await consume_until(probe, "c1", {ONE_RETRY}) if d.tid == ONE_RETRY]
    if not back:
        probe.saw("retries", False, "fail check", f"{ONE_RETRY} was 'retried' but never came back in {WAIT_S:g} s")
        raise RuleBroken("fail", "a retried task is handed out again", f"{ONE_RETRY} never came back")
    check_delivered(probe, back[0], specs[ONE_RETRY], attempt=1)
    final = await _fail(probe, back[0])
    probe.must(final == "dead", "fail", "a task failed on its last attempt is dead",
               f"{ONE_RETRY} failed on attempt 1 of max_retries 1: {final!r}")  # fmt: skip
    probe.saw("retries", True, "fail check", f"{ONE_RETRY} failed: retried, back with attempt 1 and its tid, then dead")
    probe.ok("fail", "retries, then dead-letters", f"{ONE_RETRY}: 'retried', back with attempt 1, then 'dead'; "
             f"{NO_RETRY} (max_retries 0): 'dead'")  # fmt: skip
    return [ONE_RETRY, NO_RETRY]


async def _fail(probe: Probe, delivered: Delivered) -> str:
    outcomes = await probe.call("fail", "c1", [(delivered, f"planned failure of attempt {delivered.attempt}")])
    valid = isinstance(outcomes, list) and len(outcomes) == 1 and outcomes[0] in ("retried", "dead", "refused")
    probe.must(valid, "fail", "returns 'retried', 'dead' or 'refused' per task", f"it returned {outcomes!r}")
    outcome: str = outcomes[0]
    return outcome


async def _check_final(probe: Probe, enqueued: set[str], acked: set[str], expected: dict[str, list[str]]) -> None:
    final = await final_of(probe)
    places = accounting(final, enqueued)
    for tid in sorted(acked):
        where = next((p for p, tids in places.items() if tid in tids), None)
        probe.must(where is None, "final_state", "lists no completed task", f"{tid} (acked) is in {where}")
    for place, tids in expected.items():
        missing = sorted(set(tids) - set(places[place]))
        probe.must(not missing, "final_state", f"lists every {place} task in {place}",
                   f"{missing[:3]} missing: the harness would count them lost")  # fmt: skip
    for tid, owner in ((str(e[0]), e[2]) for e in final.pending if isinstance(e, list | tuple) and len(e) > 2):
        probe.must(owner == "c1", "final_state", "names the consumer that holds a pending task",
                   f"{tid} held by c1, named {owner!r}")  # fmt: skip
    _note_dead_shape(probe, final.dead)
    dead = " and ".join(expected["dead"])
    probe.saw("dlq", True, "fail check", f"{dead}, out of retries, are in final_state's dead list")
    depth = await depth_of(probe)
    counts = {place: len(places[place]) for place in ("ready", "pending", "delayed", "dead")}
    probe.must(all(depth[k] == v for k, v in counts.items()), "depth", "agrees with final_state",
               f"depth() {depth}, final_state() {counts}")  # fmt: skip
    probe.ok(
        "final_state",
        "accounts for every task",
        f"{len(acked)} completed (in no list), " + ", ".join(f"{v} {k}" for k, v in counts.items()),
    )


def _note_dead_shape(probe: Probe, dead: list[Any]) -> None:
    """The dlq checker reads (tid, reason, attempts, errors): reason "retries exhausted", attempts =
    max_retries, errors = max_retries + 1; -1 where the queue keeps no count."""
    for entry in dead:
        if not (isinstance(entry, list | tuple) and len(entry) == 4):
            raise RuleBroken("final_state", "lists dead tasks as (tid, reason, attempts, errors)", f"got {entry!r}")
        tid, reason, attempts, errors = entry
        budget = 1 if tid == ONE_RETRY else 0
        if (
            not str(reason).startswith("retries exhausted")
            or attempts not in (budget, -1)
            or errors not in (budget + 1, -1)
        ):
            probe.note("final_state", "dead tasks as the dlq checker reads them",
                       f"{tid}: ({reason!r}, {attempts}, {errors}); expected ('retries exhausted...', {budget}, "
                       f"{budget + 1}): the dlq checker will count it")  # fmt: skip


async def check_stale_receipt(probe: Probe, target: Target) -> None:
    """A task whose consumer stopped is handed to another after the lease; the first one's late ack and
    fail are refused (if ownership is checked), the new holder's ack is taken."""
    async with connected(probe, target, "stale", replace(HOLD_OPTIONS, pending_timeout_s=LEASE_S)):
        await probe.call("enqueue", [task("s0")])
        first = [d for d in await consume_until(probe, "c1", {"s0"}) if d.tid == "s0"]
        probe.must(bool(first), "consume", "hands out every ready task", f"s0 never came in {WAIT_S:g} s")
        second = [d for d in await consume_until(probe, "c2", {"s0"}) if d.tid == "s0"]
        if not second:
            probe.saw("at-least-once", False, "takeover check",
                      f"a task whose consumer stopped was not handed out again within {WAIT_S:g} s "
                      f"(lease {LEASE_S:g} s): a killed worker's tasks would be lost")  # fmt: skip
            return
        probe.saw("at-least-once", True, "takeover check", f"c1 stopped; c2 got s0 after the {LEASE_S:g} s lease")
        if second[0].deliveries < 2:  # the takeover is its second delivery
            probe.note("consume", "counts deliveries", "a task taken over came with deliveries=1: the order checker "
                       "will read it as a first delivery")  # fmt: skip
        late_ack = await probe.call("complete", "c1", first)
        late_fail = await probe.call("fail", "c1", [(first[0], "late")])
        refused = late_ack == [False] and late_fail == ["refused"]
        probe.saw(
            "ownership",
            refused,
            "stale receipt check",
            f"c1's ack and fail after c2 took s0 over: {late_ack!r}, {late_fail!r}",
        )
        if refused:
            taken = await probe.call("complete", "c2", second[:1])
            probe.must(taken == [True], "complete", "acks the new holder's delivery", f"c2's ack of s0: {taken!r}")
        probe.ok(
            "consume",
            "hands a stopped consumer's task to another after the lease",
            f"c2 got s0 after {LEASE_S:g} s; c1's late ack {late_ack!r}, late fail {late_fail!r}",
        )


async def check_order(probe: Probe, target: Target) -> None:
    """Three LOW tasks, then three CRITICAL ones, read one at a time: what comes first, and in what order."""
    low = [task(f"low-{i}", priority=3) for i in range(3)]
    critical = [task(f"critical-{i}", priority=0) for i in range(3)]
    async with connected(probe, target, "order", HOLD_OPTIONS):
        for spec in [*low, *critical]:
            await probe.call("enqueue", [spec])
        order = [d.tid for d in [await _next_one(probe) for _ in range(6)] if d is not None]
        expected = [t.tid for t in critical + low]
        seen = " ".join(order)
        first = order[:3] == expected[:3]
        probe.saw("priority", first, "order probe", f"LOW x3 then CRITICAL x3 enqueued; read: {seen}")
        fifo = all(_in_order(order, group) for group in (low, critical))
        probe.saw("fifo", fifo, "order probe", f"read: {seen}")
        probe.ok("consume", "reads one task at a time (order probe)", seen)


async def _next_one(probe: Probe) -> Delivered | None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        batch = await probe.call("consume", "c1", 1)
        probe.must(isinstance(batch, list) and len(batch) <= 1, "consume", "returns a list of at most count tasks",
                   f"asked for 1, it returned {_size(batch)}")  # fmt: skip
        if batch:
            found = batch[0]
            probe.must(isinstance(found, Delivered), "consume", "returns harness.adapters.Delivered objects",
                       f"it returned a {type(found).__name__}")  # fmt: skip
            return found  # type: ignore[no-any-return]
    return None


def _in_order(order: list[str], group: list[TaskSpec]) -> bool:
    mine = [tid for tid in order if tid in {t.tid for t in group}]
    return mine == [t.tid for t in group][: len(mine)]
