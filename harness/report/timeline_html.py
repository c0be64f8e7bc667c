"""Draws timeline.html from a harness.report.timeline selection: one self-contained page (inline CSS,
no script, nothing fetched), so it opens from the run folder or a CI artifact on a closed network.

Rows are events (an invoke, an answer, a fault's start or end, a phase), ROW_PX apart; a bar spans
its operation's rows in its process's lane; hovering a bar shows the operation (the title attribute).
A lane is one agent process: a producer (its pacer's logical threads side by side in the lane) or a
consumer slot (its incarnations one after another, each bar naming its own).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Final

from harness.report.timeline import Band, Bar, Selection, cut_between

TIMELINE_FILE: Final = "timeline.html"
ROW_PX: Final = 6
CUT_PX: Final = 18
LANE_PX: Final = 104
SUB_LANE_MIN_PX: Final = 26  # a lane with operations side by side widens to give each this much
GUTTER_PX: Final = 70
LABEL_EVERY_PX: Final = 60
OPEN_ROWS: Final = 3  # how tall a bar that never got an answer is drawn
STYLE: Final = """
body { font-family: system-ui, sans-serif; margin: 1em; color: #222; }
.head { max-width: 1100px; } .head p { margin: 0.3em 0; }
.key span { display: inline-block; padding: 0 6px; margin-right: 6px; border: 1px solid #999; }
.key .k-band { background: rgba(214, 39, 40, 0.13); } .key .k-anomaly { border: 2px solid #b00000; }
.lanes { position: sticky; top: 0; z-index: 5; background: #fff; height: 34px; border-bottom: 1px solid #999; }
.lane { position: absolute; top: 2px; font-size: 11px; text-align: center; overflow: hidden; white-space: nowrap; }
.tl { position: relative; }
.op { position: absolute; box-sizing: border-box; border: 1px solid rgba(0,0,0,0.25); border-radius: 2px;
      font-size: 9px; line-height: 10px; overflow: hidden; white-space: nowrap; z-index: 2; }
.op:hover { outline: 2px solid #000; z-index: 4; }
.ok { background: #B3F3B5; } .fail { background: #FEB5DA; } .info { background: #FFFEC1; }
.open { border: 1px dashed #555; }
.anomaly { border: 2px solid #b00000; z-index: 3; }
.band { position: absolute; background: rgba(214, 39, 40, 0.13); border-top: 1px solid rgba(214,39,40,0.6);
        z-index: 1; font-size: 10px; color: #a00; text-align: right; padding-right: 4px; box-sizing: border-box; }
.phase { position: absolute; border-top: 1px dashed #888; font-size: 10px; color: #666; z-index: 1; }
.cut { position: absolute; background: repeating-linear-gradient(45deg, #eee, #eee 4px, #fff 4px, #fff 8px);
       font-size: 10px; color: #333; z-index: 3; opacity: 0.9; padding-left: 4px; box-sizing: border-box; }
.t { position: absolute; left: 0; width: 64px; font-size: 10px; color: #666; text-align: right; }
"""
KEY: Final = (
    '<p class="key"><span class="ok">ok</span><span class="fail">fail</span><span class="info">info (no answer)</span>'
    '<span class="k-band">fault window</span><span class="k-anomaly">anomalous task</span></p>'
)
_SAFE_ID: Final = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True, slots=True)
class Page:
    """What the page says besides the bars."""

    title: str
    verdict: str
    t0_ns: int
    phases: dict[str, int]
    anomalous: dict[str, list[str]]  # tid -> "checker: kind" labels
    stories: dict[str, str]  # tid -> explain/TID.txt
    explain_command: str  # with {tid} in place of the task


def write_timeline(
    folder: Path, selection: Selection[Bar], all_invokes_ns: list[int], bands: list[Band], page: Page
) -> str:
    """Write timeline.html into `folder`; returns its file name."""
    layout = _Layout(selection.kept, bands, page.phases, all_invokes_ns)
    lanes = _Lanes(selection.kept)
    width = lanes.width_px
    parts = [_head(page, selection, bands), _lane_header(lanes, width)]
    parts.append(f'<div class="tl" style="width:{width}px;height:{layout.height_px + ROW_PX * OPEN_ROWS}px">')
    parts += layout.gutter(page.t0_ns) + layout.cuts(width) + _bands(layout, bands, width)
    parts += _phases(layout, page.phases, width)
    parts += _bars(layout, selection.kept, lanes, page)
    parts.append("</div>")
    body = "\n".join(parts)
    html = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(page.title)}</title>'
        f"<style>{STYLE}</style></head><body>{body}</body></html>\n"
    )
    (folder / TIMELINE_FILE).write_text(html)
    return TIMELINE_FILE


class _Layout:
    """Event rows and their y positions, with a cut marker wherever operations were left out."""

    def __init__(self, bars: Sequence[Bar], bands: Sequence[Band], phases: dict[str, int], all_invokes_ns: list[int]):
        times = {t for bar in bars for t in (bar.invoke_ns, bar.done_ns) if t is not None}
        times |= {t for band in bands for t in (band.start_ns, band.end_ns)}
        times |= set(phases.values())
        self.times = sorted(times)
        kept = sorted(bar.invoke_ns for bar in bars)
        self.y_px: list[int] = []
        self.cut_marks: list[tuple[int, int, float]] = []  # (y, operations cut, seconds)
        y = 0
        previous = all_invokes_ns[0] - 1 if all_invokes_ns else 0
        for t in self.times:
            y = self._cut(y, all_invokes_ns, kept, previous, t)
            self.y_px.append(y)
            y += ROW_PX
            previous = t
        if all_invokes_ns and self.times:
            y = self._cut(y, all_invokes_ns, kept, previous, all_invokes_ns[-1] + 1)
        self.height_px = y

    def _cut(self, y: int, all_invokes_ns: list[int], kept: list[int], after_ns: int, before_ns: int) -> int:
        """Mark the operations left out between two rows (or before the first, after the last)."""
        cut = cut_between(all_invokes_ns, kept, after_ns, before_ns)
        if not cut:
            return y
        self.cut_marks.append((y, cut, (before_ns - after_ns) / 1e9))
        return y + CUT_PX

    def y(self, time_ns: int) -> int:
        return self.y_px[bisect_left(self.times, time_ns)]

    def gutter(self, t0_ns: int) -> list[str]:
        labels, last = [], -LABEL_EVERY_PX
        for t, y in zip(self.times, self.y_px, strict=True):
            if y - last >= LABEL_EVERY_PX:
                labels.append(f'<div class="t" style="top:{y}px">{(t - t0_ns) / 1e9:.3f} s</div>')
                last = y
        return labels

    def cuts(self, width: int) -> list[str]:
        return [
            f'<div class="cut" style="top:{y}px;left:{GUTTER_PX}px;width:{width - GUTTER_PX}px;height:{CUT_PX - 2}px">'
            f"✂ {count} operation(s) over {seconds:.3f} s cut</div>"
            for y, count, seconds in self.cut_marks
        ]


def lane_of(process: str) -> str:
    """The lane of a process: "producer-0.3" -> "producer-0", "consumer-2#3" -> "consumer-2"."""
    return process.split("#", maxsplit=1)[0].split(".", maxsplit=1)[0]


class _Lanes:
    """Lanes left to right (producers, consumers, others; by number), and each bar's column in its lane:
    operations that overlap in one lane (a producer's threads, a dead incarnation's unanswered call and
    its successor's first) go side by side."""

    def __init__(self, bars: Sequence[Bar]) -> None:
        self.names = sorted({lane_of(bar.process) for bar in bars}, key=_lane_order)
        ends: dict[str, list[int]] = {name: [] for name in self.names}  # per lane: per column, last end
        self.column: dict[int, int] = {}
        for bar in sorted(bars, key=lambda b: b.invoke_ns):
            columns = ends[lane_of(bar.process)]
            free = next((c for c, end in enumerate(columns) if end < bar.invoke_ns), len(columns))
            if free == len(columns):
                columns.append(0)
            columns[free] = bar.invoke_ns if bar.done_ns is None else bar.done_ns
            self.column[id(bar)] = free
        self.widths = {name: max(LANE_PX, len(ends[name]) * SUB_LANE_MIN_PX) for name in self.names}
        self.sub_px = {name: self.widths[name] // max(1, len(ends[name])) for name in self.names}
        self.left: dict[str, int] = {}
        x = GUTTER_PX
        for name in self.names:
            self.left[name] = x
            x += self.widths[name]
        self.width_px = max(x, GUTTER_PX + LANE_PX)

    def place(self, bar: Bar) -> tuple[int, int]:
        """(left, width) of a bar."""
        lane = lane_of(bar.process)
        sub = self.sub_px[lane]
        return self.left[lane] + self.column[id(bar)] * sub + 2, sub - 6 if sub >= LANE_PX else sub - 3


def _lane_order(lane: str) -> tuple[int, str, int]:
    role = 0 if lane.startswith("producer") else 1 if lane.startswith("consumer") else 2
    name, _, number = lane.rpartition("-")
    return (role, name, int(number)) if number.isdigit() else (role, lane, 0)


def _head(page: Page, selection: Selection[Bar], bands: list[Band]) -> str:
    shown = f"all {selection.total} operations" if not selection.note else selection.note
    parts = [
        f"<h1>{escape(page.title)}</h1>",
        f"<p>verdict: <b>{escape(page.verdict)}</b>; showing {escape(shown)}; "
        f"{len(bands)} fault window(s). Time runs down in event order; the gutter gives seconds since the load "
        "phase began. Hover a bar for the operation.</p>",
        KEY,
    ]
    if page.anomalous:
        items = []
        for tid, labels in page.anomalous.items():
            story = page.stories.get(tid)
            link = f' (<a href="{escape(story)}">story</a>)' if story else ""
            items.append(f'<a href="#{_anchor(tid)}">{escape(tid)}</a>{link}: {escape("; ".join(labels))}')
        parts.append(
            f"<p>anomalous tasks (<code>{escape(page.explain_command)}</code> tells each one's life): "
            + ", ".join(items)
            + "</p>"
        )
    return '<div class="head">' + "".join(parts) + "</div>"


def _lane_header(lanes: _Lanes, width: int) -> str:
    names = "".join(
        f'<div class="lane" style="left:{lanes.left[lane]}px;width:{lanes.widths[lane] - 4}px">{escape(lane)}</div>'
        for lane in lanes.names
    )
    return f'<div class="lanes" style="width:{width}px">{names}</div>'


def _bands(layout: _Layout, bands: list[Band], width: int) -> list[str]:
    drawn = []
    for band in bands:
        top, height = layout.y(band.start_ns), layout.y(band.end_ns) - layout.y(band.start_ns) + ROW_PX
        label = escape(band.label)
        drawn.append(
            f'<div class="band" style="top:{top}px;left:{GUTTER_PX}px;width:{width - GUTTER_PX}px;height:{height}px" '
            f'title="{label}">{label}</div>'
        )
    return drawn


def _phases(layout: _Layout, phases: dict[str, int], width: int) -> list[str]:
    style = f"left:{GUTTER_PX}px;width:{width - GUTTER_PX}px"
    return [
        f'<div class="phase" style="top:{layout.y(t)}px;{style}">{escape(name)}</div>' for name, t in phases.items()
    ]


def _bars(layout: _Layout, bars: Sequence[Bar], lanes: _Lanes, page: Page) -> list[str]:
    anchored: set[str] = set()
    drawn = []
    for bar in bars:
        top = layout.y(bar.invoke_ns)
        bottom = layout.y(bar.done_ns) if bar.done_ns is not None else top + ROW_PX * (OPEN_ROWS - 1)
        marked = [tid for tid in bar.tids if tid in page.anomalous]
        classes = ["op", bar.outcome if bar.outcome in ("ok", "fail") else "info"]
        classes += ["open"] if bar.done_ns is None else []
        classes += ["anomaly"] if marked else []
        fresh = [tid for tid in marked if tid not in anchored]
        anchored.update(fresh)
        anchor = f' id="{_anchor(fresh[0])}"' if fresh else ""
        left, width = lanes.place(bar)
        drawn.append(
            f'<div class="{" ".join(classes)}"{anchor} style="top:{top}px;left:{left}px;width:{width}px;'
            f'height:{bottom - top + ROW_PX}px" title="{escape(_hover(bar, page, marked))}">'
            f"{escape(_label(bar))}</div>"
        )
    return drawn


def _hover(bar: Bar, page: Page, marked: list[str]) -> str:
    start = (bar.invoke_ns - page.t0_ns) / 1e9
    lines = [f"{bar.process} {bar.f}: {bar.outcome}", bar.detail]
    if bar.done_ns is None:
        lines.append(f"invoked {start:.4f} s; never answered")
    else:
        lines.append(
            f"invoked {start:.4f} s, answered {(bar.done_ns - page.t0_ns) / 1e9:.4f} s "
            f"({(bar.done_ns - bar.invoke_ns) / 1e6:.2f} ms)"
        )
    for tid in marked:
        lines.append(f"anomalous: {tid} ({'; '.join(page.anomalous[tid])})")
    return "\n".join(lines)


def _label(bar: Bar) -> str:
    count = f" {len(bar.tids)}" if bar.tids else ""
    return f"{bar.f}{count}"


def _anchor(tid: str) -> str:
    return "task-" + _SAFE_ID.sub("_", tid)
