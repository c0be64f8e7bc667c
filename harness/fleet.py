"""The fleet: the producer and consumer OS processes of a run, started and supervised.

Consumers live in slots; a consumer that dies (killed by the nemesis, or by a
poison task) is replaced by a new incarnation in the same slot, with a journal and
a consumer name of its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from harness.agents.common import URL_ENV
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

    @property
    def name(self) -> str:
        return f"{self.role}-{self.index}" + (f"#{self.incarnation}" if self.role == "consumer" else "")

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        if self.alive():
            os.kill(self.process.pid, sig)


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

    @property
    def journal_dir(self) -> Path:
        return self.folder / "journals"

    def _spawn(self, role: str, index: int, incarnation: int) -> Agent:
        name = f"{role}-{index}" + (f"#{incarnation}" if role == "consumer" else "")
        journal = self.journal_dir / f"{name}.jsonl"
        command = [
            sys.executable, "-m", "harness.agents", role, "--plan", str(self.plan_path), "--index", str(index),
            "--incarnation", str(incarnation), "--journal", str(journal),
        ]  # fmt: skip
        if not self.journaling:
            command.append("--no-journal")
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
            URL_ENV: self.urls.get(role, self.url),
        }
        with (self.folder / "agents.log").open("ab") as log:
            process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
        return Agent(role, index, incarnation, process, journal)

    def start(self, producers: int, consumers: int) -> None:
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        self.consumers = {i: self._spawn("consumer", i, 1) for i in range(consumers)}
        self.producers = [self._spawn("producer", i, 1) for i in range(producers)]

    def consumer(self, slot: int) -> Agent:
        return self.consumers[slot]

    def replace_consumer(self, slot: int) -> Agent:
        """Start the next incarnation of a slot whose consumer is gone."""
        old = self.consumers[slot]
        if old.alive():
            raise RuntimeError(f"{old.name} is still running")
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
        """SIGTERM (and SIGCONT, in case it is paused), wait, then SIGKILL what is left."""
        for agent in agents:
            agent.planned_exit = True
            agent.signal(signal.SIGCONT)
            agent.signal(signal.SIGTERM)
        for agent in agents:
            try:
                agent.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                agent.signal(signal.SIGKILL)
                agent.process.wait()

    def stop_all(self) -> None:
        self.stop([*self.producers, *self.consumers.values()])


@dataclass(frozen=True, slots=True)
class ConsumerState:
    """What a consumer is doing, as its journal says: the tasks it holds, and what it is
    settling ("complete" or "fail" sent, its reply not yet journaled; "" when nothing);
    `reclaimed` are the held tasks it took over from another consumer (handed out again)."""

    held: list[str]
    settling: str
    reclaimed: list[str] = field(default_factory=list)

    def on_target(self, aim: str) -> bool:
        """Whether a fault aimed at `aim` (see harness.faults.FAULT_AIMS) should strike now."""
        if aim == "settling":
            return bool(self.settling)
        if aim == "failing":
            return self.settling == "fail"
        return aim == "any" or bool(self.held)


def consumer_state(journal: Path, tail_bytes: int = 1 << 20) -> ConsumerState:
    """Read from the end of the consumer's journal: held = its last delivery minus what it
    has acked or failed (with a reply)."""
    try:
        with journal.open("rb") as f:
            f.seek(max(0, journal.stat().st_size - tail_bytes))
            lines = f.read().split(b"\n")
    except FileNotFoundError:
        return ConsumerState([], "")
    held: list[str] = []
    reclaimed: set[str] = set()
    settling: set[str] = set()
    settling_kind = ""
    for line in lines:  # the first line may be cut by the seek: it fails to parse and is skipped
        try:
            op = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if op["f"] == "deliver" and op["type"] == "ok":
            held = [t[0] for t in op["value"]["tasks"]]
            # A delivery record is [tid, priority, attempt, deliveries, ...]: handed out before.
            reclaimed = {t[0] for t in op["value"]["tasks"] if len(t) > 3 and t[3] > 1}
        elif op["f"] in ("complete", "fail"):
            if op["type"] == "invoke":  # still held until the reply says the queue has them
                settling = {t if isinstance(t, str) else t[0] for t in op["value"]["tasks"]}
                settling_kind = op["f"]
            else:
                held = [t for t in held if t not in settling]
                settling, settling_kind = set(), ""
    return ConsumerState(held, settling_kind, [t for t in held if t in reclaimed])
