"""Container tests need a Docker engine: without one they skip, saying how to get one."""

from __future__ import annotations

import pytest

from harness.errors import SetupError
from harness.providers.image import docker_client


@pytest.fixture(scope="session")
def docker_engine() -> None:
    try:
        docker_client().close()
    except SetupError as exc:
        pytest.skip(f"no Docker engine: {exc}")
