"""A TCP proxy between the agents and Redis, with faults that can be switched on and off.

This kernel has no netem, so latency, lost replies and broken connections are made here: one
listener per route (e.g. "producer", "consumer"), bound to 127.0.0.1, each forwarding to its
upstream Redis address. The proxy runs its own event loop in a thread of the runner, so nothing
the runner does (a blocking restart of redis-server) holds the traffic up.

Faults act per route, on each chunk read from either side, at the moment it is read:

- latency: every chunk waits latency_ms plus a uniform [0, jitter_ms]; order is kept.
- reply_delay_ms: replies (Redis to client) wait that much longer: past the client's socket
  timeout the client gives up (an `info` operation) while Redis did run the command.
- drop_replies: each reply chunk is dropped with this probability; its connection then stays
  silent (like a half-dead TCP path) until the client closes it.
- blackhole: nothing passes either way, and connections made meanwhile stay silent.
- refuse: new connections are reset at once. `reset()` resets the open ones (TCP RST).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import socket
import struct
import threading
import time
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.errors import SetupError

CHUNK_BYTES = 65536


@dataclass(frozen=True, kw_only=True, slots=True)
class ProxyFaults:
    """What a route does to its traffic; the default passes everything at once."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    reply_delay_ms: float = 0.0
    drop_replies: float = 0.0
    blackhole: bool = False
    refuse: bool = False

    def __post_init__(self) -> None:
        if min(self.latency_ms, self.jitter_ms, self.reply_delay_ms) < 0:
            raise SetupError("proxy latency, jitter and reply delay must not be negative")
        if not 0 <= self.drop_replies <= 1:
            raise SetupError(f"drop_replies is a probability in [0, 1], got {self.drop_replies}")


HEALTHY = ProxyFaults()


