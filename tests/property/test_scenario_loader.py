"""The scenario loader, fuzzed: every malformed document is one ScenarioError line (exit 2 from the CLI),
never a traceback, and every well-formed one loads.

Documents are drawn from the scenario schema: the dataclass fields of each section, with this file's own
table of what each key allows (written apart from harness/scenario.py, so a range the loader forgets to
check fails here). A field added later and missing from the table is still fuzzed with wrong types.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import signal
import sys
import tomllib
import types
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.adapters.base import QueueOptions
from harness.checkers.base import Expectations
from harness.errors import ScenarioError
from harness.faults import FAULT_AIMS, FAULT_KINDS, targets_for
from harness.scenario import FaultSpec, RunSettings, Scenario, Workload, load_scenario, scenario_from_dict

SECTIONS: dict[str, type[Any]] = {"run": RunSettings, "workload": Workload, "queue": QueueOptions,
                                  "expect": Expectations}  # fmt: skip
finite = st.floats(allow_nan=False, allow_infinity=False)
not_finite = st.sampled_from([math.nan, math.inf, -math.inf])


@dataclass(frozen=True)
class Key:
    """What one key allows: `valid` values, and `out_of_range` ones of the right type (None: no range)."""

    valid: st.SearchStrategy[Any]
    out_of_range: st.SearchStrategy[Any] | None = None


def between(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False)


def below(value: float, *, inclusive: bool = False) -> st.SearchStrategy[float]:
    return st.floats(max_value=value, exclude_max=not inclusive, allow_nan=False) | not_finite


def positive_s() -> Key:
    return Key(between(0.01, 600.0), below(0.0, inclusive=True))


def not_negative(high: float = 1000.0) -> Key:
    return Key(between(0.0, high), below(0.0))


def at_least(low: int, high: int = 1000) -> Key:
    return Key(st.integers(low, high), st.integers(max_value=low - 1))


def probability() -> Key:
    return Key(between(0.0, 0.99), below(0.0) | st.floats(min_value=1.0, allow_nan=False))


def shares() -> st.SearchStrategy[list[float]]:
    return st.lists(between(0.0, 5.0), min_size=4, max_size=4).filter(lambda s: sum(s) > 0)


PERSISTENCES = ("none", "rdb", "aof-everysec", "aof-always")
bad_shares = (
    st.lists(between(0.0, 5.0), min_size=0, max_size=8).filter(lambda s: len(s) != 4)
    | st.lists(between(-5.0, 5.0), min_size=4, max_size=4).filter(lambda s: min(s) < 0)
    | st.just([0.0, 0.0, 0.0, 0.0])
)

KEYS: dict[str, dict[str, Key]] = {
    "run": {
        "duration_s": positive_s(), "drain_timeout_s": positive_s(),
        "producers": Key(st.integers(1, 8), st.integers(max_value=0) | st.integers(min_value=257)),
        "consumers": Key(st.integers(1, 8), st.integers(max_value=0) | st.integers(min_value=257)),
        "rate": not_negative(1e5), "tasks": at_least(1, 10**6),
        "persistence": Key(st.sampled_from(PERSISTENCES), st.text(max_size=12).filter(lambda s: s not in PERSISTENCES)),
    },
    "workload": {
        "priorities": Key(shares(), bad_shares), "task_ms_mean": not_negative(), "task_ms_max": not_negative(),
        "failure_probability": probability(), "poison_fraction": probability(), "max_retries": at_least(0, 10),
        "enqueue_batch": at_least(1, 100), "read_count": at_least(1, 100), "concurrency": at_least(1, 100),
    },
    "queue": {
        "pending_timeout_s": positive_s(), "retry_base_delay_s": not_negative(), "retry_max_delay_s": not_negative(),
        "delivery_cap": at_least(1, 20),
        "block_ms": Key(st.integers(0, 4999), st.integers(max_value=-1) | st.integers(min_value=5000)),
        "shutdown_timeout_s": not_negative(), "replicas_to_wait": at_least(0, 5),
        "replica_wait_timeout_ms": at_least(0, 10_000), "queues": at_least(1, 16),
    },
    "expect": {
        "max_lost": at_least(0), "max_unexplained_duplicates": at_least(0), "max_unexpected": at_least(0),
        "priority_slack_ms": not_negative(), "max_priority_inversions": at_least(0),
        "check_fifo": Key(st.booleans()), "max_recovery_s": not_negative(60.0), "faults_must_hit": Key(st.booleans()),
        "min_dead": at_least(0), "loss_allowed_in_redis_fault_windows": Key(st.booleans()),
    },
}  # fmt: skip


# -- types, as this test reads them from the annotations (independently of the loader) ------------------


def kind_of(annotation: Any) -> str:
    """ "number", "integer", "bool", "string", "numbers", "numbers4", "integers", "optional-X" or "other"."""
    simple = {float: "number", int: "integer", bool: "bool", str: "string"}
    if annotation in simple:
        return simple[annotation]
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType) and type(None) in args:
        return "optional-" + kind_of(next(a for a in args if a is not type(None)))
    if origin is tuple:
        item = kind_of(args[0]) + "s"
        return item if args[-1] is Ellipsis else f"{item}{len(args)}"
    return "other"


def well_typed(kind: str, value: Any) -> bool:
    if kind.startswith("optional-"):
        return value is None or well_typed(kind.removeprefix("optional-"), value)
    checks = {
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool),
        "string": lambda v: isinstance(v, str),
    }
    if kind in checks:
        return checks[kind](value)
    if kind.startswith(("numbers", "integers")):
        item, _, size = kind.partition("s")
        return (isinstance(value, list) and all(well_typed(item, x) for x in value)
                and (not size or len(value) == int(size)))  # fmt: skip
    return True


def field_kinds(cls: type[Any]) -> dict[str, str]:
    hints = get_type_hints(cls)
    return {f.name: kind_of(hints[f.name]) for f in fields(cls)}


def toml_values(max_leaves: int = 4) -> st.SearchStrategy[Any]:
    """Anything a TOML document can hold as a value."""
    scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text(max_size=8)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=2),
        max_leaves=max_leaves,
    )


def wrong_type(kind: str) -> st.SearchStrategy[Any]:
    return toml_values().filter(lambda v: v is not None and not well_typed(kind, v))


# -- documents ----------------------------------------------------------------------------------------


@st.composite
def faults(draw: st.DrawFn, consumers: int) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(FAULT_KINDS)))
    timing = draw(st.sampled_from(["every_s", "at_s", "after_completed"]))
    when = {
        "every_s": between(0.1, 30.0),
        "at_s": st.lists(between(0.0, 60.0), min_size=1, max_size=3),
        "after_completed": st.lists(st.integers(0, 10_000), min_size=1, max_size=3),
    }[timing]
    fault: dict[str, Any] = {"kind": kind, timing: draw(when)}
    if draw(st.booleans()):
        fault["target"] = draw(st.sampled_from(targets_for(FAULT_KINDS[kind], consumers)))
    if draw(st.booleans()):
        fault["aim"] = draw(st.sampled_from(FAULT_AIMS))
    if draw(st.booleans()):
        fault["duration_s"] = draw(between(0.0, 10.0))
    return fault


@st.composite
def valid_documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": draw(st.text(min_size=1, max_size=10))}
    if draw(st.booleans()):
        doc["description"] = draw(st.text(max_size=20))
    for section, keys in KEYS.items():
        chosen = draw(st.lists(st.sampled_from(sorted(keys)), unique=True, max_size=len(keys)))
        if chosen or draw(st.booleans()):
            doc[section] = {key: draw(keys[key].valid) for key in chosen}
    consumers = doc.get("run", {}).get("consumers", RunSettings().consumers)
    if draw(st.booleans()):
        doc["faults"] = draw(st.lists(faults(consumers), max_size=3))
    return doc


@dataclass(frozen=True)
class Malformed:
    doc: dict[str, Any]
    names: tuple[str, ...]  # what the error line must name (any one of them)
    how: str


def pick_field(draw: st.DrawFn, doc: dict[str, Any]) -> tuple[str, type[Any], dict[str, Any]]:
    """A section of `doc` (made if absent) or one of its faults: (label, dataclass, table)."""
    places = [*SECTIONS, *(f"faults[{n}]" for n in range(len(doc.get("faults", []))))]
    place = draw(st.sampled_from(places))
    if place.startswith("faults["):
        return place, FaultSpec, doc["faults"][int(place[7:-1])]
    return place, SECTIONS[place], doc.setdefault(place, {})


@st.composite
def wrongly_typed(draw: st.DrawFn) -> Malformed:
    doc = draw(valid_documents())
    label, cls, table = pick_field(draw, doc)
    key, kind = draw(st.sampled_from(sorted(field_kinds(cls).items())))
    if kind == "other":  # nothing to get wrong about a value of any type
        return Malformed({**doc, "name": 7}, ("name",), "a name that is not a string")
    table[key] = draw(wrong_type(kind))
    return Malformed(doc, (key,), f"{label}.{key} of the wrong type")


@st.composite
def out_of_range(draw: st.DrawFn) -> Malformed:
    doc = draw(valid_documents())
    section = draw(st.sampled_from(sorted(KEYS)))
    ranged = sorted(k for k, spec in KEYS[section].items() if spec.out_of_range is not None)
    key = draw(st.sampled_from(ranged))
    strategy = KEYS[section][key].out_of_range
    assert strategy is not None
    doc.setdefault(section, {})[key] = draw(strategy)
    return Malformed(doc, (key,), f"{section}.{key} out of range")


@st.composite
def bad_faults(draw: st.DrawFn) -> Malformed:
    doc = draw(valid_documents())
    consumers = doc.get("run", {}).get("consumers", RunSettings().consumers)
    fault = draw(faults(consumers))
    breakage = draw(st.sampled_from(["no kind", "unknown kind", "no timing", "two timings", "bad target",
                                     "bad aim", "negative duration", "negative at_s"]))  # fmt: skip
    names: tuple[str, ...] = ("kind",)
    if breakage == "no kind":
        del fault["kind"]
    elif breakage == "unknown kind":
        fault["kind"] = draw(st.text(max_size=10).filter(lambda k: k not in FAULT_KINDS))
    elif breakage in ("no timing", "two timings"):
        for timing in ("every_s", "at_s", "after_completed"):
            fault.pop(timing, None)
        if breakage == "two timings":
            fault.update(every_s=1.0, after_completed=[10])
        names = ("every_s",)
    elif breakage == "bad target":
        allowed = targets_for(FAULT_KINDS[fault["kind"]], consumers)
        fault["target"] = draw(st.text(min_size=1, max_size=12).filter(lambda t: t not in allowed))
        names = ("target",)
    elif breakage == "bad aim":
        fault["aim"] = draw(st.text(max_size=10).filter(lambda a: a not in FAULT_AIMS))
        names = ("aim",)
    elif breakage == "negative duration":
        fault["duration_s"] = draw(below(0.0))
        names = ("duration_s",)
    else:
        for timing in ("every_s", "after_completed"):
            fault.pop(timing, None)
        fault["at_s"] = [1.0, draw(below(0.0))]
        names = ("at_s",)
    doc["faults"] = [*doc.get("faults", []), fault]
    return Malformed(doc, names, f"a fault with {breakage}")


STRUCTURE_BREAKAGES = ("no name", "extra top-level key", "extra key", "section not a table", "faults not an array",
                       "fault not a table", "description not a string")  # fmt: skip


@st.composite
def bad_structure(draw: st.DrawFn) -> Malformed:
    doc = draw(valid_documents())
    breakage = draw(st.sampled_from(STRUCTURE_BREAKAGES))
    junk = draw(toml_values(max_leaves=2))
    if breakage == "no name":
        del doc["name"]
        return Malformed(doc, ("name",), breakage)
    if breakage == "extra top-level key":
        extra = draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in {*SECTIONS, "name", "description",
                                                                                     "faults"}))  # fmt: skip
        doc[extra] = junk
        return Malformed(doc, ("unknown top-level key",), breakage)
    if breakage == "extra key":
        label, cls, table = pick_field(draw, doc)
        known = {f.name for f in fields(cls)}
        table[draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in known))] = junk
        return Malformed(doc, ("unknown key",), f"{breakage} in {label}")
    if breakage == "section not a table":
        section = draw(st.sampled_from(sorted(SECTIONS)))
        doc[section] = draw(toml_values(max_leaves=2).filter(lambda v: not isinstance(v, dict)))
        return Malformed(doc, (section,), f"[{section}] {breakage}")
    if breakage == "faults not an array":
        doc["faults"] = draw(toml_values(max_leaves=2).filter(lambda v: not isinstance(v, list)))
        return Malformed(doc, ("faults",), breakage)
    if breakage == "fault not a table":
        doc["faults"] = [draw(toml_values(max_leaves=2).filter(lambda v: not isinstance(v, dict)))]
        return Malformed(doc, ("faults",), breakage)
    doc["description"] = draw(toml_values(max_leaves=2).filter(lambda v: not isinstance(v, str)))
    return Malformed(doc, ("description",), breakage)


malformed_documents = st.one_of(wrongly_typed(), out_of_range(), bad_faults(), bad_structure())


# -- the properties ------------------------------------------------------------------------------------


def load_error(doc: Any) -> str:
    with pytest.raises(ScenarioError) as caught:
        scenario_from_dict(doc, "fuzzed.toml")
    return str(caught.value)


@given(case=malformed_documents)
def test_every_malformed_document_is_one_scenario_error_naming_the_key(case: Malformed) -> None:
    message = load_error(case.doc)
    assert "\n" not in message, f"{case.how}: the error must be one line: {message!r}"
    assert message.startswith("fuzzed.toml: "), message
    assert any(name in message for name in case.names), f"{case.how}: {message!r} names none of {case.names}"


@given(doc=valid_documents())
def test_every_well_formed_document_loads_and_survives_a_plan_round_trip(doc: dict[str, Any]) -> None:
    scenario = scenario_from_dict(doc, "fuzzed.toml")
    assert isinstance(scenario, Scenario)
    # Plans save the scenario as JSON (plan.json) and `harness replay` loads it again.
    assert scenario_from_dict(json.loads(json.dumps(scenario.as_dict())), "plan.json") == scenario


@given(doc=st.dictionaries(st.sampled_from(["name", "description", *SECTIONS, "faults"]), toml_values(8)))
def test_any_document_at_all_loads_or_is_a_scenario_error(doc: dict[str, Any]) -> None:
    try:
        scenario_from_dict(doc, "junk.toml")
    except ScenarioError as exc:
        assert "\n" not in str(exc)


def test_every_field_of_the_schema_is_in_this_fuzzers_table() -> None:
    """A field without an entry is still fuzzed with wrong types, but not with out-of-range values: add it."""
    for section, cls in SECTIONS.items():
        missing = {f.name for f in fields(cls)} - set(KEYS[section])
        assert not missing, f"add {sorted(missing)} to KEYS[{section!r}] with their valid and out-of-range values"
    assert all(f.default is not MISSING or f.name == "kind" for f in fields(FaultSpec))


# -- through the command line: exit 2 and one line ------------------------------------------------------


def toml_string(text: str) -> str:
    # JSON's escapes are TOML's, but TOML takes no surrogate pairs (so no ASCII-only output) and DEL escaped.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise ValueError(f"TOML has no {value!r}")


def to_toml(doc: dict[str, Any]) -> str | None:
    """The document as a TOML file (inline tables throughout), or None when TOML cannot say it (null)."""
    try:
        text = "\n".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in doc.items()) + "\n"
    except ValueError:
        return None
    assert tomllib.loads(text) == doc or any(isinstance(v, float) and math.isnan(v) for v in _leaves(doc))
    return text


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def run_cli(*args: str) -> tuple[int, str, str]:
    """`harness ARGS` in this process (a subprocess per example would take minutes): (exit code, stdout, stderr)."""
    from harness.cli import main  # noqa: PLC0415 - the CLI's imports are not needed by the other tests

    stdout, stderr = io.StringIO(), io.StringIO()
    previous = signal.getsignal(signal.SIGTERM)
    try:
        with (mock.patch.object(sys, "argv", ["harness", *args]), contextlib.redirect_stdout(stdout),
              contextlib.redirect_stderr(stderr), pytest.raises(SystemExit) as caught):  # fmt: skip
            main()
    finally:
        signal.signal(signal.SIGTERM, previous)
    return int(caught.value.code or 0), stdout.getvalue(), stderr.getvalue()


@settings(
    max_examples=max(10, settings().max_examples // 2),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(case=malformed_documents)
def test_a_malformed_scenario_file_exits_2_with_one_line(
    case: Malformed, tmp_path_factory: pytest.TempPathFactory
) -> None:
    text = to_toml(case.doc)
    if text is None:
        return  # null has no TOML spelling: the loader is checked on it above
    load_error(tomllib.loads(text))  # never start a run from here: the file must be malformed first
    folder = tmp_path_factory.mktemp("scenario")
    path = folder / "fuzzed.toml"
    path.write_text(text)
    code, stdout, stderr = run_cli("run", str(path), "--out", str(folder / "runs"))
    assert code == 2, f"{case.how}: exit {code}\n{stderr}"
    assert stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness: "), stderr
    assert "Traceback" not in stderr
    assert not (folder / "runs").exists()


def test_the_reported_typo_is_exit_2_naming_the_key_and_the_type(tmp_path: Path) -> None:
    path = tmp_path / "typo.toml"
    path.write_text('name = "typo"\n[run]\nduration_s = "ten"\n')
    code, _, stderr = run_cli("run", str(path), "--out", str(tmp_path / "runs"))
    assert code == 2
    assert stderr == f"harness: {path}: [run] duration_s = 'ten' (a string): expected a number\n"
    with pytest.raises(ScenarioError, match="duration_s"):
        load_scenario(str(path))
