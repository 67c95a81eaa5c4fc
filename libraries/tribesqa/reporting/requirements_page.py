"""The requirements page: requirement -> tests -> faults, and each requirement's result in a run.

One self-contained HTML page (no script, every text escaped, an anchor ``#req-<ID>`` per
requirement) from a :class:`tribesqa.running.requirements.Report`. Given a run's output.xml,
each requirement shows its result in that run, from the Robot tests tagged ``req:<ID>`` there:

* FAIL when any of them failed;
* PASS when none failed and at least one passed;
* NOT RUN when none ran (absent from the run, or skipped).

Each of those tests links to its entry in ``log.html`` (beside the output.xml) by its result id
(``log.html#s1-s2-t3``). pytest tests are listed, without a result (see the pytest report).

``tribes-qa run`` writes ``<outputdir>/requirements.html`` after every run;
``tribes-qa requirements --output PAGE [--results OUTPUT.xml]`` writes it on demand.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tribesqa.running.requirements import Report, Requirement, TracedTest

PASS, FAIL, SKIP, NOT_RUN = "PASS", "FAIL", "SKIP", "NOT RUN"
REQ_TAG = "req:"


@dataclass(frozen=True)
class RunTest:
    """A test as the run recorded it."""

    id: str  # Robot's result id, the anchor in log.html
    name: str
    suite_file: str
    status: str
    message: str
    ids: tuple[str, ...]


@dataclass
class RunResults:
    source: str
    log_href: str
    tests: list[RunTest]

    def of(self, ident: str) -> list[RunTest]:
        return [test for test in self.tests if ident in test.ids]


def read_results(output_xml: Path | str, log_href: str = "log.html") -> RunResults:
    """The run's tests and their ``req:`` ids (raises robot's DataError on a bad file)."""
    from robot.api import ExecutionResult

    result = ExecutionResult(str(output_xml))
    tests = []
    for test in result.suite.all_tests:
        ids = tuple(
            str(tag)[len(REQ_TAG) :].strip()
            for tag in test.tags
            if str(tag).lower().startswith(REQ_TAG)
        )
        suite_file = Path(test.source).name if test.source else ""
        tests.append(RunTest(test.id, test.name, suite_file, test.status, test.message, ids))
    return RunResults(str(output_xml), log_href, tests)


def requirement_status(tests: list[RunTest]) -> str:
    statuses = {test.status for test in tests}
    if FAIL in statuses:
        return FAIL
    if PASS in statuses:
        return PASS
    return NOT_RUN


_CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #bbb; padding: 4px 8px; vertical-align: top; text-align: left; }
th { background: #eee; }
td.id { white-space: nowrap; font-weight: bold; }
td.PASS { background: #dff0d8; } td.FAIL { background: #f2dede; }
td.NOT-RUN { background: #f5f5f5; color: #555; }
a.PASS { color: #2b6e2b; } a.FAIL { color: #a00000; } a.SKIP { color: #8a6d00; }
ul { margin: 0; padding-left: 1.2em; font-size: 90%; }
.none { color: #a00000; } .source { color: #555; font-size: 85%; }
.problems li { color: #a00000; } .note { color: #555; font-size: 90%; max-width: 70em; }
"""


def _status_class(status: str) -> str:
    return status.replace(" ", "-")


def _test_items(
    requirement: Requirement, traced: list[TracedTest], results: RunResults | None
) -> str:
    esc = html.escape
    items = []
    run = results.of(requirement.id) if results else []
    matched: set[str] = set()
    for test in traced:
        found = [
            r
            for r in run
            if test.kind == "robot"
            and r.name == test.name
            and r.suite_file == Path(test.source).name
        ]
        if results is None or test.kind == "pytest":
            suffix = " (pytest)" if test.kind == "pytest" and results else ""
            items.append(f"<li>{esc(test.label)}{suffix}</li>")
            continue
        if not found:
            items.append(f"<li>{esc(test.label)} ({NOT_RUN})</li>")
        for r in found:
            matched.add(r.id)
            items.append(_linked(test.label, r, results.log_href))
    for r in run:  # tagged in the run but not in these suites (e.g. another checkout's run)
        if r.id not in matched and results is not None:
            items.append(_linked(f"{r.suite_file} :: {r.name}", r, results.log_href))
    if not items and requirement.untestable:
        return f'<li class="none">untestable: {esc(requirement.untestable)}</li>'
    return "".join(items) or '<li class="none">no test</li>'


