"""The fleet: the producer and consumer OS processes of a run, started and supervised.

Consumers live in slots; a consumer that dies (killed by the nemesis, or by a
poison task) is replaced by a new incarnation in the same slot, with a journal and
a consumer name of its own.

A consumer is either the harness's own agent (`python -m harness.agents consumer`, for pull
adapters) or, for hosted adapters, the queue library's own worker process, started by the
command the adapter gives. A hosted worker runs in a session of its own, with its own log;
the fleet finds its whole process tree (children it forks, however they re-group) by a mark
in their environment (harness.processes), and kills, pauses and resumes the tree together,
as a supervisor would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from harness.adapters.base import QueueOptions
from harness.agents.common import RUNNER_PID_ENV, URL_ENV
from harness.hosted.base import (
    JOURNAL_ENV,
    PLAN_ENV,
    PROCESS_ENV,
    QUEUE_NAME_ENV,
    TREE_ENV,
    HostedAdapter,
    WorkerLaunch,
)
from harness.hosted.handler import NO_JOURNAL_ENV
from harness.processes import kill_tree, signal_pids, tree_pids
from harness.proxy import FaultProxy

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(slots=True)
class Agent:
    role: str
    index: int
    incarnation: int
    process: subprocess.Popen[bytes]
    journal: Path
    # Set when the nemesis stopped it on purpose; its exit is then not an unexpected one.
    planned_exit: bool = False
    # Hosted workers: the environment mark every process of the worker's tree carries; its log.
    tree_token: str = ""
    log: Path | None = None

    @property
    def name(self) -> str:
        return f"{self.role}-{self.index}" + (f"#{self.incarnation}" if self.role == "consumer" else "")

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        """Signal the main process only (SIGTERM goes there, as `docker stop` sends it)."""
        if self.alive():
            os.kill(self.process.pid, sig)

    def tree(self) -> list[int]:
        """Every live process of this agent: a hosted worker's tree, else the process itself."""
        if self.tree_token:
            return tree_pids(TREE_ENV, self.tree_token)
        return [self.process.pid] if self.alive() else []

    def children(self) -> list[int]:
        return [pid for pid in self.tree() if pid != self.process.pid]

    def kill(self) -> None:
        """SIGKILL the agent and everything it started."""
        if self.tree_token:
            kill_tree(TREE_ENV, self.tree_token)
        else:
            self.signal(signal.SIGKILL)

    def pause(self) -> None:
        signal_pids(self.tree(), signal.SIGSTOP)

    def resume(self) -> None:
        signal_pids(self.tree(), signal.SIGCONT)


@dataclass
class Fleet:
    folder: Path
    plan_path: Path
    url: str
    journaling: bool = True
    producers: list[Agent] = field(default_factory=list)
    consumers: dict[int, Agent] = field(default_factory=dict)
    restarts: int = 0
    # Per role ("producer", "consumer"), a URL other than `url`: through the fault proxy, or an
    # address of its own that a partition can cut (harness/nemesis/network.py).
    urls: dict[str, str] = field(default_factory=dict)
    proxy: FaultProxy | None = None
    # Set for hosted runs: consumers are the library's own worker processes.
    hosted: HostedAdapter | None = None
    queue_name: str = ""
    options: QueueOptions = field(default_factory=QueueOptions)
    concurrency: int = 1
    # Consumers replaced by a later incarnation: a hosted one's children may outlive it (kill-main).
    retired: list[Agent] = field(default_factory=list)
    # More environment for every agent and worker (benchmarks: the task body, harness.hosted.handler).
    agent_env: dict[str, str] = field(default_factory=dict)

    @property
    def journal_dir(self) -> Path:
        return self.folder / "journals"

    def _environment(self, role: str) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
            URL_ENV: self.urls.get(role, self.url),
            RUNNER_PID_ENV: str(os.getpid()),
            **self.agent_env,
        }

    def _spawn(self, role: str, index: int, incarnation: int) -> Agent:
        name = f"{role}-{index}" + (f"#{incarnation}" if role == "consumer" else "")
        journal = self.journal_dir / f"{name}.jsonl"
        if role == "consumer" and self.hosted is not None:
            return self._spawn_hosted(index, incarnation, name, journal)
        command = [
            sys.executable, "-m", "harness.agents", role, "--plan", str(self.plan_path), "--index", str(index),
            "--incarnation", str(incarnation), "--journal", str(journal),
        ]  # fmt: skip
        if not self.journaling:
            command.append("--no-journal")
        with (self.folder / "agents.log").open("ab") as log:
            process = subprocess.Popen(command, env=self._environment(role), stdout=subprocess.DEVNULL, stderr=log)
        return Agent(role, index, incarnation, process, journal)

    def _spawn_hosted(self, index: int, incarnation: int, name: str, journal: Path) -> Agent:
        assert self.hosted is not None
        url = self.urls.get("consumer", self.url)
        journal = journal.resolve()  # the worker runs in the run folder, and its children wherever they like
        launch = WorkerLaunch(
            process=name, journal=journal, plan_path=self.plan_path.resolve(), folder=self.folder.resolve(), url=url,
            queue_name=self.queue_name, options=self.options, concurrency=self.concurrency,
        )  # fmt: skip
        command = self.hosted.worker(launch)
        token = f"{self.folder.name}/{name}"
        env = {
            **self._environment("consumer"), PLAN_ENV: str(launch.plan_path), JOURNAL_ENV: str(journal),
            PROCESS_ENV: name, QUEUE_NAME_ENV: self.queue_name, TREE_ENV: token, **command.env,
        }  # fmt: skip
        if not self.journaling:
            env[NO_JOURNAL_ENV] = "1"
        log_path = self.folder / "workers" / f"{name}.log"
        log_path.parent.mkdir(exist_ok=True)
        journal.touch()  # every process of the tree appends to it (harness.hosted.handler)
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                command.argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=launch.folder, start_new_session=True,
            )  # fmt: skip
        return Agent("consumer", index, incarnation, process, journal, tree_token=token, log=log_path)

    def start(self, producers: int, consumers: int) -> None:
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        self.start_consumers(consumers)
        self.start_producers(producers)

    def start_consumers(self, consumers: int) -> None:
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        self.consumers = {i: self._spawn("consumer", i, 1) for i in range(consumers)}

    def start_producers(self, producers: int) -> None:
        self.producers = [self._spawn("producer", i, 1) for i in range(producers)]

    def consumer(self, slot: int) -> Agent:
        return self.consumers[slot]

    def replace_consumer(self, slot: int) -> Agent:
        """Start the next incarnation of a slot whose consumer is gone."""
        old = self.consumers[slot]
        if old.alive():
            raise RuntimeError(f"{old.name} is still running")
        self.retired.append(old)
        self.consumers[slot] = self._spawn("consumer", slot, old.incarnation + 1)
        self.restarts += 1
        return self.consumers[slot]

    def unexpected_exits(self) -> Iterator[Agent]:
        """Consumers that died without the nemesis asking (e.g. a poison task), once each."""
        for agent in list(self.consumers.values()):
            if not agent.alive() and not agent.planned_exit:
                agent.planned_exit = True  # report once
                yield agent

    def producers_done(self) -> bool:
        return all(not p.alive() for p in self.producers)

    def stop(self, agents: list[Agent], timeout_s: float = 10.0) -> None:
        """SIGTERM (and SIGCONT, in case it is paused), wait, then SIGKILL what is left (a hosted
        worker's whole tree, children that outlived it included)."""
        for agent in agents:
            agent.planned_exit = True
            agent.resume()
            agent.signal(signal.SIGTERM)
        # One deadline for all: they were told together (a library whose workers never exit on SIGTERM
        # would otherwise cost timeout_s per worker).
        deadline = time.monotonic() + timeout_s
        for agent in agents:
            try:
                agent.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.process.wait()
            if agent.tree_token:
                agent.kill()

    def stop_all(self) -> None:
        self.stop([*self.producers, *self.consumers.values()])
        for agent in self.retired:
            if agent.tree_token:
                agent.kill()


