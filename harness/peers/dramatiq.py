"""`--queue peer:dramatiq[:VARIANT]`: dramatiq 2.2 with its Redis broker, run through `dramatiq` (its CLI).

Producers send through dramatiq's own client: an actor declared on a RedisBroker of their own, its
`message_with_options(...)` (the message id is the task's tid, the Retries middleware's per-message
`max_retries`, `min_backoff` and `max_backoff`) enqueued with `broker.enqueue`, which is what
`send_with_options` does; dramatiq has no batch enqueue. Every consumer slot is one
`python -m dramatiq harness.peers.dramatiq:setup_worker --processes 1 --threads N`: a main process that
forks one worker process (the slot is the process, as for every other library here; dramatiq's
default is one per CPU) with N worker threads. The setup function runs in that worker process; it
reads the URL and the variant's settings from the environment (never the command line).

How the Redis broker works (dramatiq/brokers/redis.py, dramatiq/brokers/redis/dispatch.lua): a queue
is a list of message ids `dramatiq:Q` beside a hash of their bodies `dramatiq:Q.msgs`; a fetch moves
ids into the fetching broker's own set `dramatiq:__acks__.<broker id>.Q` (one broker id per
process), and an ack removes the id from that set and the body from the hash. Every command a broker
sends stamps its id in `dramatiq:__heartbeats__`; with a chance of `maintenance_chance` in a million
a command also runs maintenance on its queue, which puts back the unacked messages of every broker
whose last stamp is older than `heartbeat_timeout` (60 s). Delayed messages (retries included) go
to `Q.DQ`; a worker holds them in memory until their eta, then enqueues a copy on Q and acks the
original, two separate commands (#431). A message out of retries is nacked onto the dead-letter set
`dramatiq:Q.XQ` (bodies in `Q.XQ.msgs`, kept 7 days), with its retry count and last traceback in its
options.

Variants (the library's defaults first):

- `default`: `RedisBroker(url=...)`: heartbeat_timeout 60 s, maintenance_chance 1000 (0.1% of commands).
- `short-heartbeat`: heartbeat_timeout 3 s and maintenance_chance 100,000 (10% of commands), so that a
  dead or stopped worker's messages are put back within seconds: 3 s is three times the longest gap
  between a live worker's stamps (its idle consumers poll at least once a second).

dramatiq keeps no count of completed messages: the progress count is read from the harness journals
(harness.hosted.tally).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import dq_name, xq_name
from dramatiq.middleware import CurrentMessage, Middleware

from harness.adapters.base import AdapterUnavailable, FinalState, QueueOptions, TaskSpec
from harness.adapters.promises import Promises
from harness.agents.common import URL_ENV
from harness.hosted.base import QUEUE_NAME_ENV, HostedAdapter, WorkerCommand, WorkerLaunch, hosted_payload
from harness.hosted.handler import current
from harness.hosted.tally import JournalTally
from harness.peers.blocking import BlockingCalls

ACTOR = "harness_run"
NAMESPACE = "dramatiq"  # RedisBroker's default namespace: every key starts with it
SETTINGS_ENV = "HARNESS_DRAMATIQ"
# dramatiq's defaults (dramatiq/brokers/redis.py).
DEFAULT_HEARTBEAT_TIMEOUT_MS = 60_000
DEFAULT_MAINTENANCE_CHANCE = 1000
RETRIES_EXHAUSTED = "retries exhausted"
# The harness's own clients (producers, the runner) give up on a reply after this long.
CLIENT_SOCKET_TIMEOUT_S = 5.0
# The worker's client is redis-py's default, with no socket timeout: a reply held by a fault arrives
# when the fault ends (the harness holds replies at most 6 s), one that was dropped never does.
WORKER_REPLY_BOUND_S = 10.0


@dataclass(frozen=True, kw_only=True, slots=True)
class DramatiqSettings:
    """What a variant changes: the broker's heartbeat timeout and maintenance chance."""

    heartbeat_timeout_ms: int = DEFAULT_HEARTBEAT_TIMEOUT_MS
    maintenance_chance: int = DEFAULT_MAINTENANCE_CHANCE

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> DramatiqSettings:
        raw = os.environ.get(SETTINGS_ENV)
        return cls(**json.loads(raw)) if raw else cls()


def make_broker(url: str, settings: DramatiqSettings, **connection: Any) -> RedisBroker:
    """The broker a dramatiq user builds for these settings (RedisBroker's own defaults otherwise)."""
    pool = redis.ConnectionPool.from_url(url, **connection)
    client = redis.Redis(connection_pool=pool)
    # dramatiq's RedisBroker.__init__ carries no annotations.
    return RedisBroker(client=client, heartbeat_timeout=settings.heartbeat_timeout_ms,  # type: ignore[no-untyped-call]
                       maintenance_chance=settings.maintenance_chance)  # fmt: skip


