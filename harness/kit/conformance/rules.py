"""What the conformance suite records, and how it calls an adapter's methods: with a deadline, and with
whatever they raise turned into a finding that names the method, the rule and the adapter's own line,
never a stack trace."""

from __future__ import annotations

import asyncio
import inspect
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness.adapters.base import AdapterRefused, AdapterUnavailable

Status = Literal["ok", "broken", "note", "skipped"]
CALL_TIMEOUT_S = 10.0
# The promises the suite reports on, in the order it prints them, with how a person names them.
PROMISE_LABELS = {
    "at-least-once": "at-least-once",
    "ownership": "ownership-checked ack",
    "priority": "strict priority",
    "fifo": "FIFO",
    "retries": "retries",
    "dlq": "dead-letter queue",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule of the protocol, as a method kept it or broke it."""

    status: Status
    method: str
    rule: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Evidence:
    """What one check or run showed about a promise: held (True), not held (False), or nothing (None)."""

    promise: str
    held: bool | None
    source: str  # "stale receipt check", "kill_workers seed 1"
    detail: str
    commands: tuple[str, ...] = ()


class RuleBroken(Exception):
    """A method broke a rule; the suite records it and skips what depends on it."""

    def __init__(self, method: str, rule: str, detail: str) -> None:
        super().__init__(f"{method}: {rule}: {detail}")
        self.finding = Finding("broken", method, rule, detail)


@dataclass
class Probe:
    """Calls one adapter's methods, each with a deadline; collects findings and evidence."""

    adapter: Any
    timeout_s: float = CALL_TIMEOUT_S
    findings: list[Finding] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)

    def ok(self, method: str, rule: str, detail: str = "") -> None:
        self.findings.append(Finding("ok", method, rule, detail))

    def note(self, method: str, rule: str, detail: str) -> None:
        self.findings.append(Finding("note", method, rule, detail))

    def saw(self, promise: str, held: bool | None, source: str, detail: str) -> None:
        self.evidence.append(Evidence(promise, held, source, detail))

    async def call(self, method: str, *args: Any, allow: tuple[type[BaseException], ...] = ()) -> Any:
        """The method's result; RuleBroken for a missing, synchronous, hanging or raising method (except
        the exceptions in `allow`, which propagate)."""
        function = getattr(self.adapter, method, None)
        if not callable(function):
            raise RuleBroken(method, "the protocol needs this method", f"{type(self.adapter).__name__} has none")
        deadline = asyncio.timeout(self.timeout_s)
        try:
            pending = function(*args)
            if not inspect.isawaitable(pending):
                raise RuleBroken(method, "is a coroutine (async def)", f"it returned {type(pending).__name__}")
            async with deadline:
                return await pending
        except RuleBroken:
            raise
        except allow:
            raise
        except Exception as exc:  # any other exception is the adapter's bug: name it, where it was raised
            if isinstance(exc, TimeoutError) and deadline.expired():
                raise RuleBroken(method, f"returns within {self.timeout_s:g} s", "it did not return") from None
            raise RuleBroken(method, _rule_for(exc), f"it raised {_described(exc, self.adapter)}") from None

    def must(self, condition: bool, method: str, rule: str, detail: str) -> None:
        if not condition:
            raise RuleBroken(method, rule, detail)


def _rule_for(exc: BaseException) -> str:
    if isinstance(exc, NotImplementedError):
        return "is implemented"
    if isinstance(exc, AdapterUnavailable):
        return "reaches the Redis the harness gives it (AdapterUnavailable means the outcome is unknown)"
    if isinstance(exc, AdapterRefused):
        return "refuses only what the queue cannot take"
    return "raises only AdapterUnavailable (outcome unknown) or AdapterRefused (certainly not done)"


def _described(exc: BaseException, adapter: object) -> str:
    """'KeyError: 'tid' (tinyq_adapter.py:41)': the exception and the adapter's own line it came through."""
    frames = traceback.extract_tb(exc.__traceback__)
    try:
        own = Path(inspect.getfile(type(adapter))).resolve()
    except (TypeError, OSError):
        own = None
    mine = [f for f in frames if own is not None and Path(f.filename).resolve() == own]
    chosen = (mine or frames)[-1] if frames else None
    where = f" ({Path(chosen.filename).name}:{chosen.lineno})" if chosen else ""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}" + (f": {message}" if message else "") + where


def plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


Check = Callable[[Probe], Any]
