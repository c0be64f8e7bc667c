"""`harness new adapter NAME [--hosted]`: a commented adapter skeleton and a chaos test, written into a
user's project from the templates beside this module.

Pull (the harness's consumers read, ack and fail through it): NAME_adapter.py and
tests/test_NAME_chaos.py. Hosted (the library's own workers run the tasks): NAME_adapter.py, the
handler module the worker imports (NAME_handlers.py), and the test.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from harness.errors import HarnessError

TEMPLATES = Path(__file__).resolve().parent / "templates"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Written:
    path: Path
    what: str


def new_adapter(name: str, folder: Path, *, hosted: bool = False, force: bool = False) -> list[Written]:
    """Write the skeleton; HarnessError (nothing written) for a bad name or a file that exists."""
    if not _NAME.match(name) or keyword.iskeyword(name):
        raise HarnessError(f"adapter name {name!r} must be a lowercase Python identifier (letters, digits, _): "
                           "it names modules, e.g. `harness new adapter myqueue`")  # fmt: skip
    module, handlers = f"{name}_adapter", f"{name}_handlers"
    test_path = Path("tests") / f"test_{name}_chaos.py"
    values = {
        "name": name, "module": module, "handlers_module": handlers, "test_path": str(test_path),
        "class_name": "".join(part.capitalize() for part in name.split("_")) + "Adapter",
    }  # fmt: skip
    plan = [(Path(f"{module}.py"), "hosted_adapter" if hosted else "pull_adapter", "the adapter")]
    if hosted:
        plan.append((Path(f"{handlers}.py"), "hosted_handlers", "the task your worker runs"))
    plan.append((test_path, "chaos_test", "a chaos test (pytest -m chaos)"))
    existing = [str(folder / path) for path, _, _ in plan if (folder / path).exists()]
    if existing and not force:
        raise HarnessError(f"{', '.join(existing)} already exist(s): move them away, or pass --force to overwrite")
    written = []
    for path, template, what in plan:
        text = Template((TEMPLATES / f"{template}.py.tmpl").read_text()).substitute(values)
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        written.append(Written(target, what))
    return written


def next_steps(name: str, *, hosted: bool) -> list[str]:
    module = f"{name}_adapter"
    steps = [f"fill in the TODOs of {module}.py" + (f" and {name}_handlers.py" if hosted else "")]
    steps += [
        f"harness check-adapter {module}:factory",
        f"pytest -m chaos tests/test_{name}_chaos.py",
        'if your modules are not installed, tell pytest where they are: pythonpath = ["."] under '
        "[tool.pytest.ini_options] in pyproject.toml",
    ]
    return steps