def run(payload: dict[str, Any]) -> None:
    """The harness's handler as a dramatiq worker thread runs it. The Retries middleware counts the
    failed tries of a message in its `retries` option (absent before the first); dramatiq counts no
    deliveries. The message id (the tid) is kept across retries and delays."""
    message = CurrentMessage.get_current_message()
    assert message is not None, "run() is the harness's dramatiq actor (CurrentMessage is installed)"
    attempt = int(message.options.get("retries", 0))
    current().run_sync(payload, attempt=attempt, delivered_id=message.message_id)


class _Ready(Middleware):
    """dramatiq's own hook for a worker process whose threads have started."""

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        current().ready()


def setup_worker() -> None:
    """`dramatiq harness.peers.dramatiq:setup_worker`: dramatiq calls it in each worker process, then
    runs the global broker it set, with the harness's actor on this run's queue."""
    broker = make_broker(os.environ[URL_ENV], DramatiqSettings.from_env())
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(_Ready())
    dramatiq.set_broker(broker)
    dramatiq.Actor(run, broker=broker, actor_name=ACTOR, queue_name=os.environ[QUEUE_NAME_ENV], priority=0,
                   options={})  # fmt: skip


class DramatiqAdapter:
    """dramatiq under the harness: its client to send, its Redis structures to read."""

    socket_timeout_s = WORKER_REPLY_BOUND_S

    def __init__(self, variant: str, settings: DramatiqSettings) -> None:
        self.name = f"peer:dramatiq:{variant}"
        self.settings = settings
        self.promises = _promises(settings)
        self._options = QueueOptions()
        self._name = ""
        self._broker: RedisBroker | None = None
        self._actor: dramatiq.Actor[Any, Any] | None = None
        # dramatiq's client is synchronous: one thread talks to Redis, in order.
        self._call = BlockingCalls("dramatiq", (dramatiq.BrokerConnectionError,))
        self._tally = JournalTally()

    async def connect(self, url: str, queue_name: str, options: QueueOptions) -> None:
        self._options, self._name = options, queue_name
        self._broker = make_broker(url, self.settings, socket_timeout=CLIENT_SOCKET_TIMEOUT_S,
                                   socket_connect_timeout=CLIENT_SOCKET_TIMEOUT_S)  # fmt: skip
        self._actor = dramatiq.Actor(run, broker=self._broker, actor_name=ACTOR, queue_name=queue_name, priority=0,
                                     options={})  # fmt: skip
        try:
            await self._call(self._broker.client.ping)
        except AdapterUnavailable:
            # The agents call connect again on the same adapter (harness.agents.common.connect): keep the
            # client's thread, drop its connections.
            self._broker.client.close()
            raise

    async def close(self) -> None:
        if self._broker is not None:
            await self._call(self._broker.client.close)
        self._call.shutdown()

    def _backoff_ms(self) -> tuple[int, int]:
        """The Retries middleware's backoff range, from the scenario (its default is 15 s to 7 days: a
        retried task would outlast the run). 0 means the default to the middleware, hence at least 1 ms."""
        low = max(1, round(self._options.retry_base_delay_s * 1000))
        return low, max(low, round(self._options.retry_max_delay_s * 1000))

    async def enqueue(self, tasks: list[TaskSpec]) -> None:
        broker, actor = self._broker, self._actor
        assert broker is not None and actor is not None, "connect first"
        low_ms, high_ms = self._backoff_ms()
        messages = [
            actor.message_with_options(args=(hosted_payload(task),), max_retries=task.max_retries, min_backoff=low_ms,
                                       max_backoff=high_ms).copy(message_id=task.tid)
            for task in tasks
        ]  # fmt: skip

        def send() -> None:
            for message in messages:
                broker.enqueue(message)

        await self._call(send)

    def worker(self, launch: WorkerLaunch) -> WorkerCommand:
        self._tally.watch(launch.journal)
        shutdown_ms = max(1, round(launch.options.shutdown_timeout_s * 1000))
        argv = [
            sys.executable, "-m", "dramatiq", f"{__name__}:setup_worker", "--processes", "1",
            "--threads", str(launch.concurrency), "--worker-shutdown-timeout", str(shutdown_ms),
        ]  # fmt: skip
        return WorkerCommand(argv=argv, env={SETTINGS_ENV: self.settings.to_env()})

    # -- reading dramatiq's structures ----------------------------------------------------------

    async def depth(self) -> dict[str, int]:
        keys = _Keys(self._name)
        client = self._client()

        def read() -> dict[str, int]:
            brokers = _ids(client.zrange(keys.heartbeats, 0, -1))
            with client.pipeline(transaction=False) as pipe:
                pipe.llen(keys.queue)
                pipe.llen(keys.delayed)
                pipe.zcard(keys.dead)
                for broker_id in brokers:
                    pipe.scard(keys.acks(broker_id, keys.name))
                    pipe.scard(keys.acks(broker_id, keys.delayed_name))
                found = [int(n) for n in pipe.execute()]
            held = found[3:]
            return {"ready": found[0], "pending": sum(held[0::2]), "delayed": found[1] + sum(held[1::2]),
                    "dead": found[2]}  # fmt: skip

        counts: dict[str, int] = await self._call(read)
        counts["completed"] = self._tally.completed()
        return counts

    def _client(self) -> redis.Redis:
        assert self._broker is not None, "connect first"
        return self._broker.client

    async def final_state(self) -> FinalState:
        keys = _Keys(self._name)
        client = self._client()
        snapshot: _Snapshot = await self._call(lambda: _Snapshot.read(client, keys))
        return snapshot.state()


