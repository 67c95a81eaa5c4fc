"""Timeline pictures from the history files: one per test in log.html, all of a run in a page.

Reads ``<output>/artifacts/<suite dir>/history.jsonl`` (THE HISTORY FORMAT, written by the
history recorder) and draws each test's records with :func:`render_timeline`. The pictures are
a view of the history, never a second source of it: a test with no record gets nothing, or, when
the caller asks (``draw_empty``: the history is on, so the test truly recorded nothing), a picture
that says so.

* :func:`timeline_of_test` - the SVG the library's listener logs (``html=True``) at a test's end;
* :func:`write_timeline_page` - ``results/timeline.html``, one section per suite and test, the
  failure point of a failed test taken from output.xml (its end time, mapped onto the runner's
  monotonic clock through the records' ``wall``/``mono`` pairs).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from tribesqa.reporting.snapshot import safe_name
from tribesqa.reporting.timeline_svg import render_timeline

HISTORY_FILE = "history.jsonl"
SUITE_LEVEL = "(suite setup/teardown)"


def history_path(output_dir: Path, suite: str) -> Path:
    """``<output>/artifacts/<suite dir>/history.jsonl`` (the suite's artifact directory)."""
    return Path(output_dir) / "artifacts" / safe_name(suite, "suite") / HISTORY_FILE


def load_history(path: Path) -> list[dict[str, Any]]:
    """The records of a history file in ``seq`` order; ``[]`` when there is none.

    A line that is not a JSON object (a run killed mid-write) is skipped: a picture of the rest
    is worth more than none.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return sorted(
        records, key=lambda r: int(r.get("seq", 0)) if str(r.get("seq", 0)).isdigit() else 0
    )


def records_of(records: list[dict[str, Any]], test: str | None) -> list[dict[str, Any]]:
    return [record for record in records if record.get("test") == test]


class HistoryTail:
    """One history file read as it grows: each call parses only the whole lines appended since
    the last and keeps the records by test. The listener draws a picture at every test's end;
    reading the suite's whole file each time would cost the square of its length (a gate run
    with many iterations). Another file, or the same path written anew (its first line, which
    holds the first record's times, differs), is read from its start."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.head = b""
        self.offset = 0
        self.by_test: dict[str | None, list[dict[str, Any]]] = {}

    def records_of(self, path: Path, test: str | None) -> list[dict[str, Any]]:
        try:
            size = path.stat().st_size
        except OSError:
            return []
        with path.open("rb") as stream:
            head = stream.readline()
            if path != self.path or size < self.offset or head != self.head:
                self.path, self.head, self.offset, self.by_test = path, head, 0, {}
            stream.seek(self.offset)
            chunk = stream.read(size - self.offset)
        whole = chunk.rfind(b"\n") + 1  # a line still being written waits for the next call
        self.offset += whole
        for line in chunk[:whole].splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # as load_history: a picture of the rest is worth more than none
            if isinstance(record, dict):
                self.by_test.setdefault(record.get("test"), []).append(record)
        return list(self.by_test.get(test, ()))


_TAIL = HistoryTail()


def timeline_of_test(
    output_dir: Path,
    suite: str,
    test: str,
    *,
    started: float | None = None,
    failed_at: float | None = None,
    message: str = "",
    draw_empty: bool = False,
) -> str | None:
    """The SVG of ``test`` (its full name) from its suite's history; ``None`` when it has none,
    unless ``draw_empty``: then a picture saying it recorded nothing (and where it failed)."""
    records = _TAIL.records_of(history_path(output_dir, suite), test)
    if not records and not draw_empty:
        return None
    return render_timeline(
        records, title=test, start=started, failure_at=failed_at, failure_message=message
    )


# -- the run's page ----------------------------------------------------------------------------
def _parse_wall(text: Any) -> datetime | None:
    try:
        stamp = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def mono_at(records: list[dict[str, Any]], when: datetime) -> float | None:
    """``when`` on the records' monotonic clock (through the record closest before it)."""
    anchor = None
    for record in records:
        wall = _parse_wall(record.get("wall"))
        if wall is None or "mono" not in record:
            continue
        if anchor is None or wall <= when:
            anchor = (wall, float(record["mono"]))
    if anchor is None:
        return None
    return anchor[1] + (when - anchor[0]).total_seconds()


def outcomes_of_tests(output_xml: Path | None) -> dict[str, tuple[str, str, datetime | None]]:
    """Test full name -> (status, message, end time in UTC) from an output.xml (``{}`` without)."""
    if output_xml is None or not output_xml.is_file():
        return {}
    from robot.api import ExecutionResult, ResultVisitor

    outcomes: dict[str, tuple[str, str, datetime | None]] = {}

    class Collect(ResultVisitor):
        def visit_test(self, test: Any) -> None:
            failed = first_failure(test) if test.failed else None
            end = failed or test.end_time
            outcomes[test.full_name] = (
                test.status,
                test.message,
                end.astimezone(UTC) if end else None,
            )

    ExecutionResult(str(output_xml)).visit(Collect())
    return outcomes


def first_failure(item: Any) -> datetime | None:
    """When the first failing keyword under ``item`` ended (setup, body, teardown; innermost)."""
    setup = item.setup if getattr(item, "has_setup", False) else None
    teardown = item.teardown if getattr(item, "has_teardown", False) else None
    children = [setup, *getattr(item, "body", ()), teardown]
    for child in children:
        if child is None or not getattr(child, "failed", False) or child.type == "MESSAGE":
            continue
        return first_failure(child) or child.end_time
    return None


def _suite_sections(
    history: Path, outcomes: Mapping[str, tuple[str, str, datetime | None]]
) -> list[str]:
    records = load_history(history)
    tests = list(dict.fromkeys(record.get("test") for record in records))
    parts = [f"<section><h2>{escape(history.parent.name)}</h2>"]
    for test in tests:
        own = records_of(records, test)
        name = test if test is not None else SUITE_LEVEL
        status, message, ended = outcomes.get(str(test), ("", "", None))
        failed_at = mono_at(own, ended) if status == "FAIL" and ended else None
        svg = render_timeline(own, title=name, failure_at=failed_at, failure_message=message)
        badge = f' <span class="{status.lower()}">{escape(status)}</span>' if status else ""
        parts.append(
            f'<article data-test="{escape(name, quote=True)}"><h3>{escape(name)}{badge}</h3>'
            + (f'<p class="message">{escape(message)}</p>' if message and status == "FAIL" else "")
            + f"{svg}</article>"
        )
    parts.append("</section>")
    return parts


PAGE_STYLE = (
    "body{font-family:sans-serif;margin:1.5em}h2{border-bottom:1px solid #ccc}"
    "h3{font-size:1em;margin:1.2em 0 .3em}.fail{color:#fff;background:#d32f2f;padding:0 .4em}"
    ".pass{color:#fff;background:#388e3c;padding:0 .4em}.skip{background:#ffe082;padding:0 .4em}"
    ".message{color:#b71c1c;white-space:pre-wrap;margin:.2em 0}"
)


def write_timeline_page(
    output_dir: Path,
    page: Path | None = None,
    output_xml: Path | None = None,
    since: float | None = None,
) -> Path | None:
    """``timeline.html`` for every suite's history under ``output_dir`` (``None``: no history).

    ``since`` (a ``time.time()``): only histories written since then, i.e. by this run, not the
    files an earlier run left in the same output directory.
    """
    histories = [
        path
        for path in sorted((Path(output_dir) / "artifacts").glob(f"*/{HISTORY_FILE}"))
        if since is None or path.stat().st_mtime >= since - 1
    ]
    if not histories:
        return None
    outcomes = outcomes_of_tests(output_xml)
    body: list[str] = []
    for history in histories:
        body += _suite_sections(history, outcomes)
    target = page if page is not None else Path(output_dir) / "timeline.html"
    target.write_text(
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Timeline of the run</title>'
        f"<style>{PAGE_STYLE}</style></head><body><h1>Timeline of the run</h1>"
        "<p>One picture per test from its history (artifacts/&lt;suite&gt;/history.jsonl): "
        "membership status per row as each node observed it, operations, faults and heals; the "
        "red line is where a test failed.</p>" + "\n".join(body) + "</body></html>\n",
        encoding="utf-8",
    )
    return target
