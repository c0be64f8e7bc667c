"""timeline.html: lanes, bars coloured by outcome, fault bands, anomalous tasks marked, and the cap."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from harness.checkers.index import HistoryIndex
from harness.report.timeline import Band, Bar, bars, cut_between, fault_bands, select, spans, task_times
from harness.report.timeline_html import Page, write_timeline
from tests.unit.checkers.builder import HistoryBuilder, S


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, {k: v or "" for k, v in attrs}))

    def with_class(self, name: str) -> list[dict[str, str]]:
        return [attrs for _, attrs in self.found if name in attrs.get("class", "").split()]


def small_run() -> HistoryBuilder:
    h = HistoryBuilder()
    h.phase("load")
    h.enqueue("producer-0.0", ["t1", "t2"])
    h.deliver("consumer-0#0", [("t1", 2, 0, 1)])
    h.kill("consumer-0", held=["t1"])
    h.deliver("consumer-1#0", [("t1", 2, 0, 2), ("t2", 2, 0, 1)])
    h.complete("consumer-1#0", ["t1", "t2"], refused=["t2"])
    h.fail("consumer-1#0", [("t2", 0, "boom")], "info")
    h.invoke("consumer-2#0", "deliver", {})  # never answered
    h.phase("final")
    return h


def page(t0_ns: int, anomalous: dict[str, list[str]]) -> Page:
    return Page(title="timeline: test", verdict="INVALID", t0_ns=t0_ns, phases={}, anomalous=anomalous,
                stories={"t1": "explain/t1.txt"}, explain_command="harness explain run TID")  # fmt: skip


def test_the_page_has_a_lane_per_process_bars_by_outcome_bands_and_marked_tasks(tmp_path: Path) -> None:
    h = small_run()
    history = h.history()
    index = HistoryIndex.build(history)
    operations, bands = spans(history), fault_bands(index)
    drawn = bars(operations, index)
    assert [(b.process, b.f, b.outcome) for b in drawn] == [
        ("producer-0.0", "enqueue", "ok"), ("consumer-0#0", "deliver", "ok"), ("consumer-1#0", "deliver", "ok"),
        ("consumer-1#0", "complete", "ok"), ("consumer-1#0", "fail", "info"), ("consumer-2#0", "deliver", "info"),
    ]  # fmt: skip
    assert "REFUSED t2" in drawn[3].detail and "error: synthetic" in drawn[4].detail
    assert drawn[5].done_ns is None and "no answer" in drawn[5].detail
    assert [b.label for b in bands] == ["kill consumer-0"]
    # t1's events: its enqueue's invoke and answer, its two deliveries' answers, the completion's invoke.
    assert task_times(index, ["t1"]) == [drawn[0].invoke_ns, drawn[0].done_ns, drawn[1].done_ns, drawn[2].done_ns,
                                         drawn[3].invoke_ns]  # fmt: skip
    chosen = select(drawn, bands, task_times(index, ["t1"]))
    marked = page(h.ops[0]["time_ns"], {"t1": ["delivery: duplicated_unexplained"]})
    name = write_timeline(tmp_path, chosen, [b.invoke_ns for b in drawn], bands, marked)
    text = (tmp_path / name).read_text()
    html = Elements()
    html.feed(text)
    lanes = [attrs for tag, attrs in html.found if attrs.get("class") == "lane"]
    assert len(lanes) == 4 and "producer-0</div>" in text and "consumer-2</div>" in text
    assert len(html.with_class("op")) == 6
    assert len(html.with_class("ok")) >= 4 and len(html.with_class("open")) == 1
    marked = [attrs for attrs in html.with_class("op") if "anomaly" in attrs["class"]]
    assert len(marked) == 4  # both deliveries of t1, the enqueue and the completion that carried it
    assert marked[0]["id"] == "task-t1" and 'href="#task-t1"' in text and 'href="explain/t1.txt"' in text
    assert "anomalous: t1 (delivery: duplicated_unexplained)" in marked[1]["title"]
    assert len(html.with_class("band")) == 1  # the kill's window
    assert "<script" not in text and "http" not in text  # self-contained: nothing to fetch


def bars_every(n: int, step_ns: int, tid_of: dict[int, str] | None = None) -> list[Bar]:
    tids = tid_of or {}
    return [
        Bar("consumer-0#0", "deliver", "ok", k * step_ns, k * step_ns + step_ns // 2, (tids.get(k, f"x{k}"),), "")
        for k in range(n)
    ]


def times_of(drawn: list[Bar], tid: str) -> list[int]:
    return sorted(t for b in drawn if tid in b.tids for t in (b.invoke_ns, b.done_ns) if t is not None)


def test_a_long_run_keeps_the_windows_around_faults_and_anomalies_and_says_what_was_cut() -> None:
    bars = bars_every(10_000, S // 100, {5000: "bad"})  # 100 s of operations, one every 10 ms
    bands = [Band("kill consumer-1", 20 * S, 21 * S)]
    chosen = select(bars, bands, times_of(bars, "bad"), tasks=1, max_ops=500)
    kept = {bar.invoke_ns // (S // 100) for bar in chosen.kept}
    assert len(chosen.kept) <= 500 and chosen.total == 10_000
    assert 5000 in kept and 2050 in kept  # the anomalous task's read, and a read inside the fault
    assert 1000 not in kept and 8000 not in kept
    assert chosen.note.startswith(f"{len(chosen.kept)} of 10000 operations: those within 0.5 s of 1 fault(s)")
    assert "✂ marks where the rest was cut" in chosen.note


def test_margins_shrink_until_the_windows_fit() -> None:
    bars = bars_every(10_000, S // 100, {k: "bad" for k in range(0, 10_000, 50)})  # anomalies everywhere
    chosen = select(bars, [], times_of(bars, "bad"), tasks=1, max_ops=1000)
    assert len(chosen.kept) <= 1000
    assert re.search(r"and 0\.0\d+ s of the operations", chosen.note) or "and of those the first" in chosen.note


def test_nothing_to_centre_on_keeps_the_first_operations() -> None:
    chosen = select(bars_every(3000, 1000), [], [], max_ops=100)
    assert [b.invoke_ns for b in chosen.kept] == [k * 1000 for k in range(100)]
    assert chosen.note == "the first 100 of 3000 operations (no fault, no anomaly)"


def test_all_fit_nothing_cut() -> None:
    bars = bars_every(10, 1000)
    assert select(bars, [], [], max_ops=10).kept == bars and select(bars, [], [], max_ops=10).note == ""


def test_cut_between_counts_the_operations_left_out() -> None:
    assert cut_between([1, 2, 3, 4, 5, 6], [1, 2, 6], 2, 6) == 3
    assert cut_between([1, 2, 3], [1, 2, 3], 1, 3) == 0


def test_a_cut_page_marks_where(tmp_path: Path) -> None:
    bars = bars_every(2000, S // 100, {1500: "bad"})
    chosen = select(bars, [], times_of(bars, "bad"), max_ops=100)
    write_timeline(tmp_path, chosen, [b.invoke_ns for b in bars], [], page(0, {"bad": ["x: y"]}))
    text = (tmp_path / "timeline.html").read_text()
    assert re.search(r"✂ 1\d{3} operation\(s\) over 1\d\.\d{3} s cut", text)


def test_a_producers_threads_share_its_lane_side_by_side_and_a_slots_incarnations_follow_each_other(
    tmp_path: Path,
) -> None:
    bars = [
        Bar("producer-0.0", "enqueue", "ok", 10, 30, ("a",), ""),
        Bar("producer-0.1", "enqueue", "ok", 20, 40, ("b",), ""),  # overlaps the first: a second column
        Bar("producer-0.2", "enqueue", "ok", 50, 60, ("c",), ""),  # after both: the first column again
        Bar("consumer-0#1", "deliver", "info", 15, None, (), ""),
        Bar("consumer-0#2", "deliver", "ok", 45, 55, ("a",), ""),
    ]
    write_timeline(tmp_path, select(bars, [], []), [b.invoke_ns for b in bars], [], page(0, {}))
    html = Elements()
    html.feed((tmp_path / "timeline.html").read_text())
    lanes = [attrs["style"] for tag, attrs in html.found if attrs.get("class") == "lane"]
    assert len(lanes) == 2
    lefts = [int(re.search(r"left:(\d+)px", attrs["style"]).group(1)) for attrs in html.with_class("op")]  # type: ignore[union-attr]
    assert lefts[0] == lefts[2] < lefts[1]  # producer columns: a and c share one, b sits beside
    assert lefts[3] == lefts[4] > lefts[1]  # one consumer lane for both incarnations
