"""HTML fragments for Robot's log.html: diff matrices, wait timelines, mismatch lists.

Pure string building. Everything that comes from a node is escaped (a hostile or broken node
must not be able to inject markup into the log). Only inline styles: the fragments are
embedded in log.html, whose stylesheet we do not control.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tribesqa.reporting.diffing import PRESENCE, Matrix, Mismatch, format_value
from tribesqa.waiting import Timeline, TimelineRow

__all__ = [
    "DIFF_BACKGROUND",
    "failure_report_html",
    "matrix_table_html",
    "mismatches_html",
    "timeline_html",
]

DIFF_BACKGROUND = "#ffd7d7"
_UNREACHABLE_BACKGROUND = "#e4e4e4"
_ERROR_COLOR = "#a00000"

_TABLE = "border-collapse:collapse;font-size:12px;margin:4px 0"
_TH = "border:1px solid #bbb;padding:2px 6px;background:#f0f0f0;text-align:left;vertical-align:top"
_TD = "border:1px solid #bbb;padding:2px 6px;vertical-align:top"
_SMALL = "font-size:11px;color:#555"


def _e(value: Any) -> str:
    """Escape any value for text and attribute positions."""
    return html.escape(str(value), quote=True)


def _emphasized_field(cell: Mapping[str, Any]) -> str | None:
    """The field shown in bold: ``status`` for membership, else the cell's first field."""
    if "status" in cell:
        return "status"
    return next(iter(cell), None)


def _cell_html(matrix: Matrix, row: str, node: str, differing: set[tuple[str, str, str]]) -> str:
    """One ``<td>``: the node's fields for the row, marked when off the majority."""
    if node in matrix.unreachable:
        return f'<td style="{_TD};background:{_UNREACHABLE_BACKGROUND};color:#777">?</td>'
    marked = matrix.differing_fields(row, node, differing)
    cell = matrix.cell(row, node)
    if cell is None:
        body = "<i>— missing —</i>"
    else:
        bold = _emphasized_field(cell)
        head = ""
        small: list[str] = []
        for name, value in cell.items():
            # Null fields (decommissioned_at of a live node) only add noise, unless they differ.
            if value is None and name not in marked and name != bold:
                continue
            text = _e(format_value(value))
            # A differing field is underlined in red so the eye finds it inside the cell.
            if name in marked:
                text = f'<span style="color:{_ERROR_COLOR};text-decoration:underline">{text}</span>'
            if name == bold:
                head = f"<b>{text}</b>"
            else:
                small.append(f"{_e(name)}: {text}")
        body = head
        if small:
            body += f'{"<br>" if head else ""}<span style="{_SMALL}">{"<br>".join(small)}</span>'
    if not marked:
        return f'<td style="{_TD}">{body}</td>'
    reference = matrix.reference(row)
    if PRESENCE in marked:
        tooltip = (
            "most nodes lack this row"
            if reference is None
            else "most nodes have: "
            + ", ".join(f"{k}={format_value(v)}" for k, v in reference.items())
        )
    else:
        tooltip = "majority: " + ", ".join(
            f"{name}={format_value(matrix.majority(row, name))}" for name in marked
        )
    return (
        f'<td class="tribes-diff" title="{_e(tooltip)}" '
        f'style="{_TD};background:{DIFF_BACKGROUND}">{body}</td>'
    )


def matrix_table_html(matrix: Matrix, *, title: str) -> str:
    """One table, rows x nodes; differing cells get class ``tribes-diff``, a red background and
    the majority value in ``title``; missing cells read "— missing —"; unreachable columns are
    marked in their header."""
    differing = matrix.differing()
    off_rows = {row for row, _, _ in differing}
    header = [f'<th style="{_TH}">{_e(title)}</th>']
    for node in matrix.nodes:
        if node in matrix.unreachable:
            header.append(
                f'<th class="tribes-unreachable" style="{_TH};background:{_UNREACHABLE_BACKGROUND}"'
                f' title="no answer from this node">{_e(node)}<br>'
                f'<span style="color:{_ERROR_COLOR}">unreachable</span></th>'
            )
        else:
            header.append(f'<th style="{_TH}">{_e(node)}</th>')
    lines = [f'<table class="tribes-matrix" style="{_TABLE}">', "<tr>" + "".join(header) + "</tr>"]
    for row in matrix.row_keys:
        label = f"<b>{_e(row)}</b>" if row in off_rows else _e(row)
        cells = "".join(_cell_html(matrix, row, node, differing) for node in matrix.nodes)
        lines.append(f'<tr><th style="{_TH}">{label}</th>{cells}</tr>')
    if not matrix.row_keys:
        lines.append(
            f'<tr><td style="{_TD}" colspan="{len(matrix.nodes) + 1}"><i>no rows</i></td></tr>'
        )
    lines.append("</table>")
    return "\n".join(lines)


