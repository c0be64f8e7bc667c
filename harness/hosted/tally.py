"""Counting completions from a run's journals, for hosted libraries that keep no count of their own.

The runner asks a queue for its "completed" count (progress lines, and the barriers that strike a
fault once so many tasks completed). A library without a success counter or record (celery with no
result stored, dramatiq, huey) cannot answer; its adapter can count the handler finishes its
workers journaled instead. This reads only what was appended since the last call, so it stays cheap
at the runner's sampling rate. It counts handler ends, not acks: a progress figure, never judged.
"""

from __future__ import annotations

from pathlib import Path

# How a finished handler's reply record starts its "type" and "f" fields (harness.hosted.handler).
_COMPLETE_OK = b'"type":"ok","f":"complete"'


class JournalTally:
    """Completions journaled by the hosted workers of one run, read incrementally."""

    def __init__(self) -> None:
        self._folder: Path | None = None
        self._offsets: dict[Path, int] = {}
        self._count = 0

    def watch(self, journal: Path) -> None:
        """Count the journals beside `journal` (one worker's journal: its folder holds them all)."""
        self._folder = journal.parent

    def completed(self) -> int:
        """Completions so far (0 before any worker started)."""
        if self._folder is None:
            return 0
        for path in self._folder.glob("consumer-*.jsonl"):
            self._count += self._read_new(path)
        return self._count

    def _read_new(self, path: Path) -> int:
        offset = self._offsets.get(path, 0)
        try:
            with path.open("rb") as f:
                f.seek(offset)
                chunk = f.read()
        except FileNotFoundError:
            return 0
        end = chunk.rfind(b"\n") + 1  # a record being written has no newline yet: next time
        self._offsets[path] = offset + end
        return chunk[:end].count(_COMPLETE_OK)
