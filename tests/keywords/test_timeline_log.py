"""The library's listener puts each test's timeline picture into log.html (when it has a history)."""

from __future__ import annotations

import io
import json
import time
import xml.etree.ElementTree as ET
from typing import Any

import robot
from robot.api import ExecutionResult

from tests.keywords.conftest import ROOT, SIM_VARIABLES, RunRobot

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


def test_a_test_with_history_gets_its_svg_in_log_html_and_one_without_a_picture_saying_so(
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
    # No record: the test truly touched nothing, and its picture says so.
    [nothing] = html_messages(without)
    empty = ET.fromstring(nothing)[0]
    assert empty.get("data-title") == "Timeline.Test Without History"
    assert [e.get("data-records") for e in empty.iter() if e.get("class") == "empty"] == ["0"]
    assert "<svg" in (result.output_dir / "log.html").read_text()


def test_with_the_history_switched_off_no_picture_is_drawn(
    run_robot: RunRobot, monkeypatch: Any
) -> None:
    monkeypatch.setenv("TRIBES_QA_HISTORY", "0")
    result = run_robot(SUITE, name="timeline")
    assert [html_messages(test) for test in result.suite.tests] == [[], []]


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


def test_every_test_of_the_security_suite_gets_a_picture_of_what_it_did(tmp_path: Any) -> None:
    # The suite's tests send hand-made requests only (and one checks the history): each picture
    # must show them, not just exist. One cheap suite of the matrix, run as the matrix runs it.
    out = tmp_path / "security-out"
    robot.run(
        str(ROOT / "suites" / "admin_api_security.robot"),
        variablefile=[str(SIM_VARIABLES)],
        outputdir=str(out),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    tests = list(ExecutionResult(str(out / "output.xml")).suite.all_tests)
    assert len(tests) >= 18 and all(test.status == "PASS" for test in tests)
    for test in tests:
        pictures = html_messages(test)
        assert len(pictures) == 1, test.name
        svg = ET.fromstring(pictures[0])[0]
        classes = [element.get("class") for element in svg.iter()]
        assert "lane" in classes and "empty" not in classes, test.name
        marks = [e for e in svg.iter() if e.get("class") in ("request", "check")]
        assert marks, test.name
        if test.name == "The Suite History Holds Every Invariant":
            assert [m.get("data-outcome") for m in marks] == ["held"]
        else:
            assert {m.get("data-what") for m in marks} == {"probe.node.info"}, test.name
            assert "refused" in {m.get("data-outcome") for m in marks}, test.name
    # The probes' headers never reach the history: no NIP-98 header, event or signature.
    written = "".join(path.read_text() for path in (out / "artifacts").glob("*/history.jsonl"))
    assert "probe.node.info" in written
    assert "Nostr " not in written and '"sig"' not in written