def _span(first: float, last: float) -> str:
    return f"{first:.1f}" if round(first, 1) == round(last, 1) else f"{first:.1f}&ndash;{last:.1f}"


def _timeline_nodes(rows: Iterable[TimelineRow]) -> list[str]:
    nodes: list[str] = []
    for row in rows:
        nodes.extend(node for node in row.cells if node not in nodes)
    return nodes


def timeline_html(timeline: Timeline | Sequence[TimelineRow], nodes: Sequence[str]) -> str:
    """Compact table: one line per run of identical attempts (polls, seconds, per-node value)."""
    rows = list(timeline)
    elided = timeline.elided_rows if isinstance(timeline, Timeline) else 0
    header = "".join(
        f'<th style="{_TH}">{_e(text)}</th>' for text in ("polls", "t (s)", *nodes, "verdict")
    )
    lines = [f'<table class="tribes-timeline" style="{_TABLE}">', f"<tr>{header}</tr>"]
    for row in rows:
        polls = (
            f"#{row.first_attempt}"
            if row.count == 1
            else f"#{row.first_attempt}&ndash;#{row.last_attempt} &times;{row.count}"
        )
        cells = [
            f'<td style="{_TD}">{polls}</td>',
            f'<td style="{_TD}">{_span(row.first_s, row.last_s)}</td>',
        ]
        for node in nodes:
            text = _e(row.cells.get(node, ""))
            if node in row.errors:
                cells.append(f'<td style="{_TD};color:{_ERROR_COLOR}">{text}</td>')
            else:
                cells.append(f'<td style="{_TD}">{text}</td>')
        cells.append(f'<td style="{_TD}">{_e(row.summary)}</td>')
        lines.append("<tr>" + "".join(cells) + "</tr>")
    if elided and isinstance(timeline, Timeline):
        # Timeline dropped rows right after its first quarter; mark the gap where it is.
        head = max(1, timeline.max_rows // 4)
        marker = (
            f'<tr><td style="{_TD}" colspan="{len(nodes) + 3}">'
            f"<i>… {elided} changing rows elided …</i></td></tr>"
        )
        lines.insert(2 + head, marker)
    lines.append("</table>")
    return "\n".join(lines)


def mismatches_html(mismatches: Sequence[Mismatch]) -> str:
    """Table of observer / row / field / expected / actual, one line per mismatch."""
    if not mismatches:
        return "<p><i>no mismatches</i></p>"
    header = "".join(
        f'<th style="{_TH}">{text}</th>'
        for text in ("observer", "row", "field", "expected", "actual")
    )
    lines = [f'<table class="tribes-mismatches" style="{_TABLE}">', f"<tr>{header}</tr>"]
    for item in mismatches:
        lines.append(
            "<tr>"
            f'<td style="{_TD}">{_e(item.node)}</td>'
            f'<td style="{_TD}">{_e(item.row)}</td>'
            f'<td style="{_TD}">{_e(item.field)}</td>'
            f'<td style="{_TD}">{_e(format_value(item.expected))}</td>'
            f'<td style="{_TD};background:{DIFF_BACKGROUND}">{_e(format_value(item.actual))}</td>'
            "</tr>"
        )
    lines.append("</table>")
    return "\n".join(lines)


def _safe_href(href: str) -> str:
    """Artifacts are relative files; refuse script URLs outright."""
    stripped = "".join(href.split()).lower()
    return "#" if stripped.startswith(("javascript:", "data:", "vbscript:")) else href


def failure_report_html(
    message: str,
    matrix: Matrix | None = None,
    timeline: Timeline | Sequence[TimelineRow] | None = None,
    links: Mapping[str, str] | None = None,
    *,
    mismatches: Sequence[Mismatch] | None = None,
    matrix_title: str = "row \\ node",
) -> str:
    """The failure explained: the one-line message, the diff matrix, mismatches, the timeline
    (collapsed under ``<details>``) and links to the per-node artifacts."""
    parts = [
        '<div class="tribes-failure" style="font-family:sans-serif">',
        f'<div style="font-weight:bold;color:{_ERROR_COLOR};margin:2px 0">{_e(message)}</div>',
    ]
    if matrix is not None:
        parts.append(matrix_table_html(matrix, title=matrix_title))
    if mismatches:
        parts.append(mismatches_html(mismatches))
    if timeline is not None:
        rows = list(timeline)
        nodes = _timeline_nodes(rows)
        attempts = rows[-1].last_attempt if rows else 0
        parts.append(
            f"<details><summary>timeline: {attempts} polls in {len(rows)} distinct states"
            f"</summary>{timeline_html(timeline, nodes)}</details>"
        )
    if links:
        anchors = " · ".join(
            f'<a href="{_e(_safe_href(href))}">{_e(label)}</a>' for label, href in links.items()
        )
        parts.append(f'<div style="{_SMALL};margin:4px 0">artifacts: {anchors}</div>')
    parts.append("</div>")
    return "\n".join(parts)
