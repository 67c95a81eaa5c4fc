"""The fleet matrix view: one HTML page of nodes x scenarios built from a run's output.xml.

A test's *scenario* is its ``scenario:<name>`` tag. Its *nodes* are its ``node:<name>`` tags,
which the keyword library adds for every node the test reached (management API, SSH, plugin
API, a Legion step on a named node), setup and teardown of the test included. A cell shows the
worst status of the tests of that scenario that reached that node (FAIL > PASS > SKIP) and links
each test to its entry in log.html (``log.html#<test id>``). Tests that reached no node (e.g.
``Legion Node List Should Be Empty`` alone) are in the ``(no node)`` row; tests without a scenario tag in the ``(no scenario)`` column.

``tribes-qa run`` writes ``<outputdir>/fleet-matrix.html`` after every run;
``tribes-qa matrix OUTPUT.xml`` builds it for any output.xml (e.g. one merged with rebot).
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from robot.api import ExecutionResult

SCENARIO_TAG = "scenario:"
NODE_TAG = "node:"
NO_NODE = "(no node)"
NO_SCENARIO = "(no scenario)"
GATE_METADATA = "Gate node"
STATUS_ORDER = {"FAIL": 0, "PASS": 1, "SKIP": 2, "NOT RUN": 3}


@dataclass(frozen=True)
class TestRef:
    id: str
    name: str
    longname: str
    status: str
    message: str
    detail: str = ""  # e.g. "gate node ovh-1" for one process of the per-node gate


@dataclass
class FleetMatrix:
    source: str
    nodes: list[str]
    scenarios: list[str]
    cells: dict[tuple[str, str], list[TestRef]] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)

    def status(self, node: str, scenario: str) -> str | None:
        """The cell's status: the worst of its tests (None for an empty cell)."""
        tests = self.cells.get((node, scenario), [])
        if not tests:
            return None
        return min((t.status for t in tests), key=lambda s: STATUS_ORDER.get(s, 9))


def _natural(text: str) -> list[object]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _tag_values(tags: object, prefix: str) -> list[str]:
    return sorted(
        {str(tag)[len(prefix) :] for tag in tags if str(tag).lower().startswith(prefix)}  # type: ignore[attr-defined]
    )


def read_fleet_matrix(output_xml: Path | str) -> FleetMatrix:
    result = ExecutionResult(str(output_xml))
    cells: dict[tuple[str, str], list[TestRef]] = {}
    totals = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    nodes: set[str] = set()
    scenarios: set[str] = set()
    for test in result.suite.all_tests:
        totals[test.status] = totals.get(test.status, 0) + 1
        metadata = getattr(test.parent, "metadata", {}) or {}
        gate_node = next((v for k, v in metadata.items() if k.lower() == GATE_METADATA.lower()), "")
        ref = TestRef(
            id=test.id,
            name=test.name,
            longname=test.full_name,
            status=test.status,
            message=test.message,
            detail=f"gate node {gate_node}" if gate_node else "",
        )
        test_nodes = _tag_values(test.tags, NODE_TAG) or [NO_NODE]
        test_scenarios = _tag_values(test.tags, SCENARIO_TAG) or [NO_SCENARIO]
        for node in test_nodes:
            for scenario in test_scenarios:
                cells.setdefault((node, scenario), []).append(ref)
        nodes.update(test_nodes)
        scenarios.update(test_scenarios)
    ordered_nodes = sorted(nodes - {NO_NODE}, key=_natural) + (
        [NO_NODE] if NO_NODE in nodes else []
    )
    ordered_scenarios = sorted(scenarios - {NO_SCENARIO}) + (
        [NO_SCENARIO] if NO_SCENARIO in scenarios else []
    )
    return FleetMatrix(str(output_xml), ordered_nodes, ordered_scenarios, cells, totals)


_CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; }
th, td { border: 1px solid #bbb; padding: 4px 8px; vertical-align: top; }
th { background: #eee; }
th.node { text-align: left; white-space: nowrap; }
td.PASS { background: #dff0d8; } td.FAIL { background: #f2dede; } td.SKIP { background: #fcf8e3; }
td.empty { background: #fafafa; color: #aaa; text-align: center; }
.badge { font-weight: bold; }
.PASS > .badge, a.PASS { color: #2b6e2b; } .FAIL > .badge, a.FAIL { color: #a00000; }
.SKIP > .badge, a.SKIP { color: #8a6d00; }
ul { margin: 2px 0 0 0; padding-left: 1.2em; font-size: 90%; }
.note { color: #555; font-size: 90%; max-width: 70em; }
"""


def render_html(matrix: FleetMatrix, log_href: str = "log.html") -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(s)}</th>" for s in matrix.scenarios)
    rows = []
    for node in matrix.nodes:
        cells = []
        for scenario in matrix.scenarios:
            status = matrix.status(node, scenario)
            if status is None:
                cells.append('<td class="empty">&ndash;</td>')
                continue
            items = []
            for test in matrix.cells[(node, scenario)]:
                label = test.name + (f" [{test.detail}]" if test.detail else "")
                title = f"{test.longname}: {test.status}" + (
                    f": {test.message}" if test.message else ""
                )
                items.append(
                    f'<li><a class="{esc(test.status)}" href="{esc(log_href)}#{esc(test.id)}" '
                    f'title="{esc(title[:500], quote=True)}">{esc(label)}</a> '
                    f"({esc(test.status)})</li>"
                )
            cells.append(
                f'<td class="{esc(status)}"><span class="badge">{esc(status)}</span>'
                f"<ul>{''.join(items)}</ul></td>"
            )
        rows.append(f'<tr><th class="node">{esc(node)}</th>{"".join(cells)}</tr>')
    totals = ", ".join(f"{count} {status.lower()}" for status, count in matrix.totals.items())
    generated = datetime.now().isoformat(timespec="seconds")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Fleet matrix</title>
<style>{_CSS}</style></head>
<body>
<h1>Fleet matrix</h1>
<p>{esc(totals)} &middot; from <code>{esc(matrix.source)}</code> &middot; generated {esc(generated)}
&middot; <a href="{esc(log_href)}">log.html</a></p>
<p class="note">Rows: the nodes each test reached (its <code>node:&lt;name&gt;</code> tags:
management API, SSH or plugin API calls, the test's setup and teardown included). Columns: the
test's <code>scenario:&lt;name&gt;</code> tag. A cell is the worst status of its tests
(FAIL &gt; PASS &gt; SKIP); each test links to its entry in log.html.</p>
<table>
<tr><th>node \\ scenario</th>{head}</tr>
{chr(10).join(rows)}
</table>
</body></html>
"""


def write_fleet_matrix(
    output_xml: Path | str, html_path: Path | str, log_html: Path | str | None = None
) -> Path:
    """Build the page for ``output_xml``; links go to ``log_html`` (default: log.html beside it)."""
    output_xml, html_path = Path(output_xml), Path(html_path)
    log = Path(log_html) if log_html is not None else output_xml.parent / "log.html"
    href = Path(os.path.relpath(log.resolve(), html_path.resolve().parent)).as_posix()
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(render_html(read_fleet_matrix(output_xml), href), encoding="utf-8")
    return html_path
