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
