"""Wake-ups at due times with sub-millisecond precision, for the open-loop producer.

asyncio's epoll waits in whole milliseconds, rounded up: a batch due in 0.3 ms goes
out a millisecond later, and since latency counts from the due time, that lateness
would be charged to the queue. The pacer's thread sleeps on the high-resolution clock
instead and wakes the loop through its self-pipe; the loop itself never blocks.
Far-off due times are waited for with the loop's own timer first.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import heapq
import itertools
import threading
import time

# Closer than this, the pacer's thread times the wait; farther, the event loop gets close first.
FINE_NS = 3_000_000
PR_SET_TIMERSLACK = 29


def _tight_timer_slack() -> None:
    """Linux lets a sleeping thread wake up to 50 µs late (its timer slack); 1 µs for this one."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_TIMERSLACK, 1000, 0, 0, 0)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():  # cancelled meanwhile (the producer was told to stop)
        future.set_result(None)


class Pacer:
    """One thread with a heap of due times; `await pacer.until(due_ns)` returns just after due_ns."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._heap: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="pacer", daemon=True)
        self._thread.start()

    async def until(self, due_ns: int) -> None:
        wait_ns = due_ns - time.monotonic_ns()
        if wait_ns > FINE_NS:
            await asyncio.sleep((wait_ns - FINE_NS) / 1e9)
            wait_ns = due_ns - time.monotonic_ns()
        if wait_ns <= 0:
            return
        future: asyncio.Future[None] = self._loop.create_future()
        with self._changed:
            heapq.heappush(self._heap, (due_ns, next(self._order), future))
            self._changed.notify()
        await future

    def _run(self) -> None:
        _tight_timer_slack()
        with self._changed:
            while not self._closed:
                if not self._heap:
                    self._changed.wait()
                    continue
                wait_ns = self._heap[0][0] - time.monotonic_ns()
                if wait_ns > 0:
                    self._changed.wait(wait_ns / 1e9)  # an earlier due time, or close(), wakes it sooner
                    continue
                _, _, future = heapq.heappop(self._heap)
                try:
                    self._loop.call_soon_threadsafe(_wake, future)
                except RuntimeError:  # the loop is closed: nobody is waiting any more
                    return

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()
        self._thread.join(timeout=1.0)
