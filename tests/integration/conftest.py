"""Topologies for the integration tests: one per test module (each takes seconds to start and sync)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.providers import ClusterRedis, ReplicatedRedis, make_provider


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicatedRedis]:
    provider = make_provider("replicated", tmp_path_factory.mktemp("replicated"))
    assert isinstance(provider, ReplicatedRedis)
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterRedis]:
    provider = make_provider("cluster", tmp_path_factory.mktemp("cluster"))
    assert isinstance(provider, ClusterRedis)
    provider.start()
    yield provider
    provider.stop()