@dataclass(frozen=True, slots=True)
class _Keys:
    """dramatiq's key names for one queue (dispatch.lua), under the default namespace."""

    name: str

    @property
    def delayed_name(self) -> str:
        return dq_name(self.name)

    @property
    def queue(self) -> str:
        return f"{NAMESPACE}:{self.name}"

    @property
    def delayed(self) -> str:
        return f"{NAMESPACE}:{self.delayed_name}"

    @property
    def dead(self) -> str:
        return f"{NAMESPACE}:{xq_name(self.name)}"

    @property
    def heartbeats(self) -> str:
        return f"{NAMESPACE}:__heartbeats__"

    def acks(self, broker_id: str, queue_name: str) -> str:
        return f"{NAMESPACE}:__acks__.{broker_id}.{queue_name}"

    def bodies(self, key: str) -> str:
        return f"{key}.msgs"


@dataclass(slots=True)
class _Snapshot:
    """Every message id of a queue by where it is, and the bodies, read in one pipeline."""

    ready: list[str]
    delayed: list[str]
    held: dict[str, list[str]]  # broker id -> ids in its acks set for the queue
    held_delayed: list[str]
    dead: list[str]
    bodies: dict[str, dict[str, Any]]  # message id -> decoded body (queue and delay queue)
    dead_bodies: dict[str, dict[str, Any]]

    @classmethod
    def read(cls, client: redis.Redis, keys: _Keys) -> _Snapshot:
        brokers = _holders(client, keys)
        with client.pipeline(transaction=True) as pipe:  # one consistent view
            pipe.lrange(keys.queue, 0, -1)
            pipe.lrange(keys.delayed, 0, -1)
            pipe.zrange(keys.dead, 0, -1)
            pipe.hgetall(keys.bodies(keys.queue))
            pipe.hgetall(keys.bodies(keys.delayed))
            pipe.hgetall(keys.bodies(keys.dead))
            for broker_id in brokers:
                pipe.smembers(keys.acks(broker_id, keys.name))
                pipe.smembers(keys.acks(broker_id, keys.delayed_name))
            ready, delayed, dead, bodies, delayed_bodies, dead_bodies, *acks = pipe.execute()
        held = {broker_id: _ids(acks[2 * i]) for i, broker_id in enumerate(brokers) if acks[2 * i]}
        held_delayed = [m for i in range(len(brokers)) for m in _ids(acks[2 * i + 1])]
        return cls(
            ready=_ids(ready), delayed=_ids(delayed), held=held, held_delayed=held_delayed, dead=_ids(dead),
            bodies={**_decoded(bodies), **_decoded(delayed_bodies)}, dead_bodies=_decoded(dead_bodies),
        )  # fmt: skip

    def state(self) -> FinalState:
        foreign = 0

        def task(message_id: str, bodies: dict[str, dict[str, Any]]) -> tuple[str, int] | None:
            nonlocal foreign
            payload = _payload(bodies.get(message_id))
            if payload is None:
                foreign += 1
                return None
            return str(payload["tid"]), int(payload.get("prio", 2))

        ready = [t for m in self.ready if (t := task(m, self.bodies)) is not None]
        pending = [(t[0], t[1], broker_id) for broker_id, ids in self.held.items() for m in ids
                   if (t := task(m, self.bodies)) is not None]  # fmt: skip
        # A body in the hash whose id is in no list and no acks set is never handed out again.
        placed = {*self.ready, *self.delayed, *self.held_delayed, *(m for ids in self.held.values() for m in ids)}
        pending += [(t[0], t[1], "orphan: in .msgs only") for m in self.bodies if m not in placed
                    if (t := task(m, self.bodies)) is not None]  # fmt: skip
        delayed = [t[0] for m in (*self.delayed, *self.held_delayed) if (t := task(m, self.bodies)) is not None]
        dead = [_dead(self.dead_bodies[m]) for m in self.dead if _payload(self.dead_bodies.get(m)) is not None]
        foreign += sum(1 for m in self.dead if _payload(self.dead_bodies.get(m)) is None)
        stats = {"ready": len(self.ready), "held": sum(len(ids) for ids in self.held.values()),
                 "delayed": len(self.delayed) + len(self.held_delayed), "dead": len(self.dead),
                 "bodies": len(self.bodies), "holders": len(self.held)}  # fmt: skip
        return FinalState(ready=ready, pending=pending, delayed=delayed, dead=dead, foreign=foreign, stats=stats)


