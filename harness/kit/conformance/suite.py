"""`harness check-adapter SPEC`: load the adapter, run the protocol checks against a redis-server of the
suite's own, then the battery of short scenario runs, and return the report."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from harness.adapters import adapter_factory
from harness.adapters.promises import Promises
from harness.hosted.base import is_hosted
from harness.kit.chaos import Chaos
from harness.kit.conformance import hosted, pull
from harness.kit.conformance.battery import run_battery
from harness.kit.conformance.client import COUNTS_COMPLETED, HOLD_OPTIONS, Target, check_refused, connected
from harness.kit.conformance.report import NO_RUNS, Report
from harness.kit.conformance.rules import Finding, Probe, RuleBroken
from harness.kit.importing import visible_to_subprocesses
from harness.providers.local import LocalRedis

Status = Callable[[str], None]
PULL_METHODS = ("connect", "close", "enqueue", "depth", "final_state", "consume", "complete", "fail")
HOSTED_METHODS = ("connect", "close", "enqueue", "depth", "final_state", "worker")


def check_adapter(
    spec: str, *, out: Path, seed: int = 1, duration_s: float = 4.0, runs: bool = True, status: Status | None = None
) -> Report:
    """The whole suite. HarnessError when SPEC names no adapter at all, or Redis cannot be started."""
    say: Status = status or (lambda line: None)
    with visible_to_subprocesses(spec):
        factory = adapter_factory(spec)
        report, adapter = _load(spec, factory)
        if adapter is None:
            report.runs_skipped = "the adapter could not be built"
            return report
        with tempfile.TemporaryDirectory(prefix="check-adapter-") as folder:
            server = LocalRedis(Path(folder))
            server.start()
            try:
                report.redis_version = server.describe()["redis_version"].split(" sha=")[0]
                target = Target(factory=factory, url=server.url, prefix=f"check-{int(time.time()) % 10**6}")
                say("protocol checks")
                asyncio.run(_protocol(report, target))
            finally:
                server.stop()
        if report.broken:
            report.runs_skipped = "a rule is broken: fix it first (the runs would only show its damage)"
        elif not runs:
            report.runs_skipped = NO_RUNS
        else:
            chaos = Chaos(out=out, status=lambda line: None)
            counts = not any(f.method == "depth" and f.rule == COUNTS_COMPLETED for f in report.findings)
            report.runs, evidence = run_battery(spec, chaos, seed=seed, duration_s=duration_s,
                                                hosted=report.kind == "hosted", counts_completed=counts,
                                                status=say)  # fmt: skip
            report.evidence += evidence
    return report


def _load(spec: str, factory: Callable[[], Any]) -> tuple[Report, Any]:
    """Build one adapter; a factory that raises, or an object of neither kind, is a broken rule."""
    report = Report(spec=spec, kind="?", adapter="?", redis_version="redis-server")
    try:
        adapter = factory()
    except Exception as exc:  # the user's factory: say what it raised, in one line
        detail = f"it raised {type(exc).__name__}: {exc}"
        report.findings.append(Finding("broken", "factory", "builds the adapter", detail))
        return report, None
    report.adapter = type(adapter).__name__
    report.kind = "hosted" if is_hosted(adapter) else "pull"
    needed = HOSTED_METHODS if report.kind == "hosted" else PULL_METHODS
    missing = [m for m in needed if not callable(getattr(adapter, m, None))]
    if missing:
        rule = "has the methods of a pull adapter (or worker() and promises: a hosted one)"
        report.findings.append(Finding("broken", report.adapter, rule, f"missing: {', '.join(missing)}"))
        return report, None
    found = getattr(adapter, "promises", None)
    report.promises = found if isinstance(found, Promises) else Promises()
    if not isinstance(found, Promises):
        detail = "no `promises` attribute: judged as taskq is (everything promised)"
        report.findings.append(Finding("note", report.adapter, "declares its promises", detail))
    return report, adapter


async def _protocol(report: Report, target: Target) -> None:
    checks: list[Callable[[Probe], Coroutine[Any, Any, None]]] = [
        lambda p: _connect(p, target)
    ]  # fmt: skip
    if report.kind == "pull":
        checks += [lambda p: pull.check_deliveries(p, target), lambda p: check_refused(p, target),
                   lambda p: pull.check_stale_receipt(p, target), lambda p: pull.check_order(p, target)]  # fmt: skip
    else:
        checks += [lambda p: hosted.check_untouched_queue(p, target), lambda p: check_refused(p, target),
                   lambda p: _worker(p, target)]  # fmt: skip
    for check in checks:
        probe = Probe(target.factory())
        try:
            await check(probe)
        except RuleBroken as exc:
            probe.findings.append(exc.finding)
        report.findings += probe.findings
        report.evidence += probe.evidence
        if any(f.method == "connect" and f.status == "broken" for f in probe.findings):
            return  # nothing else can be checked


async def _connect(probe: Probe, target: Target) -> None:
    """connect, and close: the first thing any check needs."""
    async with connected(probe, target, "connect", HOLD_OPTIONS):
        probe.ok("connect", "connects to the Redis it is given, on a queue name of its own", target.url)


async def _worker(probe: Probe, target: Target) -> None:
    hosted.check_worker_command(probe, target)
