"""Opens Redis connections with the defaults taskq relies on, for one server, a Sentinel-watched
primary, or a Redis Cluster.

    redis://[user:password@]host:port/db          one server (rediss:// for TLS, unix:// for a socket)
    redis+sentinel://[user:password@]h1:p1,h2:p2,.../SERVICE[/db][?sentinel_password=...]
                                                   the primary the Sentinels name for SERVICE; the client
                                                   asks them again whenever it opens a connection, so it
                                                   follows a failover
    redis+cluster://[user:password@]h1:p1[,h2:p2...]/
                                                   a Redis Cluster, found from any of its nodes

The user and password in a Sentinel or Cluster URL are those of the data nodes; Sentinels are
asked without one unless `sentinel_password` (and `sentinel_username`) say otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias
from urllib.parse import parse_qs, unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from taskq.errors import ConfigError

REDACTED = "***"
SENTINEL_SCHEME: Final = "redis+sentinel"
CLUSTER_SCHEME: Final = "redis+cluster"
Client: TypeAlias = aioredis.Redis | RedisCluster
_URL_HELP: Final = (
    "use redis://[user:password@]host:port/db (rediss:// for TLS), "
    "redis+sentinel://host:port[,host:port...]/SERVICE[/db], or redis+cluster://host:port[,host:port...]/"
)


def redacted(url: str) -> str:
    """`url` with its password replaced by ***, for error messages, logs and saved plans."""
    url = re.sub(r"(//[^/@:]*:)[^/?#]*@", rf"\1{REDACTED}@", url)  # up to the last @ of the host part
    return re.sub(r"([?&](?:sentinel_)?password=)[^&]*", rf"\1{REDACTED}", url)


@dataclass(frozen=True, slots=True)
class Topology:
    """What a Sentinel or Cluster URL names."""

    kind: str  # "sentinel" or "cluster"
    hosts: tuple[tuple[str, int], ...]
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_auth: dict[str, str] = field(default_factory=dict)


def topology_of(url: str) -> Topology | None:
    """The Sentinel or Cluster topology `url` names, or None for a single server's URL."""
    scheme = url.partition("://")[0].lower()
    if scheme not in (SENTINEL_SCHEME, CLUSTER_SCHEME):
        return None
    parts = urlsplit(url)
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    hosts = tuple(_host_port(item, url) for item in hostlist.split(",") if item)
    if not hosts:
        raise ConfigError(f"{redacted(url)!r} names no host: {_URL_HELP}")
    path = [segment for segment in parts.path.split("/") if segment]
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    common: dict[str, Any] = {
        "hosts": hosts, "username": unquote(username) or None, "password": unquote(password) if userinfo else None,
    }  # fmt: skip
    if scheme == CLUSTER_SCHEME:
        if path:
            raise ConfigError(f"{redacted(url)!r}: a cluster URL has no path (a cluster has one database): {_URL_HELP}")
        return Topology("cluster", **common)
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ConfigError(f"{redacted(url)!r} must name the Sentinel service (and optionally a db): {_URL_HELP}")
    auth = {k.removeprefix("sentinel_"): v for k, v in query.items() if k in ("sentinel_username", "sentinel_password")}
    return Topology("sentinel", service=unquote(path[0]), db=int(path[1]) if len(path) == 2 else 0,
                    sentinel_auth=auth, **common)  # fmt: skip


def _host_port(item: str, url: str) -> tuple[str, int]:
    host, _, port = item.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"{redacted(url)!r}: {item!r} is not host:port: {_URL_HELP}")
    return host.strip("[]"), int(port)


def open_redis(url: str, *, socket_timeout_s: float) -> Client:
    """A client for `url` (see the module docstring).

    redis-py resends a command after a connection error by default; for a write that
    may already have run (an enqueue) that is a silent duplicate, so taskq turns those
    retries off and decides per operation what is safe to repeat. A cluster client still
    follows MOVED and ASK redirections and waits out TRYAGAIN: the command did not run then.
    """
    options: dict[str, Any] = {
        "protocol": 2, "retry": Retry(NoBackoff(), 0), "socket_timeout": socket_timeout_s,
        "socket_connect_timeout": min(socket_timeout_s, 5.0),
    }  # fmt: skip
    try:
        topology = topology_of(url)
        if topology is None:
            return aioredis.Redis.from_url(url, **options)
    except ValueError as exc:
        raise ConfigError(f"invalid Redis URL {redacted(url)!r} ({exc}); {_URL_HELP}") from exc
    auth: dict[str, Any] = {"username": topology.username, "password": topology.password}
    if topology.kind == "cluster":
        nodes = [ClusterNode(host, port) for host, port in topology.hosts]
        return RedisCluster(startup_nodes=nodes, require_full_coverage=False, **auth, **options)
    sentinel_options = {key: value for key, value in options.items() if key.startswith("socket_")}
    sentinels = Sentinel(  # type: ignore[no-untyped-call]
        list(topology.hosts), sentinel_kwargs={**sentinel_options, **topology.sentinel_auth}
    )
    client: aioredis.Redis = sentinels.master_for(
        topology.service, check_connection=True, db=topology.db, **auth, **options
    )
    return client


def is_cluster(client: Client) -> bool:
    return isinstance(client, RedisCluster)


async def close_redis(client: Client) -> None:
    """Close `client`, and for a Sentinel-watched primary the connections to the Sentinels too."""
    await client.aclose()
    manager = getattr(getattr(client, "connection_pool", None), "sentinel_manager", None)
    if isinstance(manager, Sentinel):
        await manager.aclose()
