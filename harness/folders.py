"""Result folders: one new folder per run, benchmark or gate, named by time and what ran."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path


def stamped_folder(out: Path, *parts: str) -> Path:
    """Create and return out/<UTC time>-<parts>, with -2, -3... when that name is taken
    (several runs in one second). Queue specs' ':' and '/' become '-'."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    name = "-".join([stamp, *(part.replace(":", "-").replace("/", "-") for part in parts)])
    out.mkdir(parents=True, exist_ok=True)
    folder, n = out / name, 1
    while True:
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            n += 1
            folder = out / f"{name}-{n}"
