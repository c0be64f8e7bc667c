"""Microbenchmarks live apart: they run only when asked for, never in a plain `pytest`.

Ask with a path (`pytest tests/bench`) or a marker expression naming them
(`pytest -m bench`). Every module here sets `pytestmark = pytest.mark.bench`. They
time, they never assert a speed: a benchmark that fails on a slow machine would be a
timed unit test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def _asked_for(config: pytest.Config) -> bool:
    if "bench" in (config.getoption("markexpr", "") or ""):
        return True
    for arg in config.args:
        path = Path(str(arg).split("::")[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ours = [item for item in items if HERE in item.path.parents]
    if ours and not _asked_for(config):
        config.hook.pytest_deselected(items=ours)
        items[:] = [item for item in items if HERE not in item.path.parents]