# A hosted handler's finish is journaled just before the library acks: for this long after it,
# a fault aimed at "settling" counts the ack as in flight.
HOSTED_SETTLE_WINDOW_NS = 5_000_000


@dataclass(frozen=True, slots=True)
class ConsumerState:
    """What a consumer is doing, as its journal says: the tasks it holds, and what it is
    settling ("complete" or "fail" sent, its reply not yet journaled; "" when nothing);
    `reclaimed` are the held tasks it took over from another consumer (handed out again)."""

    held: list[str]
    settling: str
    # Per logical process (a hosted handler's lane, "consumer-2#3.<pid>.<n>"): the tasks it holds.
    lanes: dict[str, list[str]] = field(default_factory=dict)
    reclaimed: list[str] = field(default_factory=list)

    def on_target(self, aim: str) -> bool:
        """Whether a fault aimed at `aim` (see harness.faults.FAULT_AIMS) should strike now."""
        if aim == "settling":
            return bool(self.settling)
        if aim == "failing":
            return self.settling == "fail"
        return aim == "any" or bool(self.held)


def consumer_state(journal: Path, tail_bytes: int = 1 << 18, now_ns: int | None = None) -> ConsumerState:
    """Read from the end of the consumer's journal, per logical process (one for the harness's
    consumer, one per running handler of a hosted worker): held = each one's last delivery minus
    what it has acked or failed (with a reply). A hosted handler writes its finish and the reply
    together; the library's ack follows it, so a finish in the last few milliseconds is "settling"."""
    try:
        with journal.open("rb") as f:
            f.seek(max(0, journal.stat().st_size - tail_bytes))
            lines = f.read().split(b"\n")
    except FileNotFoundError:
        return ConsumerState([], "")
    held: dict[str, list[str]] = {}
    settling: dict[str, tuple[str, set[str]]] = {}
    finished: dict[str, tuple[str, int]] = {}
    reclaimed: set[str] = set()
    for line in lines:  # the first line may be cut by the seek: it fails to parse and is skipped
        try:
            op = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        process = op["process"]
        if op["f"] == "deliver" and op["type"] == "ok":
            held[process] = [t[0] for t in op["value"]["tasks"]]
            finished.pop(process, None)
            # A delivery record is [tid, priority, attempt, deliveries, ...]: handed out before.
            reclaimed.update(t[0] for t in op["value"]["tasks"] if len(t) > 3 and (t[3] or 0) > 1)
        elif op["f"] in ("complete", "fail"):
            if op["type"] == "invoke":  # still held until the reply says the queue has them
                settling[process] = (op["f"], {t if isinstance(t, str) else t[0] for t in op["value"]["tasks"]})
            else:
                kind, tids = settling.pop(process, ("", set()))
                held[process] = [t for t in held.get(process, []) if t not in tids]
                finished[process] = (kind, op["time_ns"])
    recent_ns = (time.monotonic_ns() if now_ns is None else now_ns) - HOSTED_SETTLE_WINDOW_NS
    kinds = [kind for kind, _ in settling.values()]
    kinds += [kind for process, (kind, at_ns) in finished.items() if "." in process and at_ns >= recent_ns]
    settling_kind = "fail" if "fail" in kinds else (kinds[0] if kinds else "")
    lanes = {process: tids for process, tids in held.items() if tids}
    every = [tid for tids in held.values() for tid in tids]
    return ConsumerState(every, settling_kind, lanes, [t for t in every if t in reclaimed])
