"""A test's history (THE HISTORY FORMAT records) drawn as one SVG: a picture of what happened.

Pure: records in, an SVG string out; no I/O, no Robot, no third-party import. The same records
always give the same bytes (lanes sorted, numbers formatted with fixed decimals), and every text
from a record is escaped, so a node name or an error message cannot break the markup.

Lanes, top to bottom, sorted by name:

* one lane per membership row x observer (``row hetzner-2 @ scaleway-1``): a band per status as
  that observer read it (``cluster_nodes.list``), from one reading to the next (the last one runs
  to the end of the picture);
* one lane per node: operations as spans from invoke to ok/fail (a triangle at the start, a
  square at the end, red when it failed, open-ended when it never answered), faults (red
  downward triangle) and heals (green upward triangle), a thin strip for the sync mode
  (``sync.status``) and an amber strip while the selected generation is not the running one
  (``generation.status``);
* hand-made requests (``probe.<method>``, ``healthz``) as small diamonds on their node's lane,
  teal when accepted, orange when refused, red when nothing answered;
* a ``run`` lane for records that name no node, with the invariant checker's verdict
  (``history.check``) as a large diamond, green when every invariant held, red when not.

A test that recorded nothing, or nothing drawn as a lane, gets a picture saying so (with its
failure line, if it failed): every test has a picture.

A red line marks the failure point; the axis reads seconds from the start of the test.
Elements carry ``data-*`` attributes (``data-node``, ``data-status``, ``data-what``, ...) so a
test (and a curious reader of the SVG) can find them without guessing from colours.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

from tribesqa.reporting.timeline_lanes import Lane, LaneBuilder, Mark, mono_of, short

STATUS_COLOURS = {
    "syncing": "#f2c14e",
    "active": "#4caf50",
    "decommissioned": "#9e9e9e",
}
UNKNOWN_COLOUR = "#b39ddb"
SYNC_COLOURS = {"live": "#64b5f6", "catching_up": "#ffb74d", "stopped": "#757575"}
REQUEST_COLOURS = {"accepted": "#00897b", "refused": "#ef6c00", "no-answer": "#d32f2f"}
CHECK_COLOURS = {"held": "#2e7d32", "broken": "#d32f2f"}
NOTE_H = 24

WIDTH = 980
LABEL_W = 230
PLOT_W = WIDTH - LABEL_W - 20
AXIS_H = 34
LEGEND_H = 34
TICK_STEPS = (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600)


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def _num(value: float) -> str:
    return f"{value:.3f}"


def _px(value: float) -> str:
    return f"{value:.1f}"


def _tick_step(duration: float) -> float:
    return next((step for step in TICK_STEPS if duration / step <= 10), TICK_STEPS[-1])


def render_timeline(
    records: Iterable[Mapping[str, Any]],
    *,
    title: str,
    start: float | None = None,
    failure_at: float | None = None,
    failure_message: str = "",
) -> str:
    """The SVG of one test's records (``mono`` times; ``start``: the test's start, default the first
    record; ``failure_at``: the ``mono`` time of the failure, drawn as a red line)."""
    ordered = sorted(records, key=lambda r: (mono_of(r, 0.0), int(r.get("seq") or 0)))
    monos = [mono_of(r, 0.0) for r in ordered if mono_of(r, None) is not None]
    origin = start if start is not None else (min(monos) if monos else 0.0)
    last = max([*monos, origin, *([failure_at] if failure_at is not None else [])])
    duration = max(last - origin, 0.001)
    lanes = LaneBuilder(ordered, origin, last).build()
    scale = PLOT_W / duration

    def x(at: float) -> float:
        return LABEL_W + max(0.0, min(at, duration)) * scale

    note = _empty_note(ordered) if not lanes else None
    height = AXIS_H + sum(lane.height for lane in lanes) + (NOTE_H if note else 0) + LEGEND_H + 8
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="tribes-timeline" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" '
        f'font-size="11" data-title="{_attr(title)}" data-duration="{_num(duration)}">',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>',
    ]
    out += _axis(duration, x, height)
    y = AXIS_H
    for lane in lanes:
        out += _lane(lane, y, x)
        y += lane.height
    if note is not None:
        out.append(
            f'<text class="empty" data-records="{len(ordered)}" x="{LABEL_W}" y="{y + 16}" '
            f'fill="#555">{escape(note)}</text>'
        )
        y += NOTE_H
    if failure_at is not None:
        at = failure_at - origin
        out.append(
            f'<line class="failure" data-at="{_num(at)}" x1="{_px(x(at))}" y1="{AXIS_H - 6}" '
            f'x2="{_px(x(at))}" y2="{y}" stroke="#d32f2f" stroke-width="2">'
            f"<title>failed at {_num(at)} s: {escape(short(failure_message, 300))}</title></line>"
        )
    out += _legend(y + 6)
    out.append("</svg>")
    return "\n".join(out)


def _empty_note(records: list[Mapping[str, Any]]) -> str:
    if not records:
        return "nothing recorded in this test: it called no node and no Legion operation"
    whats = sorted({str(r.get("what")) for r in records})
    return f"{len(records)} record(s), none drawn as a lane: {short(', '.join(whats), 90)}"


def _axis(duration: float, x: Any, height: int) -> list[str]:
    step = _tick_step(duration)
    parts = ['<g class="axis"><text x="4" y="14" fill="#333">seconds from test start</text>']
    count = int(duration / step + 1e-9)
    for index in range(count + 1):
        at = index * step
        px = _px(x(at))
        parts.append(
            f'<line x1="{px}" y1="{AXIS_H - 8}" x2="{px}" y2="{height - LEGEND_H}" stroke="#eeeeee"/>'
            f'<text class="tick" data-at="{_num(at)}" x="{px}" y="{AXIS_H - 12}" '
            f'text-anchor="middle" fill="#555">{at:g}</text>'
        )
    parts.append("</g>")
    return parts


def _lane(lane: Lane, y: int, x: Any) -> list[str]:
    parts = [
        f'<g class="lane" data-lane="{_attr(lane.key)}">',
        f'<line x1="0" y1="{y + lane.height}" x2="{WIDTH}" y2="{y + lane.height}" stroke="#e0e0e0"/>',
        f'<text x="4" y="{y + 13}" fill="#222">{escape(short(lane.label, 36))}</text>',
    ]
    for band in lane.bands:
        colour = STATUS_COLOURS.get(band.label, UNKNOWN_COLOUR)
        parts.append(
            f'<rect class="band" {_data(band.attrs)} data-from="{_num(band.start)}" '
            f'data-to="{_num(band.end)}" x="{_px(x(band.start))}" y="{y + 3}" '
            f'width="{_px(max(x(band.end) - x(band.start), 1.0))}" height="{lane.height - 6}" '
            f'fill="{colour}"><title>{escape(band.label)} from {band.start:.2f} s to '
            f"{band.end:.2f} s</title></rect>"
        )
    for band in lane.strips:
        kind = band.attrs["class"]
        attrs = {k: v for k, v in band.attrs.items() if k != "class"}
        colour = "#ff8f00" if kind == "generation" else SYNC_COLOURS.get(band.label, UNKNOWN_COLOUR)
        top = y + lane.height - (4 if kind == "sync" else 8)
        parts.append(
            f'<rect class="{kind}" {_data(attrs)} data-from="{_num(band.start)}" '
            f'data-to="{_num(band.end)}" x="{_px(x(band.start))}" y="{top}" '
            f'width="{_px(max(x(band.end) - x(band.start), 1.0))}" height="3" fill="{colour}">'
            f"<title>{kind} {escape(band.label)} from {band.start:.2f} s</title></rect>"
        )
    for mark in lane.marks:
        parts.append(_mark(mark, y + 12, x))
    parts.append("</g>")
    return parts


def _data(attrs: Mapping[str, str]) -> str:
    return " ".join(f'{key}="{_attr(value)}"' for key, value in sorted(attrs.items()))


def _mark(mark: Mark, mid: int, x: Any) -> str:
    x0 = x(mark.start)
    end = f' data-to="{_num(mark.end)}"' if mark.end is not None else ""
    tip = f"{mark.what} at {mark.start:.2f} s"
    if mark.end is not None:
        tip += f" → {mark.outcome} at {mark.end:.2f} s"
    head = (
        f'<g class="{mark.kind}" {_data(mark.attrs)} data-outcome="{mark.outcome}" '
        f'data-from="{_num(mark.start)}"{end}><title>{escape(tip)}: {escape(mark.detail)}</title>'
    )
    if mark.kind in ("fault", "heal"):
        colour, tip_y = ("#d32f2f", mid + 6) if mark.kind == "fault" else ("#2e7d32", mid - 8)
        base_y = mid - 6 if mark.kind == "fault" else mid + 6
        shape = (
            f'<polygon points="{_px(x0 - 6)},{base_y} {_px(x0 + 6)},{base_y} {_px(x0)},{tip_y}" '
            f'fill="{colour}"/><line x1="{_px(x0)}" y1="{mid - 10}" x2="{_px(x0)}" y2="{mid + 14}" '
            f'stroke="{colour}" stroke-dasharray="2,2"/>'
        )
        return head + shape + "</g>"
    if mark.kind == "info":
        return head + f'<circle cx="{_px(x0)}" cy="{mid}" r="3" fill="#607d8b"/></g>'
    if mark.kind in ("request", "check"):
        size = 4 if mark.kind == "request" else 7
        colours = REQUEST_COLOURS if mark.kind == "request" else CHECK_COLOURS
        colour = colours.get(mark.outcome, UNKNOWN_COLOUR)
        return head + (
            f'<polygon points="{_px(x0)},{mid - size} {_px(x0 + size)},{mid} {_px(x0)},'
            f'{mid + size} {_px(x0 - size)},{mid}" fill="{colour}"/></g>'
        )
    colour = "#d32f2f" if mark.outcome == "fail" else "#1565c0"
    x1 = x(mark.end) if mark.end is not None else x0 + 12
    dash = ' stroke-dasharray="3,2"' if mark.end is None else ""
    shape = (
        f'<line x1="{_px(x0)}" y1="{mid}" x2="{_px(x1)}" y2="{mid}" stroke="{colour}" '
        f'stroke-width="2"{dash}/><polygon points="{_px(x0)},{mid - 5} {_px(x0)},{mid + 5} '
        f'{_px(x0 + 7)},{mid}" fill="{colour}"/>'
    )
    if mark.end is not None:
        shape += f'<rect x="{_px(x1 - 3)}" y="{mid - 3}" width="6" height="6" fill="{colour}"/>'
    return head + shape + "</g>"


def _legend(y: int) -> list[str]:
    items = [(f"status {name}", colour) for name, colour in STATUS_COLOURS.items()]
    items += [(f"sync {name}", colour) for name, colour in SYNC_COLOURS.items()]
    items += [
        ("selected≠running", "#ff8f00"),
        ("operation", "#1565c0"),
        ("failed op", "#d32f2f"),
        ("fault ▼", "#d32f2f"),
        ("heal ▲", "#2e7d32"),
        ("request accepted ◆", REQUEST_COLOURS["accepted"]),
        ("request refused ◆", REQUEST_COLOURS["refused"]),
        ("invariants held ◆", CHECK_COLOURS["held"]),
        ("invariant broken ◆", CHECK_COLOURS["broken"]),
    ]
    parts = [f'<g class="legend" transform="translate(4,{y})">']
    offset, row = 0, 0
    for label, colour in items:
        width = 14 + 6 * len(label) + 8
        if offset + width > WIDTH - 10:
            offset, row = 0, row + 14
        parts.append(
            f'<rect x="{offset}" y="{row}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{offset + 13}" y="{row + 9}" fill="#333">{escape(label)}</text>'
        )
        offset += width
    parts.append("</g>")
    return parts
