"""The conformance suite of `harness check-adapter SPEC`: each protocol method exercised against a real
Redis (rules kept or broken, named by method), then a short battery of scenario runs; the report says
which of the adapter's declared promises held, and for each that did not, the scenario and seed that
showed it.

    rules      findings, evidence, and calling an adapter's methods safely
    client     connect, enqueue of a batch, refused payloads, depth and final_state shapes (every adapter)
    pull       consume / complete / fail outcomes, retries, stale receipts, accounting, order (pull adapters)
    hosted     the worker command and an untouched queue's final state (hosted adapters)
    battery    the scenario runs and what each shows about each promise
    report     the text and the exit code
    suite      the order of it all
"""

from __future__ import annotations

from harness.kit.conformance.report import Report
from harness.kit.conformance.suite import check_adapter

__all__ = ["Report", "check_adapter"]
