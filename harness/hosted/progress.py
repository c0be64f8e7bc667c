"""How far a hosted run has got when the library counts no completions: the handlers' own journals.

Faults planned by progress (`after_completed`) wait for a completion count, which the runner reads
from the adapter's depth(). A library that keeps no such counter (taskiq's list broker) would leave
those faults waiting forever; for it the runner counts the `complete` records its workers' handlers
journaled (harness.hosted.handler), reading each journal only from where it stopped last time.
"""

from __future__ import annotations

from pathlib import Path

# How the handler's complete record reads in a journal line (orjson keeps the record's key order).
_COMPLETE_OK = b'"type":"ok","f":"complete"'


class JournalCompletions:
    """Handler finishes journaled so far by the consumers whose journals live in `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._offsets: dict[Path, int] = {}
        self._count = 0

    def count(self) -> int:
        for journal in sorted(self.folder.glob("consumer-*.jsonl")):
            self._count += self._read_new(journal)
        return self._count

    def _read_new(self, journal: Path) -> int:
        start = self._offsets.get(journal, 0)
        try:
            with journal.open("rb") as f:
                f.seek(start)
                chunk = f.read()
        except FileNotFoundError:
            return 0
        # Only whole lines count; a line still being written is read again next time.
        end = chunk.rfind(b"\n") + 1
        self._offsets[journal] = start + end
        return chunk[:end].count(_COMPLETE_OK)