@dataclass(eq=False, slots=True)
class _Link:
    """One client connection and its upstream connection."""

    route: str
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    silent: bool = False  # a reply was dropped, or a black hole swallowed data: nothing passes any more
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def close(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                writer.close()

    def abort(self) -> None:
        """TCP RST on both sides (SO_LINGER 0, then close)."""
        for writer in (self.client, self.upstream):
            if writer is not None:
                _reset(writer)


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    """Routes (name -> upstream host and port), each served on a listener of its own on 127.0.0.1."""

    def __init__(self, upstreams: Mapping[str, tuple[str, int]], *, seed: int = 0) -> None:
        if not upstreams:
            raise SetupError("a FaultProxy needs at least one route (name -> upstream host, port)")
        self._upstreams = dict(upstreams)
        self._faults: dict[str, ProxyFaults] = dict.fromkeys(self._upstreams, HEALTHY)
        self._addresses: dict[str, tuple[str, int]] = {}
        self._links: set[_Link] = set()
        self._rng = random.Random(f"proxy:{seed}")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[asyncio.Server] = []
        self.counts = {"connections": 0, "dropped_chunks": 0, "resets": 0}

    # -- control (any thread) -----------------------------------------------------------------

    def start(self, timeout_s: float = 5.0) -> None:
        if self._thread is not None:
            return
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="fault-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(timeout_s) or len(self._addresses) != len(self._upstreams):
            self.stop()
            raise SetupError(f"the fault proxy did not start within {timeout_s}s: is 127.0.0.1 usable here?")

    def address(self, route: str) -> tuple[str, int]:
        """Where agents of `route` connect (127.0.0.1 and a free port)."""
        try:
            return self._addresses[route]
        except KeyError:
            raise SetupError(f"the proxy has no route {route!r} (routes: {sorted(self._upstreams)})") from None

    @property
    def routes(self) -> list[str]:
        return sorted(self._upstreams)

    def faults(self, route: str) -> ProxyFaults:
        return self._faults[route]

    def set_faults(self, faults: ProxyFaults, routes: Iterable[str] | None = None) -> None:
        """Switch the faults of `routes` (default: all); healthy routes pass everything again."""
        chosen = self._chosen(routes)
        self._faults = {route: faults if route in chosen else now for route, now in self._faults.items()}

    def heal(self) -> None:
        self.set_faults(HEALTHY)

    def reset(self, routes: Iterable[str] | None = None, timeout_s: float = 5.0) -> int:
        """TCP RST every open connection of `routes` (default: all); returns how many."""
        chosen = self._chosen(routes)
        return self._call(self._reset_links(chosen), timeout_s)

    def open_connections(self, routes: Iterable[str] | None = None) -> int:
        chosen = self._chosen(routes)
        return sum(1 for link in list(self._links) if link.route in chosen)

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if thread.is_alive():
            with contextlib.suppress(Exception):
                self._call(self._shutdown(), 5.0)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5.0)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _chosen(self, routes: Iterable[str] | None) -> set[str]:
        chosen = set(self._upstreams if routes is None else routes)
        unknown = chosen - set(self._upstreams)
        if unknown:
            raise SetupError(f"the proxy has no route(s) {sorted(unknown)}: use {sorted(self._upstreams)}")
        return chosen

    def _call(self, coroutine: Coroutine[Any, Any, int], timeout_s: float) -> int:
        if self._loop is None:
            coroutine.close()
            raise SetupError("the fault proxy is not running: call start() first")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout_s)

    # -- the proxy's own thread ------------------------------------------------------------------

    def _serve(self, ready: threading.Event) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._listen())
        except OSError:
            ready.set()
            return
        ready.set()
        loop.run_forever()

    async def _listen(self) -> None:
        for route in self._upstreams:
            server = await asyncio.start_server(functools.partial(self._accept, route), host="127.0.0.1", port=0)
            self._servers.append(server)
            host, port = server.sockets[0].getsockname()[:2]
            self._addresses[route] = (host, port)

    async def _shutdown(self) -> int:
        for server in self._servers:
            server.close()
        links = list(self._links)
        tasks = [task for link in links for task in link.tasks]
        for link in links:
            link.abort()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return len(links)

    async def _reset_links(self, routes: set[str]) -> int:
        hit = [link for link in self._links if link.route in routes]
        for link in hit:
            link.abort()
        self.counts["resets"] += len(hit)
        return len(hit)

    async def _accept(self, route: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.counts["connections"] += 1
        faults = self._faults[route]
        if faults.refuse:
            _reset(writer)
            self.counts["resets"] += 1
            return
        link = _Link(route, writer)
        this = asyncio.current_task()
        if this is not None:
            link.tasks.append(this)  # so that stop() can cancel the whole connection
        self._links.add(link)
        try:
            await self._forward(link, reader, faults)
        except asyncio.CancelledError:
            pass  # the proxy is stopping; asyncio's stream callback would report a cancelled handler
        finally:
            self._links.discard(link)
            link.close()

    async def _forward(self, link: _Link, reader: asyncio.StreamReader, faults: ProxyFaults) -> None:
        if faults.blackhole:
            link.silent = True  # the client believes it is connected; nothing will ever answer
            await self._pump(link, reader, None, reply=False)
            return
        try:
            up_reader, link.upstream = await asyncio.open_connection(*self._upstreams[link.route])
        except OSError:
            _reset(link.client)  # as a refused connection looks to the client
            return
        link.tasks.append(asyncio.create_task(self._pump(link, up_reader, link.client, reply=True)))
        await self._pump(link, reader, link.upstream, reply=False)

    async def _pump(
        self, link: _Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None, *, reply: bool
    ) -> None:
        """Copy one direction, chunk by chunk, through a queue that keeps order under delays."""
        outbox: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        sender = None
        if writer is not None:
            sender = asyncio.create_task(self._send(outbox, writer))
            link.tasks.append(sender)
        due = 0.0
        try:
            while data := await reader.read(CHUNK_BYTES):
                if link.silent or writer is None:
                    continue
                faults = self._faults[link.route]
                if faults.blackhole or (reply and faults.drop_replies and self._rng.random() < faults.drop_replies):
                    link.silent = True
                    self.counts["dropped_chunks"] += 1
                    continue
                delay_ms = faults.latency_ms + (faults.reply_delay_ms if reply else 0.0)
                if faults.jitter_ms:
                    delay_ms += self._rng.uniform(0, faults.jitter_ms)
                due = max(due, time.monotonic() + delay_ms / 1000)
                outbox.put_nowait((due, data))
        except (ConnectionError, OSError):
            pass
        finally:
            outbox.put_nowait(None)  # end of stream: the other side is closed once the queue is sent
            if sender is not None:
                await sender

    @staticmethod
    async def _send(outbox: asyncio.Queue[tuple[float, bytes] | None], writer: asyncio.StreamWriter) -> None:
        try:
            while (item := await outbox.get()) is not None:
                due, data = item
                wait_s = due - time.monotonic()
                if wait_s > 0:
                    await asyncio.sleep(wait_s)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
