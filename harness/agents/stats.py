"""What an agent process measures of itself and writes when it exits: CPU time and HDR histograms.

Consumers record each task's enqueue-to-start and enqueue-to-complete latency (from
the due time the producer put in the payload), producers how late each batch went out
and how long its enqueue took. The histograms merge exactly across processes, so the
run's figures exist even when nothing was journaled (`--no-journal`), and CPU time per
role shows where a queue spends its cost. A killed process writes nothing; its
operations are in the history when journaling is on.

The file sits beside the journal: `journals/<process>.stats.json`.
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections import Counter
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

# The same range and precision as harness.report.latency, so the two merge.
LOWEST_US, HIGHEST_US, DIGITS = 1, 3_600_000_000, 3
SUFFIX = ".stats.json"


def stats_path(journal: Path) -> Path:
    return journal.with_name(journal.name.removesuffix(".jsonl") + SUFFIX)


class AgentStats:
    """Histograms (microseconds) and counters of one process, written once at exit. CPU time
    counts from when it was made (the agent connected): start-up and imports are left out."""

    def __init__(self, name: str, role: str) -> None:
        self.name, self.role = name, role
        self.histograms: dict[str, HdrHistogram] = {}
        self.counts: Counter[str] = Counter()
        self._start_s = time.monotonic()
        self._start_usage = resource.getrusage(resource.RUSAGE_SELF)

    def record_ns(self, histogram: str, value_ns: int) -> None:
        found = self.histograms.get(histogram)
        if found is None:
            found = self.histograms[histogram] = HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)
        found.record_value(min(HIGHEST_US, max(LOWEST_US, value_ns // 1000)))

    def as_dict(self) -> dict[str, Any]:
        usage, start = resource.getrusage(resource.RUSAGE_SELF), self._start_usage
        return {
            "name": self.name,
            "role": self.role,
            "pid": os.getpid(),
            "wall_s": round(time.monotonic() - self._start_s, 3),
            "cpu_user_s": round(usage.ru_utime - start.ru_utime, 3),
            "cpu_system_s": round(usage.ru_stime - start.ru_stime, 3),
            "startup_cpu_s": round(start.ru_utime + start.ru_stime, 3),
            "counts": dict(self.counts),
            "histograms": {name: h.encode().decode() for name, h in self.histograms.items()},
        }

    def write(self, journal: Path) -> None:
        path = stats_path(journal)
        partial = path.with_name(path.name + ".part")
        partial.write_text(json.dumps(self.as_dict()))
        partial.replace(path)  # readers never see half a file


def read_stats(folder: Path) -> list[dict[str, Any]]:
    """Every agent's stats file in a run folder's journals/ (none when the agents wrote none)."""
    found = []
    for path in sorted((folder / "journals").glob(f"*{SUFFIX}")):
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue  # a process killed mid-write leaves only the .part file; this is noise
    return found


def merged_histograms(stats: list[dict[str, Any]]) -> dict[str, HdrHistogram]:
    """The histograms of every process, merged by name."""
    merged: dict[str, HdrHistogram] = {}
    for entry in stats:
        for name, encoded in entry.get("histograms", {}).items():
            histogram = HdrHistogram.decode(encoded.encode())
            if name in merged:
                merged[name].add(histogram)
            else:
                total = merged[name] = HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)
                total.add(histogram)
    return merged
