"""Where each peer library is installed, and running a command there.

The peers' Redis clients cannot share one environment (arq pins redis-py < 6, taskiq-redis
>= 8): the `peers` extra goes into the checkout's main environment (.venv), `peers-redis5`
(arq, saq) into .venv-redis5 beside it. A harness command that names a peer whose library is
missing here, but present in its own environment, runs again in that environment, transparently:
the runner, producers and workers then all import the same versions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

from harness.errors import SetupError
from harness.peers import PEERS, Peer, installed_versions, peer_variants

REPO_ROOT = Path(__file__).resolve().parents[2]
# extra -> the environment's folder under the checkout; an extra not named here goes into .venv.
ENVIRONMENTS = {"peers": ".venv", "peers-redis5": ".venv-redis5"}
# Set in the environment of a command run again elsewhere, so that it never bounces twice.
DELEGATED_ENV = "HARNESS_PEER_ENV"


def environment_of(peer: Peer) -> Path:
    return REPO_ROOT / ENVIRONMENTS.get(peer.extra, ".venv")


def _importable(peer: Peer) -> bool:
    module = next(iter(peer.requires)).replace("-", "_")
    return find_spec(module) is not None


def peer_of(queue: str) -> Peer | None:
    if not queue.startswith("peer:"):
        return None
    return PEERS.get(queue.removeprefix("peer:").partition(":")[0])


def describe(peer: Peer) -> tuple[str, list[str]]:
    """The installed versions and the variants of a peer, asked of its own environment when its library
    is not importable here (arq and saq live in .venv-redis5)."""
    python = environment_of(peer) / "bin" / "python"
    if _importable(peer) or not python.exists():
        return installed_versions(peer), peer_variants(peer)
    ask = ("import json; from harness.peers import PEERS, installed_versions, peer_variants; "
           f"p = PEERS[{peer.name!r}]; print(json.dumps([installed_versions(p), peer_variants(p)]))")  # fmt: skip
    done = subprocess.run([str(python), "-c", ask], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        return installed_versions(peer), []
    versions, variants = json.loads(done.stdout)
    return str(versions), [str(v) for v in variants]


def run_in_peer_environment(queue: str) -> None:
    """If `queue` is a peer whose library lives in another environment of this checkout, replace this
    process with the same command run there. Returns when the library is importable here (or when the
    other environment does not exist: the adapter then says which extra to install)."""
    peer = peer_of(queue)
    if peer is None or _importable(peer) or os.environ.get(DELEGATED_ENV):
        return
    python = environment_of(peer) / "bin" / "python"
    if not python.exists():
        return
    print(f"harness: peer {peer.name} lives in {python.parent.parent.name}: running there", file=sys.stderr)
    sys.stderr.flush()
    os.environ[DELEGATED_ENV] = peer.extra
    os.execv(python, [str(python), "-m", "harness", *sys.argv[1:]])


def install(peers: list[Peer], *, quiet: bool = True) -> list[Path]:
    """Create or update the environments these peers live in, with the package and their extra."""
    done: list[Path] = []
    for extra in sorted({peer.extra for peer in peers}):
        folder = REPO_ROOT / ENVIRONMENTS.get(extra, ".venv")
        if not (folder / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        command = [str(folder / "bin" / "python"), "-m", "pip", "install", *(["-q"] if quiet else []),
                   "-e", f"{REPO_ROOT}[test,{extra}]"]  # fmt: skip
        if subprocess.run(command, check=False).returncode != 0:
            raise SetupError(f"could not install the extra {extra!r} into {folder}: see pip's output above")
        done.append(folder)
    return done
