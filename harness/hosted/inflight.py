"""Tasks in progress, counted from a run's journals, for hosted libraries that keep no record of them.

A library that pops a task off its queue and runs it without acknowledgement (huey) has nothing in
Redis that says a task is running: its queue reads empty while the last tasks still run, and a drain
that ended then would stop the workers under them. Its adapter reports as "pending" the handlers that
started and have not finished, in the journal of each consumer slot's latest worker: an earlier
incarnation of a slot is dead (the fleet replaces a worker only once it is gone), and what it left
unfinished will never finish. A progress figure for the drain, never judged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# How a hosted handler's records start their "type" and "f" fields (harness.hosted.handler).
_STARTED = b'"type":"ok","f":"deliver"'
_FINISHED = (b'"type":"ok","f":"complete"', b'"type":"ok","f":"fail"')
_JOURNAL = re.compile(r"consumer-(\d+)#(\d+)\.jsonl")


@dataclass(slots=True)
class _Journal:
    offset: int = 0
    started: int = 0
    finished: int = 0


class JournalInFlight:
    """Handlers started and not finished in the latest worker of every consumer slot, read incrementally."""

    def __init__(self) -> None:
        self._folder: Path | None = None
        self._journals: dict[Path, _Journal] = {}

    def watch(self, journal: Path) -> None:
        """Count the journals beside `journal` (one worker's journal: its folder holds them all)."""
        self._folder = journal.parent

    def count(self) -> int:
        """Tasks started and not finished by the live incarnation of each slot (0 before any started)."""
        if self._folder is None:
            return 0
        latest: dict[int, tuple[int, Path]] = {}
        for path in self._folder.glob("consumer-*.jsonl"):
            match = _JOURNAL.fullmatch(path.name)
            if match is not None:
                slot, incarnation = int(match[1]), int(match[2])
                if slot not in latest or incarnation > latest[slot][0]:
                    latest[slot] = (incarnation, path)
        return sum(self._read_new(path) for _, path in latest.values())

    def _read_new(self, path: Path) -> int:
        journal = self._journals.setdefault(path, _Journal())
        try:
            with path.open("rb") as f:
                f.seek(journal.offset)
                chunk = f.read()
        except FileNotFoundError:
            return 0
        end = chunk.rfind(b"\n") + 1  # a record being written has no newline yet: next time
        journal.offset += end
        done = chunk[:end]
        journal.started += done.count(_STARTED)
        journal.finished += sum(done.count(pattern) for pattern in _FINISHED)
        return max(0, journal.started - journal.finished)
