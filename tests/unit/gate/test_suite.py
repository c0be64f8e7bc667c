from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.gate.suite import SUITE_DIR, load_suite

REPO = Path(__file__).resolve().parents[3]


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return str(path)


def test_every_shipped_suite_loads() -> None:
    for path in SUITE_DIR.glob("*.toml"):
        suite = load_suite(str(path), REPO)
        assert suite.cases and suite.baseline.is_absolute()


def test_ci_suite_measures_against_raw_and_checks_faults() -> None:
    suite = load_suite("ci", REPO)
    by_name = {c.name: c for c in suite.cases}
    assert by_name["latency"].compare_with == "raw" and by_name["latency"].metrics
    assert by_name["kill_workers"].metrics == () and by_name["kill_workers"].repeat == 1
    assert by_name["throughput"].scenario.run.tasks == 20000


def test_overrides_apply_to_run_and_workload(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, """
name = "t"
[[case]]
name = "a"
scenario = "steady"
run = { duration_s = 1.5, consumers = 3 }
workload = { read_count = 2, priorities = [0, 0, 1, 0] }
metrics = [{ figure = "throughput", better = "higher", tolerance = 0.1 }]
"""), REPO)  # fmt: skip
    [case] = suite.cases
    assert (case.scenario.run.duration_s, case.scenario.run.consumers) == (1.5, 3)
    assert case.scenario.workload.read_count == 2 and case.scenario.workload.priorities == (0, 0, 1, 0)
    assert (case.repeat, case.max_repeat, case.compare_with) == (3, 5, None)
    assert suite.baseline == REPO / "reports/baselines/suite.json"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "t"\n', "at least one"),
        ('bogus = 1\n[[case]]\nname = "a"\nscenario = "steady"\n', "unknown key"),
        ('[[case]]\nname = "a"\nscenario = "nope"\n', "unknown scenario"),
        ('[[case]]\nname = "a"\nscenario = "steady"\nworkload = { speed = 1 }\n', "unknown workload key"),
        (
            '[[case]]\nname = "a"\nscenario = "steady"\nmetrics = [{ figure = "x", better = "up", tolerance = 1 }]\n',
            "metric.better",
        ),
        ('[[case]]\nname = "a"\nscenario = "steady"\n[[case]]\nname = "a"\nscenario = "steady"\n', "unique"),
        ('[[case]]\nname = "a"\nscenario = "steady"\nrepeat = 4\nmax_repeat = 2\n', "repeat"),
    ],
)
def test_mistakes_name_the_file_and_what_to_fix(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message) as caught:
        load_suite(write(tmp_path, text), REPO)
    assert "suite.toml" in str(caught.value) or "unknown scenario" in str(caught.value)


def test_an_unknown_suite_lists_the_known_ones() -> None:
    with pytest.raises(ScenarioError, match="ci"):
        load_suite("nope", REPO)
