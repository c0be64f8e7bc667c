"""The harness as a pytest plugin (entry point `pytest11`: active wherever the package is installed).

Fixtures: `redis_server` (a throwaway redis-server: free loopback port, temp folder, persistence as an
indirect parameter), `redis_server_factory`, `chaos` (`chaos.run(scenario, queue=..., seed=...,
duration=..., **overrides)` returns a harness.kit.Verdict), `chaos_seed`. Marker:
`@pytest.mark.chaos("kill_workers", seeds=[1, 2, 3], duration=10)` parametrizes a test over seeds and
gives chaos.run its defaults. Options: --harness-redis-server PATH (redis-server or a compatible binary,
such as valkey-server), --harness-out DIR (keep run folders there).

A test that fails after a verdict that is not valid gets a "harness verdict" section in its report: the
failing checkers with their figures, three anomalies, and the replay and explain commands. Every
verdict's figures go to the JUnit XML as properties.

This module is loaded by every pytest session in an environment where the package is installed, so it
imports nothing of the harness at load time: the runner is imported inside the fixtures that need it.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.errors import HarnessError  # the error tree only: it imports nothing else

if TYPE_CHECKING:
    from harness.kit import Chaos, Verdict
    from harness.providers.local import LocalRedis

MARKER_HELP = (
    "chaos(scenario, seeds=[...], duration=SECONDS, **overrides): a harness chaos test; parametrized over "
    "seeds, and the defaults of chaos.run (select with -m chaos, leave out with -m 'not chaos')"
)
BINARY_ENV = "REDIS_SERVER"  # what every local server of the harness reads (harness.providers.local)
_PROGRESS = re.compile(r"^\s*\d+(\.\d+)?s/")  # "  3.4s/5s  completed=..." (harness.runner._Progress)
_VERDICTS = pytest.StashKey[list["Verdict"]]()
_BINARY_BEFORE = pytest.StashKey[str | None]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "harness: chaos runs against a task queue")
    group.addoption(
        "--harness-redis-server", metavar="PATH", default=None,
        help="Server binary for redis_server and chaos runs (redis-server or a compatible one, e.g. valkey-server; "
        "default: $REDIS_SERVER, else redis-server on PATH).",
    )  # fmt: skip
    group.addoption(
        "--harness-out", metavar="DIR", default=None,
        help="Where chaos run folders go (default: pytest's temporary folder; CI can keep them as artifacts).",
    )  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    binary = config.getoption("--harness-redis-server", default=None)
    if binary:
        path = Path(binary).absolute()  # not resolved: redis-server is a link whose name picks its mode
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise pytest.UsageError(f"--harness-redis-server {binary} is not an executable file: give the path "
                                    "of redis-server or of a compatible server (valkey-server)")  # fmt: skip
        # The runs' own servers and agents read the binary from the environment: set it for the session.
        config.stash[_BINARY_BEFORE] = os.environ.get(BINARY_ENV)
        os.environ[BINARY_ENV] = str(path)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _BINARY_BEFORE in config.stash:
        before = config.stash[_BINARY_BEFORE]
        if before is None:
            os.environ.pop(BINARY_ENV, None)
        else:
            os.environ[BINARY_ENV] = before


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("chaos")
    if marker is None or "seeds" not in marker.kwargs:
        return
    if "chaos_seed" not in metafunc.fixturenames:
        pytest.fail(
            f"{metafunc.definition.nodeid}: @pytest.mark.chaos(seeds=...) parametrizes the chaos fixture: "
            "add a `chaos` argument to the test",
            pytrace=False,
        )
    seeds = [int(seed) for seed in marker.kwargs["seeds"]]
    metafunc.parametrize("chaos_seed", seeds, ids=[f"seed{seed}" for seed in seeds])


@pytest.fixture
def chaos_seed() -> int | None:
    """The seed of this test's runs: from the chaos marker's seeds, else None (chaos.run draws one)."""
    return None


@pytest.fixture
def chaos(
    request: pytest.FixtureRequest, chaos_seed: int | None, tmp_path_factory: pytest.TempPathFactory
) -> Chaos:  # fmt: skip
    """Runs harness scenarios: `verdict = chaos.run("kill_workers", queue="mymodule:factory")`, then
    `assert verdict`. The chaos marker's arguments are the defaults."""
    from harness.kit import Chaos  # noqa: PLC0415  the runner loads only for tests that use it

    marker = request.node.get_closest_marker("chaos")
    defaults: dict[str, Any] = {"seed": chaos_seed}
    if marker is not None:
        options = {k: v for k, v in marker.kwargs.items() if k != "seeds"}
        defaults.update(scenario=marker.args[0] if marker.args else None, duration=options.pop("duration", None),
                        overrides=options)  # fmt: skip
    out = request.config.getoption("--harness-out") or tmp_path_factory.getbasetemp() / "harness-runs"
    verdicts = request.node.stash.setdefault(_VERDICTS, [])

    def recorded(verdict: Verdict) -> None:
        verdicts.append(verdict)
        prefix = f"harness.{verdict.scenario}" + (f".{len(verdicts)}" if len(verdicts) > 1 else "")
        # What record_property does, without its warning under the default junit_family (xunit2): the
        # JUnit XML gets them as <properties> of the test case either way.
        request.node.user_properties += [(f"{prefix}.{name}", value) for name, value in verdict.figures().items()]

    return Chaos(out=Path(out), status=_status, defaults=defaults, on_verdict=recorded)


def _status(line: str) -> None:
    """The run's folder and phases on stderr (pytest shows them with a failure); not the progress ticks."""
    if not _PROGRESS.match(line):
        print(f"harness: {line}", file=sys.stderr)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" and report.failed:
        for verdict in item.stash.get(_VERDICTS, []):
            if not verdict:
                report.sections.append((f"harness verdict: {verdict.scenario} seed {verdict.seed}", verdict.summary()))
    return report


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, object, object]:
    """A HarnessError (an adapter that cannot load, a run that could not start) fails the test in one
    line, not with a traceback through the runner."""
    try:
        return (yield)
    except HarnessError as exc:
        raise pytest.fail.Exception(f"harness: {exc}", pytrace=False) from None


@pytest.fixture
def redis_server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., LocalRedis]]:
    """Starts throwaway servers: `redis_server_factory(persistence="aof-always", binary=None)`; all are
    stopped after the test. Persistence: none, aof-everysec, aof-always, rdb."""
    from harness.kit import throwaway_redis  # noqa: PLC0415

    started: list[LocalRedis] = []

    def start(*, persistence: str = "none", binary: str | None = None) -> LocalRedis:
        try:
            server = throwaway_redis(tmp_path_factory.mktemp("redis"), persistence=persistence, binary=binary)
        except HarnessError as exc:
            failure = str(exc)
        else:
            started.append(server)
            return server
        pytest.fail(f"harness: {failure}", pytrace=False)

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def redis_server(request: pytest.FixtureRequest, redis_server_factory: Callable[..., LocalRedis]) -> LocalRedis:
    """A throwaway redis-server (`.url`, `.port`, `.kill()`, `.restart()`, `.pause()`, `.resume()`).
    Persistence by indirect parametrization: `@pytest.mark.parametrize("redis_server", ["aof-always"],
    indirect=True)`, or a dict of redis_server_factory's arguments."""
    param = getattr(request, "param", None)
    settings = param if isinstance(param, dict) else {"persistence": param or "none"}
    return redis_server_factory(**settings)
