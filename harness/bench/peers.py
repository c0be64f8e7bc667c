"""`harness bench peers`: every queue library side by side, on one Redis, one machine, one run.

For each queue (taskq's worker, the raw redis-py ceiling, each installed peer): the enqueue rate
through its own client, the drain of a backlog at 1 and 2 worker processes with the same
concurrency, for an empty task body and one that INCRs a counter (which proves every task ran once),
CPU per task for the workers and for redis-server; then enqueue-to-start latency at offered rates
(journaled runs of the `steady` scenario), and the offered rate at which each saturates. Queues are
interleaved and measured again in each repeat; results are medians with ranges, and ratios to taskq's
worker and to the raw ceiling measured in the same run.

Each drain runs as a process of its own (harness.bench.drain) in the environment its library lives in
(harness.peers.environments), against the bench's one redis-server.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.folders import stamped_folder
from harness.peers import PEERS
from harness.peers.environments import environment_of, peer_of
from harness.providers.local import LocalRedis, RedisConfig

DEFAULT_QUEUES = ("taskq-worker", "raw", *(f"peer:{name}" for name in PEERS))
TASKQ, RAW = "taskq-worker", "raw"
Status = Callable[[str], None]
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, kw_only=True, slots=True)
class PeersBenchSettings:
    queues: tuple[str, ...] = DEFAULT_QUEUES
    tasks: int = 20_000
    concurrency: int = 32
    workers: tuple[int, ...] = (1, 2)
    bodies: tuple[str, ...] = ("empty", "incr")
    repeat: int = 3
    journal_cost: bool = False  # also drain with every start and finish journaled (hosted journaling's cost)
    latency_rates: tuple[float, ...] = (500.0, 2000.0, 8000.0)
    latency_duration_s: float = 5.0


@dataclass(slots=True)
class PeersBench:
    settings: PeersBenchSettings
    folder: Path
    drains: list[dict[str, Any]] = field(default_factory=list)
    latency: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"settings": _settings_dict(self.settings), "drains": self.drains, "latency": self.latency,
                "skipped": self.skipped, "summary": summarize(self)}  # fmt: skip


def _settings_dict(settings: PeersBenchSettings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in settings.__dataclass_fields__}


def python_for(queue: str) -> str:
    """The interpreter of the environment the queue's library lives in."""
    peer = peer_of(queue)
    if peer is None:
        return sys.executable
    candidate = environment_of(peer) / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


def _available(queue: str) -> str:
    """ "" when the queue can be measured here, else why not."""
    probe = [python_for(queue), "-c", f"from harness.adapters import adapter_factory; adapter_factory({queue!r})"]
    done = subprocess.run(probe, capture_output=True, text=True, check=False, cwd=REPO_ROOT, timeout=120)
    return "" if done.returncode == 0 else (done.stderr.strip().splitlines() or ["cannot load"])[-1]


def run_bench(settings: PeersBenchSettings, out: Path, status: Status) -> PeersBench:
    bench = PeersBench(settings=settings, folder=stamped_folder(out, "peers"))
    queues = []
    for queue in settings.queues:
        why = _available(queue)
        if why:
            bench.skipped[queue] = why
            status(f"skipping {queue}: {why}")
        else:
            queues.append(queue)
    with LocalRedis(bench.folder / "redis", RedisConfig(persistence="none")) as server:
        for repeat in range(settings.repeat):
            for body, workers, journaled in _cases(settings):
                for queue in _rotated(queues, repeat):
                    bench.drains.append(_drain(bench, server.url, queue, body, workers, journaled, repeat, status))
                    (bench.folder / "bench.json").write_text(json.dumps(bench.as_dict(), indent=2))
    for queue in queues:
        bench.latency.extend(_latency(bench, queue, status))
    (bench.folder / "bench.json").write_text(json.dumps(bench.as_dict(), indent=2))
    return bench


def _cases(settings: PeersBenchSettings) -> list[tuple[str, int, bool]]:
    cases = [(body, workers, False) for body in settings.bodies for workers in settings.workers]
    if settings.journal_cost:
        cases.append(("empty", max(settings.workers), True))
    return cases


def _rotated(queues: Sequence[str], step: int) -> list[str]:
    """Each repeat starts with another queue, so no library always runs first (or last) on the machine."""
    shift = step % len(queues) if queues else 0
    return [*queues[shift:], *queues[:shift]]


