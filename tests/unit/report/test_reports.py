"""report.md and report.html of a run: the verdict table, the figures and the plots."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from harness.report.html import write_html
from harness.report.markdown import write_report


def verdict(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "valid": True, "scenario": "steady", "seed": 3, "queue": "taskq", "code_version": "x+abc",
        "redis": {"redis_version": "7.0.15", "provider": "local", "persistence": "none"},
        "run": {"duration_s": 1}, "faults": {"planned": 1, "applied": 1}, "restarts": 0,
        "replay": "harness replay run", "latency_source": "history",
        "checkers": [{"name": "delivery", "valid": True, "figures": {"lost": 0}, "anomalies": [], "note": ""},
                     {"name": "priority", "valid": False, "figures": {"inversions": 2}, "anomalies": [{"kind": "x"}],
                      "note": "<b>bold</b>"}],
        "throughput": {"completed_during_load": 100, "per_second": 99.5},
        "latency_ms": {"enqueue_to_start": {"count": 100, "p50": 1.5, "p99": 3.0, "max": 4.0}},
        "agents": {"consumer": {"processes": 2, "cpu_s": 0.5, "cpu_us_per_task": 50.0}},
    }  # fmt: skip
    return {**base, **overrides}


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.sources += [v or "" for k, v in attrs if k == "src"]


def test_markdown_shows_the_verdict_table_latency_table_costs_and_plots(tmp_path: Path) -> None:
    write_report(tmp_path, verdict(), ["throughput.png", "latency.png"])
    text = (tmp_path / "report.md").read_text()
    assert "| priority | INVALID | inversions=2 (<b>bold</b>) |" in text
    assert "| enqueue to start | 100 | 1.5 | - | 3.0 | - | - | 4.0 |" in text
    assert "| consumer | 2 | 0.5 | 50.0 |" in text
    assert "](throughput.png)" in text and "](latency.png)" in text


def test_html_is_one_page_with_relative_images_and_escaped_text(tmp_path: Path) -> None:
    write_html(tmp_path, verdict(), ["throughput.png", "percentiles.png"], problem="one plot <failed>")
    page = (tmp_path / "report.html").read_text()
    images = _Images()
    images.feed(page)
    assert images.sources == ["throughput.png", "percentiles.png"]
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold</b>" not in page
    assert "one plot &lt;failed&gt;" in page
    assert '<span class="INVALID">INVALID</span>' not in page.split("<h2>")[0]  # the headline shows the run's verdict


def test_a_run_without_checks_says_why(tmp_path: Path) -> None:
    unchecked = verdict(valid=None, checkers=[], note="journaling was off", latency_ms={}, agents={})
    write_html(tmp_path, unchecked)
    write_report(tmp_path, unchecked)
    assert "journaling was off" in (tmp_path / "report.html").read_text()
    assert "## Plots" not in (tmp_path / "report.md").read_text()
