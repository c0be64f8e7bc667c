"""A small synthetic run history, journaled the way a run journals it, for the report tests."""

from __future__ import annotations

from typing import Any

from harness.history import Op

MS = 1_000_000
S = 1_000_000_000
T0 = 100 * S


def op(t_ns: int, process: str, type_: str, f: str, value: Any) -> Op:
    return {"index": -1, "time_ns": t_ns, "process": process, "type": type_, "f": f, "value": value}


def steady_history(*, tasks: int = 100, rate: float = 100.0, start_latency_ms: float = 2.0,
                   fault: tuple[float, float] | None = (0.3, 0.5)) -> list[Op]:  # fmt: skip
    """`tasks` tasks due every 1/rate s from T0; each starts `start_latency_ms` after its due time
    and completes 1 ms later; depth sampled every 0.2 s; one kill fault from fault[0] to fault[1] s."""
    ops = [op(T0, "runner", "ok", "phase", {"name": "load"})]
    for n in range(tasks):
        due = T0 + int(n * S / rate)
        tid = f"p0-{n}"
        start = due + int(start_latency_ms * MS)
        ops += [
            op(due, "producer-0.0", "invoke", "enqueue", {"tasks": [[tid, 2, 3]], "due_ns": due}),
            op(due + MS // 10, "producer-0.0", "ok", "enqueue", {}),
            op(start - MS // 10, "consumer-0#1", "invoke", "deliver", {}),
            op(start, "consumer-0#1", "ok", "deliver", {"tasks": [[tid, 2, 0, 1]]}),
            op(start + MS // 2, "consumer-0#1", "invoke", "complete", {"tasks": [tid]}),
            op(start + MS, "consumer-0#1", "ok", "complete", {"refused": []}),
        ]
    end = T0 + int(tasks * S / rate) + 10 * MS
    for k in range(int((end - T0) / (S // 5)) + 1):
        ops.append(op(T0 + k * S // 5, "runner", "ok", "depth", {"ready": k, "pending": 1, "delayed": 0, "dead": 0}))
    if fault is not None:
        value = {"kind": "kill", "target": "consumer-0", "held": []}
        ops += [op(T0 + int(fault[0] * S), "nemesis-0", "invoke", "fault", value),
                op(T0 + int(fault[1] * S), "nemesis-0", "ok", "fault", {})]  # fmt: skip
    for k, name in enumerate(("heal", "drain", "final")):
        ops.append(op(end + k * MS, "runner", "ok", "phase", {"name": name}))
    ops.sort(key=lambda o: o["time_ns"])
    for index, record in enumerate(ops):
        record["index"] = index
    return ops