def _drain(
    bench: PeersBench, url: str, queue: str, body: str, workers: int, journaled: bool, repeat: int, status: Status
) -> dict[str, Any]:
    settings = bench.settings
    label = f"{queue} {body} W={workers}{' journaled' if journaled else ''} #{repeat + 1}"
    folder = bench.folder / "drains" / label.replace(" ", "_").replace(":", "-").replace("#", "r")
    command = [
        python_for(queue), "-m", "harness.bench.drain", "--queue", queue, "--url", url, "--folder", str(folder),
        "--tasks", str(settings.tasks), "--workers", str(workers), "--concurrency", str(settings.concurrency),
        "--body", body, "--seed", str(repeat + 1), *(["--journal"] if journaled else []),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=REPO_ROOT, timeout=900)
    lines = done.stdout.strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        result = {"case": {"queue": queue, "body": body, "workers": workers, "journaling": journaled},
                  "drain_per_s": None, "error": f"exit {done.returncode}: {tail}"}  # fmt: skip
    result["repeat"] = repeat
    status(f"{label}: {result.get('drain_per_s') or result.get('error')} tasks/s")
    return result


def _latency(bench: PeersBench, queue: str, status: Status) -> list[dict[str, Any]]:
    """Journaled `steady` runs at each offered rate, up to the first the queue cannot sustain."""
    points = []
    for rate in sorted(bench.settings.latency_rates):
        out = bench.folder / "latency" / f"{queue.replace(':', '-')}-{rate:g}"
        command = [
            sys.executable, "-m", "harness", "run", "steady", "--queue", queue, "--rate", f"{rate:g}",
            "--duration", f"{bench.settings.latency_duration_s:g}", "--seed", "1", "--out", str(out),
        ]  # fmt: skip
        subprocess.run(command, capture_output=True, text=True, check=False, cwd=REPO_ROOT, timeout=900)
        point = _latency_point(queue, rate, out)
        points.append(point)
        status(f"{queue} at {rate:g}/s: start p99 {point.get('p99_ms')} ms, sustained={point['sustained']}")
        if not point["sustained"]:
            break
    return points


def _latency_point(queue: str, rate: float, out: Path) -> dict[str, Any]:
    verdicts = list(out.glob("*/verdict.json"))
    if not verdicts:
        return {"queue": queue, "offered": rate, "sustained": False, "error": "the run left no verdict"}
    verdict = json.loads(verdicts[0].read_text())
    start = verdict.get("latency_ms", {}).get("enqueue_to_start", {})
    # All tasks over the time from the first due time to the last completion (the load phase also holds
    # the producers' start-up and the heal, which are not the queue's).
    achieved = float(((verdict.get("throughput") or {}).get("overall") or {}).get("per_second") or 0)
    return {
        "queue": queue, "offered": rate, "achieved": achieved, "valid": verdict.get("valid"),
        "p50_ms": start.get("p50"), "p99_ms": start.get("p99"), "p999_ms": start.get("p99.9"),
        # Sustained: it kept up with the offered load, and tasks started within a second at the 99th percentile.
        "sustained": achieved >= 0.9 * rate and (start.get("p99") or 1e9) < 1000.0,
        "run": str(verdicts[0].parent),
    }  # fmt: skip


def _median_range(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"median": round(statistics.median(values), 1), "min": round(min(values), 1), "max": round(max(values), 1)}


def summarize(bench: PeersBench) -> dict[str, Any]:
    """Per queue and case: medians and ranges; ratios to taskq's worker and to the raw ceiling."""
    cases: dict[str, dict[str, dict[str, Any]]] = {}
    for result in bench.drains:
        case = result["case"]
        key = f"{case['body']} W={case['workers']}" + (" journaled" if case.get("journaling") else "")
        row = cases.setdefault(case["queue"], {}).setdefault(key, {"drain": [], "enqueue": [], "cpu": [], "redis": [],
                                                                   "errors": []})  # fmt: skip
        for name, field_name in (("drain", "drain_per_s"), ("enqueue", "enqueue_per_s"),
                                 ("cpu", "worker_cpu_us_per_task"), ("redis", "redis_cpu_us_per_task")):  # fmt: skip
            if result.get(field_name) is not None:
                row[name].append(float(result[field_name]))
        if result.get("error") or (result.get("counted") not in (None, case.get("tasks"))):
            row["errors"].append(result.get("error") or f"counted {result.get('counted')} of {case.get('tasks')}")
    summary: dict[str, Any] = {}
    for queue, by_case in cases.items():
        summary[queue] = {key: {name: _median_range(values) if name != "errors" else values
                                for name, values in row.items()} for key, row in by_case.items()}  # fmt: skip
    for by_case in summary.values():
        for key, row in by_case.items():
            drain = (row.get("drain") or {}).get("median")
            for base, name in ((TASKQ, "vs_taskq"), (RAW, "vs_raw")):
                reference = ((summary.get(base) or {}).get(key) or {}).get("drain") or {}
                row[name] = round(drain / reference["median"], 3) if drain and reference.get("median") else None
    return summary