def _holders(client: redis.Redis, keys: _Keys) -> list[str]:
    """Every broker id with an acks set for the queue or its delay queue: the heartbeating ones, and any
    other a SCAN finds (once, at the final read; maintenance drops a broker from the heartbeats only when
    it holds nothing, but the final read should not depend on that)."""
    prefix = f"{NAMESPACE}:__acks__."
    found = set(_ids(client.zrange(keys.heartbeats, 0, -1)))
    for queue_name in (keys.name, keys.delayed_name):
        for key in client.scan_iter(match=keys.acks("*", queue_name), count=1000):
            found.add(key.decode()[len(prefix) :].split(".", 1)[0])
    return sorted(found)


def _ids(raw: Any) -> list[str]:
    return [item.decode() for item in raw]


def _decoded(bodies: dict[bytes, bytes]) -> dict[str, dict[str, Any]]:
    found = {}
    for key, body in bodies.items():
        try:
            found[key.decode()] = json.loads(body)
        except ValueError:  # not a dramatiq message: counted as foreign where it is referenced
            continue
    return found


def _payload(body: dict[str, Any] | None) -> dict[str, Any] | None:
    args = body.get("args") if isinstance(body, dict) else None
    payload = args[0] if isinstance(args, list) and args else None
    return payload if isinstance(payload, dict) and "tid" in payload else None


def _dead(body: dict[str, Any]) -> tuple[str, str, int, int]:
    """A dead-lettered message. The nack moves the body as it was last enqueued: the Retries middleware
    wrote in it the failed tries before the last one (`retries`, equal to max_retries once they ran
    out) and the traceback of the one before the last (none when max_retries is 0); the last try's own
    count and error are never stored (errors: -1, not recorded)."""
    payload = _payload(body) or {}
    options = body.get("options") or {}
    retried = int(options.get("retries", 0))
    budget = int(options.get("max_retries", payload.get("max_retries", 0)))
    lines = str(options.get("traceback", "")).strip().splitlines()
    error = f"last stored error: {lines[-1]}" if lines else "no error stored"
    reason = f"{RETRIES_EXHAUSTED} ({error})" if retried >= budget else error
    return str(payload.get("tid", body.get("message_id", "?"))), reason, retried, -1


def _promises(settings: DramatiqSettings) -> Promises:
    # dramatiq's docs (best_practices "Retriable Actors": "actors may receive the same message multiple
    # times in the event of a worker failure"; cookbook/guide: Retries middleware, dead letters) and
    # its code (dispatch.lua: acks by message id from the broker's own set, no owner check beyond that
    # set; unacked messages of a broker silent past heartbeat_timeout are put back by maintenance;
    # worker.py: the actor priority only orders a worker's local queue; prefetch of 2 x threads).
    # A live worker's stamps keep its messages: a renewed lease, while the process runs.
    heartbeat_s = settings.heartbeat_timeout_ms / 1000
    return Promises(
        delivery="at-least-once", priorities=False, fifo=False, retries=True, dlq=True, ownership_checked=False,
        renews_lease=True, visibility_timeout_s=heartbeat_s,
        defaults=f"RedisBroker(heartbeat_timeout={settings.heartbeat_timeout_ms} ms, "
        f"maintenance_chance={settings.maintenance_chance}/1,000,000), default middleware (Retries with the "
        "message's max_retries, backoff from the scenario), dramatiq --processes 1 --threads N, prefetch 2N",
        notes="dramatiq #692 (a worker that cannot stamp its heartbeat past the timeout has its messages run "
        "again), #431 (a delayed message is copied to its queue, then acked: two steps), #527 (unacked "
        "messages come back only after the heartbeat timeout, by a maintenance run on 0.1% of commands)",
    )  # fmt: skip


VARIANTS: dict[str, Callable[[], HostedAdapter]] = {
    "default": lambda: DramatiqAdapter("default", DramatiqSettings()),
    "short-heartbeat": lambda: DramatiqAdapter(
        "short-heartbeat", DramatiqSettings(heartbeat_timeout_ms=3000, maintenance_chance=100_000)
    ),
}
