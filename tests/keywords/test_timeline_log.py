"""The library's listener puts each test's timeline picture into log.html (when it has a history)."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from typing import Any

from tests.keywords.conftest import RunRobot

SUITE = """\
*** Settings ***
Library    tribesqa.library.TribesLibrary

*** Test Cases ***
Drawn Test
    Fail    hetzner-1: rollout refused

Test Without History
    No Operation
"""


def history(now: float) -> list[dict[str, Any]]:
    base = {"test": "Timeline.Drawn Test", "digest": None, "wall": "2026-12-03T07:00:00.000Z"}
    return [
        {**base, "seq": 1, "type": "observation", "node": "hetzner-1", "what": "cluster_nodes.list",
         "op": None, "mono": now, "value": {"hetzner-1": {"status": "active"}}},
        {**base, "seq": 2, "type": "invoke", "node": "hetzner-1", "what": "rollout.start",
         "op": "op-1", "mono": now + 0.01, "value": {}},
        {**base, "seq": 3, "type": "fail", "node": "hetzner-1", "what": "rollout.start",
         "op": "op-1", "mono": now + 0.02, "value": "refused"},
    ]  # fmt: skip


def html_messages(test: Any) -> list[str]:
    return [item.message for item in test.body if item.type == "MESSAGE" and item.html]


def test_a_test_with_history_gets_its_svg_in_log_html_and_one_without_gets_none(
    run_robot: RunRobot, tmp_path: Any
) -> None:
    artifacts = tmp_path / "timeline-out" / "artifacts" / "Timeline"
    artifacts.mkdir(parents=True)
    lines = [json.dumps(record) for record in history(time.monotonic())]
    (artifacts / "history.jsonl").write_text("\n".join(lines) + "\n")
    result = run_robot(SUITE, name="timeline")
    drawn, without = result.suite.tests
    assert (drawn.status, without.status) == ("FAIL", "PASS")
    [picture] = html_messages(drawn)
    svg = ET.fromstring(picture)[0]  # <div class="tribes-timeline"><svg ...>
    assert svg.get("data-title") == "Timeline.Drawn Test"
    classes = [element.get("class") for element in svg.iter()]
    assert {"band", "op", "failure"} <= set(classes)
    assert html_messages(without) == []
    assert "<svg" in (result.output_dir / "log.html").read_text()


def test_the_run_page_marks_where_each_failed_test_failed_and_skips_old_histories(
    run_robot: RunRobot, tmp_path: Any
) -> None:
    import os
    from datetime import UTC, datetime

    from tribesqa.reporting.timeline_page import write_timeline_page

    result = run_robot(SUITE, name="timeline")
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    records = [{**record, "wall": now} for record in history(time.monotonic())]
    records.append({**records[0], "seq": 4, "test": "Timeline.Test Without History"})
    for suite in ("Timeline", "Old"):
        folder = result.output_dir / "artifacts" / suite
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    old = result.output_dir / "artifacts" / "Old" / "history.jsonl"
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    page = write_timeline_page(
        result.output_dir, output_xml=result.output_dir / "output.xml", since=time.time() - 60
    )
    text = page.read_text()
    assert "<h2>Old</h2>" not in text and "<h2>Timeline</h2>" in text
    drawn, passed = text.split('<article data-test="')[1:]
    assert drawn.startswith("Timeline.Drawn Test") and passed.startswith("Timeline.Test Without")
    assert 'class="failure"' in drawn and 'class="failure"' not in passed
    assert "hetzner-1: rollout refused" in drawn


RECORDED = """\
*** Settings ***
Library    tribesqa.library.TribesLibrary
Suite Setup    Open Target
Suite Teardown    Close Target

*** Test Cases ***
A Node Is Provisioned And Converges
    ${init}=    Provision Init Node    hetzner
    Wait Until Node Is Active Everywhere    ${init.name}
"""


def test_the_recorded_history_of_a_test_is_drawn_in_its_own_log(run_robot: RunRobot) -> None:
    # The recorder writes the test's records when it ends; the picture must be drawn after that,
    # from those records, not from whatever an earlier test left in the file.
    result = run_robot(RECORDED, name="recorded")
    [test] = result.suite.tests
    assert test.status == "PASS", test.message
    [picture] = html_messages(test)
    svg = ET.fromstring(picture)[0]
    assert svg.get("data-title") == "Recorded.A Node Is Provisioned And Converges"
    whats = {element.get("data-what") for element in svg.iter()}
    assert "legion.provision_init" in whats, whats
    assert any(element.get("class") == "band" for element in svg.iter())
