"""The pytest plugin in a user's test session (pytester): the chaos marker, the fixtures, and failures that
read in one line. Nothing here runs a scenario (test_example_tinyq.py does)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys

import pytest

import harness.kit  # noqa: F401  loaded once here: pytester's in-process runs cannot import numpy a second time

pytest_plugins = ["pytester"]

# pytest-asyncio, installed beside the harness, warns about an unset loop scope in every session.
INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"


def test_loading_the_plugin_imports_nothing_of_the_harness_but_its_error_tree() -> None:
    code = (
        "import sys, harness.pytest_plugin; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('harness', 'taskq', 'redis', 'hypothesis')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert ast.literal_eval(done.stdout.strip()) == ["harness", "harness.errors", "harness.pytest_plugin"]


def test_the_chaos_marker_parametrizes_over_seeds_and_gives_chaos_run_its_defaults(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.chaos("kill_workers", seeds=[1, 2, 3], duration=4, consumers=2)
        def test_kills(chaos, chaos_seed):
            assert chaos.defaults == {"seed": chaos_seed, "scenario": "kill_workers", "duration": 4,
                                      "overrides": {"consumers": 2}}

        def test_plain(chaos, chaos_seed):
            assert chaos_seed is None and chaos.defaults == {"seed": None}
        """
    )
    result = pytester.runpytest("-v", "--strict-markers")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*test_kills[[]seed1[]] PASSED*", "*test_kills[[]seed2[]] PASSED*",
                                 "*test_kills[[]seed3[]] PASSED*"])  # fmt: skip


def test_chaos_tests_are_selected_apart_from_unit_tests_with_m(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.chaos("steady", seeds=[1, 2])
        def test_chaos(chaos):
            pass

        def test_unit():
            pass
        """
    )
    pytester.runpytest("--strict-markers", "-m", "chaos").assert_outcomes(passed=2, deselected=1)
    pytester.runpytest("--strict-markers", "-m", "not chaos").assert_outcomes(passed=1, deselected=2)


def test_seeds_on_a_test_without_the_chaos_fixture_is_a_clear_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.chaos("steady", seeds=[1])
        def test_forgot_the_fixture():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*parametrizes the chaos fixture: add a `chaos` argument to the test*"])
    assert "_pytest/python.py" not in result.stdout.str()


@pytest.mark.parametrize(
    ("call", "says"),
    [
        ('chaos.run("steady", queue="no_such_module:factory")', "*harness: cannot load queue adapter*no_such_module*"),
        ('chaos.run("steady", queue="taskq", bogus=1)', "*harness: unknown scenario override 'bogus': use a field of*"),
        ('chaos.run(queue="taskq")', "*harness: chaos.run needs a scenario*"),
        ('chaos.run("no_such_scenario", queue="taskq")', "*harness: unknown scenario 'no_such_scenario'*"),
    ],
)
def test_bad_input_to_chaos_run_fails_the_test_in_one_line(pytester: pytest.Pytester, call: str, says: str) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(f"def test_it(chaos):\n    {call}\n")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([says])
    assert "Traceback" not in result.stdout.str()
    assert "harness/runner.py" not in result.stdout.str()


def test_redis_server_is_a_throwaway_server_with_its_persistence_as_a_parameter(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(
        """
        import pytest
        import redis

        def settings(server, *names):
            with redis.Redis.from_url(server.url, decode_responses=True) as client:
                assert client.ping()
                return [client.config_get(name)[name] for name in names]

        def test_default(redis_server):
            assert settings(redis_server, "appendonly", "save", "bind") == ["no", "", "127.0.0.1"]

        @pytest.mark.parametrize("redis_server", ["aof-always"], indirect=True)
        def test_aof_always(redis_server):
            assert settings(redis_server, "appendonly", "appendfsync") == ["yes", "always"]

        def test_two_of_them(redis_server, redis_server_factory):
            other = redis_server_factory(persistence="rdb")
            assert other.port != redis_server.port
            assert settings(other, "save") == ["1 1"]
        """
    )
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    pytester.runpytest(f"--harness-redis-server={binary}").assert_outcomes(passed=3)


def test_a_server_binary_that_is_not_there_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile("def test_it(redis_server):\n    pass\n")
    result = pytester.runpytest(f"--harness-redis-server={pytester.path / 'valkey-server'}")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*--harness-redis-server*valkey-server is not an executable file*"])


def test_an_unknown_persistence_fails_the_test_in_one_line(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("redis_server", ["sometimes"], indirect=True)
        def test_it(redis_server):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*harness: unknown persistence 'sometimes': use one of none, aof-everysec*"])
