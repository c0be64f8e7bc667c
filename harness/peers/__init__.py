"""Peers: other Redis task queue libraries, each run under the harness through its own worker.

One module per library (harness/peers/NAME.py), nothing else in it: a hosted adapter per
variant in its VARIANTS table, the library's defaults first (what its users run), then the
settings that change its guarantees. `--queue peer:NAME[:VARIANT]`.

The libraries are optional extras pinned to the versions tested here; their Redis client
requirements conflict (arq needs redis-py < 6, taskiq-redis >= 8), so some live in an
environment of their own (harness.peers.environments).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

from harness.errors import AdapterError
from harness.hosted.base import HostedAdapter

DEFAULT_VARIANT = "default"


@dataclass(frozen=True, kw_only=True, slots=True)
class Peer:
    name: str
    module: str
    # Distribution name -> the version tested here (pinned in the extra).
    requires: dict[str, str] = field(default_factory=dict)
    # The pyproject extra that installs it, and the environment it lives in (harness.peers.environments).
    extra: str = "peers"
    summary: str = ""


PEERS: dict[str, Peer] = {
    peer.name: peer
    for peer in (
        Peer(name="taskiq", module="harness.peers.taskiq",
             requires={"taskiq": "0.13.0", "taskiq-redis": "1.2.4"},
             summary="taskiq with taskiq-redis: RedisStreamBroker (Streams, acks) and ListQueueBroker (lists)"),
        Peer(name="streaq", module="harness.peers.streaq", requires={"streaq": "7.2.0"},
             summary="streaq: Redis Streams and Functions, asyncio (coredis)"),
        Peer(name="arq", module="harness.peers.arq", requires={"arq": "0.28.0"}, extra="peers-redis5",
             summary="arq: asyncio jobs in a sorted set, retries by job_try"),
        Peer(name="saq", module="harness.peers.saq", requires={"saq": "0.26.4"}, extra="peers-redis5",
             summary="saq: asyncio jobs in lists, sweeps stuck jobs"),
        Peer(name="celery", module="harness.peers.celery", requires={"celery": "5.7.0", "kombu": "5.7.0"},
             summary="celery with the Redis broker (kombu): prefork pool, early ack by default"),
        Peer(name="rq", module="harness.peers.rq", requires={"rq": "3.0.0"},
             summary="rq: lists, a forked work-horse per job, registries"),
        Peer(name="dramatiq", module="harness.peers.dramatiq", requires={"dramatiq": "2.2.1"},
             summary="dramatiq with the Redis broker: Lua-managed lists, heartbeats, a DLQ"),
        Peer(name="huey", module="harness.peers.huey", requires={"huey": "3.5.4"},
             summary="huey: RedisHuey lists, no acknowledgement by design"),
    )
}  # fmt: skip

_warned: set[str] = set()


def _check_installed(peer: Peer) -> None:
    for dist, tested in peer.requires.items():
        try:
            found = version(dist)
        except PackageNotFoundError:
            raise AdapterError(
                f"peer {peer.name} needs the {dist} package (tested: {tested}), which is not installed here: "
                f"install the extra '{peer.extra}' (pip install -e '.[{peer.extra}]'; "
                f"harness peers install {peer.name} sets up its environment)"
            ) from None
        if found != tested and dist not in _warned:
            _warned.add(dist)
            print(f"harness: {dist} {found} is installed; peer {peer.name} was tested with {tested}", file=sys.stderr)


def peer_factory(spec: str) -> Callable[[], HostedAdapter]:
    """The adapter factory for `NAME[:VARIANT]`; AdapterError names the choices or the extra to install."""
    name, _, variant = spec.partition(":")
    peer = PEERS.get(name)
    if peer is None:
        raise AdapterError(f"unknown peer {name!r}: use one of {', '.join(sorted(PEERS))}")
    _check_installed(peer)
    module = importlib.import_module(peer.module)
    variants: dict[str, Callable[[], HostedAdapter]] = module.VARIANTS
    chosen = variant or DEFAULT_VARIANT
    if chosen not in variants:
        raise AdapterError(f"unknown variant {chosen!r} of peer {name}: use one of {', '.join(variants)}")
    return variants[chosen]


def installed_versions(peer: Peer) -> str:
    found = []
    for dist in peer.requires:
        try:
            found.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            found.append(f"{dist} -")
    return ", ".join(found)


def peer_variants(peer: Peer) -> list[str]:
    """The variants of a peer whose library is importable here ([] otherwise)."""
    try:
        _check_installed(peer)
        module = importlib.import_module(peer.module)
    except (AdapterError, ImportError):
        return []
    return list(module.VARIANTS)