def _linked(label: str, test: RunTest, log_href: str) -> str:
    esc = html.escape
    title = f"{test.status}: {test.message}" if test.message else test.status
    return (
        f'<li><a class="{esc(test.status)}" href="{esc(log_href)}#{esc(test.id)}" '
        f'title="{esc(title[:500], quote=True)}">{esc(label)}</a> ({esc(test.status)})</li>'
    )


def render_html(report: Report, results: RunResults | None = None) -> str:
    esc = html.escape
    rows = []
    counts = {PASS: 0, FAIL: 0, NOT_RUN: 0}
    for requirement in report.requirements:
        anchor = f"req-{requirement.id}"
        faults = (
            ", ".join(f"<code>{esc(name)}</code>" for name in requirement.faults)
            if requirement.faults
            else f"no fault: {esc(requirement.no_fault or '')}"
        )
        traced = report.tests.get(requirement.id, [])
        status_cell = ""
        if results is not None:
            status = requirement_status(results.of(requirement.id))
            counts[status] += 1
            status_cell = f'<td class="{_status_class(status)}">{esc(status)}</td>'
        rows.append(
            f'<tr id="{esc(anchor, quote=True)}"><td class="id">'
            f'<a href="#{esc(anchor, quote=True)}">{esc(requirement.id)}</a></td>{status_cell}'
            f'<td>{esc(requirement.clause)}<div class="source">{esc(requirement.source)}</div></td>'
            f"<td><ul>{_test_items(requirement, traced, results)}</ul></td><td>{faults}</td></tr>"
        )
    problems = "".join(f"<li>{esc(problem)}</li>" for problem in report.problems)
    problem_block = (
        f'<h2>{len(report.problems)} problem(s)</h2><ul class="problems">{problems}</ul>'
        if report.problems
        else "<p>No traceability problem.</p>"
    )
    run_line = ""
    status_head = ""
    if results is not None:
        summary = ", ".join(f"{count} {status}" for status, count in counts.items())
        run_line = (
            f"<p>Results of <code>{esc(results.source)}</code>: {esc(summary)} &middot; "
            f'<a href="{esc(results.log_href, quote=True)}">log.html</a></p>'
        )
        status_head = "<th>result</th>"
    generated = datetime.now().isoformat(timespec="seconds")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Requirements</title>
<style>{_CSS}</style></head>
<body>
<h1>Requirements</h1>
<p>{len(report.requirements)} requirement(s) from <code>{esc(report.catalogue)}</code>
&middot; generated {esc(generated)}</p>
{run_line}
<p class="note">A test asserts a requirement by its tag <code>req:&lt;ID&gt;</code> (Robot) or
<code>@pytest.mark.req("ID")</code> (pytest). Faults: the simulator faults that violate the
requirement (the teeth test proves each turns these tests red). A result is FAIL when any of
the requirement's Robot tests failed in the run, PASS when none failed and one passed, NOT RUN
when none ran (or all were skipped).</p>
{problem_block}
<table>
<tr><th>requirement</th>{status_head}<th>clause</th><th>tests</th><th>faults</th></tr>
{chr(10).join(rows)}
</table>
</body></html>
"""


def write_requirements_page(
    report: Report, page: Path | str, output_xml: Path | str | None = None
) -> Path:
    """Write the page; with ``output_xml``, each requirement's result in that run (links to
    ``log.html`` beside it)."""
    page = Path(page)
    results = None
    if output_xml is not None:
        output_xml = Path(output_xml)
        log = output_xml.parent / "log.html"
        href = Path(os.path.relpath(log.resolve(), page.resolve().parent)).as_posix()
        results = read_results(output_xml, href)
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(render_html(report, results), encoding="utf-8")
    return page
