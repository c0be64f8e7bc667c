"""Agents' own figures: histograms that merge exactly across processes, CPU time, and the pacer."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from harness.agents.common import consumers_ready, mark_ready
from harness.agents.pacer import Pacer
from harness.agents.stats import AgentStats, merged_histograms, read_stats, stats_path


def test_histograms_of_several_processes_merge_exactly(tmp_path: Path) -> None:
    (tmp_path / "journals").mkdir()
    for n, values_ms in enumerate(([1, 2, 3], [10, 20])):
        stats = AgentStats(f"consumer-{n}#1", "consumer")
        for ms in values_ms:
            stats.record_ns("enqueue_to_start", ms * 1_000_000)
        stats.counts["completed"] = len(values_ms)
        stats.write(tmp_path / "journals" / f"consumer-{n}#1.jsonl")
    (tmp_path / "journals" / "consumer-9#1.stats.json.part").write_text("{")  # killed mid-write: ignored
    found = read_stats(tmp_path)
    assert [s["counts"]["completed"] for s in found] == [3, 2]
    assert all(s["cpu_user_s"] >= 0 and s["role"] == "consumer" for s in found)
    merged = merged_histograms(found)["enqueue_to_start"]
    assert merged.get_total_count() == 5
    assert merged.get_value_at_percentile(50) // 1000 == 3
    assert merged.get_max_value() // 1000 == 20


def test_the_stats_file_sits_beside_the_journal() -> None:
    assert stats_path(Path("j/producer-0.jsonl")) == Path("j/producer-0.stats.json")


def test_values_out_of_range_are_clamped_not_lost() -> None:
    stats = AgentStats("p", "producer")
    stats.record_ns("send_lag", -5)
    stats.record_ns("send_lag", 10**19)
    assert stats.histograms["send_lag"].get_total_count() == 2


async def test_the_pacer_never_wakes_before_the_due_time() -> None:
    pacer = Pacer()
    try:
        start = time.monotonic_ns()
        dues = [start + k * 700_000 for k in (8, 1, 5, 0, 3)]  # out of order, one already due
        woke: dict[int, int] = {}

        async def wait(due: int) -> None:
            await pacer.until(due)
            woke[due] = time.monotonic_ns()

        await asyncio.wait_for(asyncio.gather(*(wait(d) for d in dues)), timeout=10)
        assert all(woke[d] >= d for d in dues)
    finally:
        pacer.close()


async def test_a_cancelled_wait_does_not_break_the_pacer() -> None:
    pacer = Pacer()
    try:
        waiting = asyncio.create_task(pacer.until(time.monotonic_ns() + 2_000_000))
        await asyncio.sleep(0)
        waiting.cancel()
        await asyncio.wait_for(pacer.until(time.monotonic_ns() + 2_500_000), timeout=10)
    finally:
        pacer.close()


async def test_producers_wait_for_every_consumer_to_connect(tmp_path: Path) -> None:
    journal = tmp_path / "producer-0.jsonl"
    stop = asyncio.Event()
    waiting = asyncio.create_task(consumers_ready(journal, 2, stop, timeout_s=30))
    mark_ready(tmp_path / "consumer-0#1.jsonl")
    await asyncio.sleep(0.05)
    assert not waiting.done()
    mark_ready(tmp_path / "consumer-1#1.jsonl")
    await asyncio.wait_for(waiting, timeout=10)
    started = time.monotonic()
    await consumers_ready(journal, 5, stop, timeout_s=0.1)  # never all there: starts anyway
    assert time.monotonic() - started < 10
