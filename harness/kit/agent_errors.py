"""What a run's agents died of, read from agents.log: one line per distinct error, naming the adapter
method that raised it (the first frame past the agent's own code) instead of a stack trace.

A pull adapter's methods run inside the harness's producer and consumer processes; when one raises,
the agent dies, the runner starts another, and the verdict shows only the consequences (tasks lost,
a drain that never ends). These lines say the cause.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_FRAME = re.compile(r'^\s+File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)')
_AGENT_CODE = ("/harness/agents/", "/harness/hosted/")
_HARNESS_LINE = re.compile(r"^harness agent (?P<name>\S+): (?P<message>.*)$")
MAX_LINES = 5


@dataclass(frozen=True, slots=True)
class _Frame:
    file: str
    line: int
    func: str


def agent_errors(folder: Path) -> list[str]:
    """Distinct errors in folder/agents.log, most frequent first, each with its count."""
    log = folder / "agents.log"
    if not log.exists():
        return []
    found: Counter[str] = Counter()
    for error in _errors(log.read_text(errors="replace").splitlines()):
        found[error] += 1
    return [f"{error}" + (f" (x{count})" if count > 1 else "") for error, count in found.most_common(MAX_LINES)]


def _errors(lines: list[str]) -> list[str]:
    errors: list[str] = []
    frames: list[_Frame] | None = None
    for line in lines:
        if line.startswith("Traceback (most recent call last):"):
            frames = []
            continue
        if frames is None:
            if match := _HARNESS_LINE.match(line):
                errors.append(f"{match['name']}: {match['message']}")
            continue
        if match := _FRAME.match(line):
            frames.append(_Frame(match["file"], int(match["line"]), match["func"]))
        elif line and not line[0].isspace():
            if not line.startswith("During handling") and not line.startswith("The above exception"):
                errors.append(_describe(frames, line.strip()))
            frames = None
    return errors


def _describe(frames: list[_Frame], exception: str) -> str:
    """'the adapter's consume raised KeyError: 'tid' (tinyq_adapter.py:41)': the frame the agent called."""
    called = None
    for position, frame in enumerate(frames):
        if any(part in frame.file for part in _AGENT_CODE) and position + 1 < len(frames):
            nxt = frames[position + 1]
            if not any(part in nxt.file for part in _AGENT_CODE):
                called = nxt
    if called is not None:
        # The deepest line of the adapter's own file: where its code was when it raised.
        deepest = [f for f in frames if f.file == called.file][-1]
        return f"the adapter's {called.func} raised {exception} ({Path(deepest.file).name}:{deepest.line})"
    where = f" ({Path(frames[-1].file).name}:{frames[-1].line})" if frames else ""
    return f"an agent died of {exception}{where}"
