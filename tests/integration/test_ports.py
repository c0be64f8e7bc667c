"""Servers the harness starts survive another process taking their port first (a CI failure: a Sentinel's
port, chosen from the kernel's ephemeral range, was taken by a client's outgoing connection)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from harness.errors import SetupError
from harness.providers import ReplicatedRedis, make_provider
from harness.providers.local import LocalRedis, free_port
from harness.providers.replicated import SERVICE


@contextmanager
def listening_on(port: int) -> Iterator[None]:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        yield


def test_chosen_ports_lie_below_the_range_outgoing_connections_use() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert all(10_000 <= free_port() < low for _ in range(50))
    assert all(free_port(bus_offset=10_000) + 10_000 < low for _ in range(50))


def test_a_port_taken_before_the_first_start_is_chosen_again(tmp_path: Path) -> None:
    server = LocalRedis(tmp_path)
    taken = server.port
    with listening_on(taken), server:
        assert server.port != taken and server.starts == 1
        with redis.Redis(port=server.port) as client:
            assert client.ping()
        chosen = server.port
        server.restart()
        assert (server.port, server.starts) == (chosen, 2)  # a restart keeps its port: clients know it


def test_a_port_given_is_kept_and_a_taken_one_is_named(tmp_path: Path) -> None:
    port = free_port()
    with listening_on(port), pytest.raises(SetupError, match="Address already in use"):
        LocalRedis(tmp_path, port=port).start()


def test_a_sentinel_and_a_replica_whose_ports_were_taken_start_elsewhere(tmp_path: Path) -> None:
    provider = make_provider("replicated:1", tmp_path)
    assert isinstance(provider, ReplicatedRedis)
    sentinel, replica = provider.sentinels[0], provider.nodes[1]
    taken = (sentinel.port, replica.port)
    with listening_on(taken[0]), listening_on(taken[1]):
        provider.start()
        try:
            assert sentinel.port != taken[0] and replica.port != taken[1]
            assert sentinel.primary_port(SERVICE) == provider.nodes[0].port
        finally:
            provider.stop()
