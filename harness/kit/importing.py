"""Making a user's adapter module importable where the run needs it: in this process, in the harness's
agent processes, and in a hosted queue's worker processes (which run in the run folder).

`--queue mymodule:factory` names a module of the user's project. The console script `harness` does
not put the current folder on sys.path (python -m does), and hosted workers start in the run folder,
so the folder the module was found in travels to them through PYTHONPATH.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

# Queue specs the harness resolves itself, never as module:factory.
_BUILT_IN_PREFIXES = ("taskq-mutant:", "peer:")


def current_folder_importable() -> None:
    """Let `module:factory` name a module in the current folder, as `python -m harness` would: here, and in
    every process the command starts (a hosted worker starts in the run folder)."""
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)
    before = os.environ.get("PYTHONPATH")
    if here not in (before or "").split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (here, before) if p)


def module_root(spec: str) -> Path | None:
    """The sys.path entry the module of a `module:factory` spec was found under (None: not such a spec,
    or the module cannot be found; loading it then says why)."""
    module, _, attribute = spec.partition(":")
    if not attribute or spec.startswith(_BUILT_IN_PREFIXES):
        return None
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if found is None or found.origin is None or not found.has_location:
        return None
    origin = Path(found.origin).resolve()
    depth = module.count(".") + (2 if origin.name == "__init__.py" else 1)
    return origin.parents[depth - 1]


@contextlib.contextmanager
def visible_to_subprocesses(spec: str) -> Iterator[None]:
    """For the duration, PYTHONPATH starts with the folder the spec's module lives in."""
    root = module_root(spec)
    before = os.environ.get("PYTHONPATH")
    if root is None:
        yield
        return
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), before) if p)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before
