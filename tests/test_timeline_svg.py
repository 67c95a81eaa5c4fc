"""The timeline picture of a known history: valid XML, the expected bands, markers and failure line."""

from __future__ import annotations

import json
import random
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tribesqa.reporting.timeline_page import (
    HistoryTail,
    history_path,
    load_history,
    mono_at,
    timeline_of_test,
    write_timeline_page,
)
from tribesqa.reporting.timeline_svg import render_timeline

SVG = "{http://www.w3.org/2000/svg}"
T0 = 1000.0
TEST = 'Suite.Join <Scaleway> & "check"'


def rec(
    seq: int,
    kind: str,
    at: float,
    what: str,
    node: str | None,
    value: Any = None,
    op: str | None = None,
    test: str | None = TEST,
) -> dict[str, Any]:
    return {
        "seq": seq,
        "type": kind,
        "test": test,
        "node": node,
        "what": what,
        "op": op,
        "mono": T0 + at,
        "wall": f"2026-12-03T07:00:{at:06.3f}Z",
        "digest": None,
        "value": value,
    }


def rows(**status: str) -> dict[str, dict[str, Any]]:
    return {node: {"status": value, "activated_at": None} for node, value in status.items()}


def known_history() -> list[dict[str, Any]]:
    members = "cluster_nodes.list"
    return [
        rec(1, "observation", 0.0, members, "hetzner-1", rows(**{"hetzner-1": "active"})),
        rec(2, "observation", 0.0, "sync.status", "hetzner-1", {"mode": "live", "servers": []}),
        rec(3, "invoke", 0.5, "legion.join", "scaleway-1", {"provider": "scaleway"}, "op-1"),
        rec(4, "ok", 0.9, "legion.join", "scaleway-1", {"name": "scaleway-1"}, "op-1"),
        rec(
            5,
            "observation",
            1.0,
            members,
            "hetzner-1",
            rows(**{"hetzner-1": "active", "scaleway-1": "syncing"}),
        ),
        rec(
            6,
            "observation",
            1.5,
            members,
            "scaleway-1",
            rows(**{"hetzner-1": "active", "scaleway-1": "syncing"}),
        ),
        rec(
            7,
            "observation",
            2.0,
            members,
            "hetzner-1",
            rows(**{"hetzner-1": "active", "scaleway-1": "active"}),
        ),
        rec(8, "invoke", 2.2, "fault.partition", "scaleway-1", {"peers": ["hetzner-1"]}, "op-2"),
        rec(9, "ok", 2.25, "fault.partition", "scaleway-1", None, "op-2"),
        rec(10, "observation", 2.5, "sync.status", "hetzner-1", {"mode": "catching_up"}),
        rec(11, "invoke", 3.0, "heal.partition", None, {}, "op-3"),
        rec(12, "invoke", 3.1, "rollout.start", "hetzner-1", {"plan_id": "plan-1"}, "op-4"),
        rec(13, "fail", 3.4, "rollout.start", "hetzner-1", "rollout-in-progress <409>", "op-4"),
        rec(
            14,
            "observation",
            3.2,
            "generation.status",
            "hetzner-1",
            {"selected": "/gnu/store/b", "running": "/gnu/store/a"},
        ),
        rec(15, "invoke", 3.3, "plugin.write", "scaleway-1", {"n": 1}, "op-5"),
    ]


def draw(records: list[dict[str, Any]] | None = None) -> str:
    return render_timeline(
        known_history() if records is None else records,
        title=TEST,
        start=T0,
        failure_at=T0 + 3.5,
        failure_message="hetzner-1: rollout <refused>",
    )


def find(root: ET.Element, cls: str, **data: str) -> list[ET.Element]:
    found = []
    for element in root.iter():
        if element.get("class") != cls:
            continue
        if all(element.get(f"data-{k.replace('_', '-')}") == v for k, v in data.items()):
            found.append(element)
    return found


def spans(elements: list[ET.Element]) -> list[tuple[str | None, str | None, str | None]]:
    return [
        (e.get("data-status") or e.get("data-value"), e.get("data-from"), e.get("data-to"))
        for e in elements
    ]


def test_the_picture_is_valid_svg_titled_with_the_escaped_test_name() -> None:
    root = ET.fromstring(draw())
    assert root.tag == f"{SVG}svg"
    assert root.get("data-title") == TEST
    assert root.find(f"{SVG}title").text == TEST  # escaped in the markup, exact once parsed


def test_membership_bands_follow_each_observer_and_collapse_equal_readings() -> None:
    root = ET.fromstring(draw())
    by_hetzner = find(root, "band", node="scaleway-1", observer="hetzner-1")
    assert spans(by_hetzner) == [("syncing", "1.000", "2.000"), ("active", "2.000", "3.500")]
    own = find(root, "band", node="hetzner-1", observer="hetzner-1")
    assert spans(own) == [("active", "0.000", "3.500")]
    by_scaleway = find(root, "band", node="scaleway-1", observer="scaleway-1")
    assert spans(by_scaleway) == [("syncing", "1.500", "3.500")]
    assert {b.get("fill") for b in by_hetzner} == {"#f2c14e", "#4caf50"}
    lanes = [g.get("data-lane") for g in find(root, "lane")]
    assert lanes[:4] == [
        "row:hetzner-1@hetzner-1",
        "row:hetzner-1@scaleway-1",
        "row:scaleway-1@hetzner-1",
        "row:scaleway-1@scaleway-1",
    ]
    assert lanes[4:] == ["node:hetzner-1", "node:run", "node:scaleway-1"]


def test_operations_span_invoke_to_outcome() -> None:
    root = ET.fromstring(draw())
    [join] = find(root, "op", what="legion.join")
    assert (join.get("data-node"), join.get("data-outcome")) == ("scaleway-1", "ok")
    assert (join.get("data-from"), join.get("data-to")) == ("0.500", "0.900")
    [rollout] = find(root, "op", what="rollout.start")
    assert rollout.get("data-outcome") == "fail"
    assert "rollout-in-progress <409>" in rollout.find(f"{SVG}title").text
    [write] = find(root, "op", what="plugin.write")
    assert write.get("data-outcome") == "open" and write.get("data-to") is None


def test_faults_heals_strips_and_the_failure_line() -> None:
    root = ET.fromstring(draw())
    [fault] = find(root, "fault", node="scaleway-1")
    assert (fault.get("data-what"), fault.get("data-from")) == ("fault.partition", "2.200")
    [heal] = find(root, "heal")
    assert (heal.get("data-node"), heal.get("data-what")) == ("run", "heal.partition")
    assert spans(find(root, "sync", node="hetzner-1")) == [
        ("live", "0.000", "2.500"),
        ("catching_up", "2.500", "3.500"),
    ]
    [pending] = find(root, "generation", node="hetzner-1")
    assert pending.get("data-from") == "3.200"
    [failure] = find(root, "failure")
    assert failure.get("data-at") == "3.500"
    assert "rollout <refused>" in failure.find(f"{SVG}title").text
    assert [t.get("data-at") for t in find(root, "tick")][:3] == ["0.000", "0.500", "1.000"]


def test_the_same_records_in_any_order_draw_the_same_bytes() -> None:
    shuffled = known_history()
    random.Random(7).shuffle(shuffled)
    assert draw(shuffled) == draw()


def test_no_failure_no_red_line() -> None:
    root = ET.fromstring(render_timeline(known_history(), title="t"))
    assert find(root, "failure") == []
    assert root.get("data-duration") == "3.400"  # from the first record to the last


def write_history(output_dir: Path, suite: str, records: list[dict[str, Any]]) -> Path:
    path = history_path(output_dir, suite)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + "{not json\n")
    return path


def test_a_suite_without_history_or_a_test_without_records_gets_no_picture(tmp_path: Path) -> None:
    assert timeline_of_test(tmp_path, "Suite", TEST) is None
    assert write_timeline_page(tmp_path) is None
    write_history(tmp_path, "Suite", known_history())
    assert timeline_of_test(tmp_path, "Suite", "Suite.Another Test") is None
    assert len(load_history(history_path(tmp_path, "Suite"))) == 15  # the torn line skipped
    svg = timeline_of_test(tmp_path, "Suite", TEST, started=T0, failed_at=T0 + 3.5, message="x")
    assert svg == draw().replace("hetzner-1: rollout &lt;refused&gt;", "x")


def test_the_run_page_has_a_section_per_suite_and_a_picture_per_test(tmp_path: Path) -> None:
    write_history(
        tmp_path, "Suite", [*known_history(), rec(16, "info", 4.0, "teardown", None, test=None)]
    )
    write_history(
        tmp_path, "Other", [rec(1, "invoke", 0.0, "legion.init", "ovh-1", op="a", test="Other.T")]
    )
    page = write_timeline_page(tmp_path)
    text = page.read_text()
    assert page == tmp_path / "timeline.html"
    assert text.index("<h2>Other</h2>") < text.index("<h2>Suite</h2>")
    assert text.count("<svg ") == 3  # two tests and the suite-level records
    assert "(suite setup/teardown)" in text


def test_wall_times_map_onto_the_runner_clock() -> None:
    from datetime import UTC, datetime

    when = datetime(2026, 12, 3, 7, 0, 2, 500000, tzinfo=UTC)
    assert mono_at(known_history(), when) == pytest.approx(T0 + 2.5)


def test_tribes_qa_timeline_draws_a_run_again_or_says_there_is_no_history(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tribesqa.running.cli import app

    missing = CliRunner().invoke(app, ["timeline", str(tmp_path)])
    assert missing.exit_code == 3
    assert f"no history file under {tmp_path / 'artifacts'}" in missing.output
    write_history(tmp_path, "Suite", known_history())
    page = tmp_path / "elsewhere.html"
    done = CliRunner().invoke(app, ["timeline", str(tmp_path), "--output", str(page)])
    assert done.exit_code == 0 and f"Timeline: {page}" in done.output
    [svg] = re.findall(r"<svg .*?</svg>", page.read_text(), re.S)
    assert ET.fromstring(svg).get("data-title") == TEST


def test_hand_made_requests_are_marked_accepted_refused_or_unanswered() -> None:
    records = [
        rec(1, "observation", 0.0, "probe.node.info", "hetzner-1", {"status": 200, "ok": True}),
        rec(2, "observation", 0.1, "probe.node.info", "hetzner-1", {"status": 401, "error": "x"}),
        rec(3, "observation", 0.2, "healthz", "ovh-1", {"error": "unreachable: refused"}),
        rec(4, "invoke", 0.3, "probe.sync.resync", "ovh-1", {}, "op-1"),
        rec(5, "fail", 0.4, "probe.sync.resync", "ovh-1", {"status": 409, "error": "unsafe"}, "op-1"),
        rec(6, "observation", 0.5, "node.info", "hetzner-1", {"node_id": "hetzner-1"}),
    ]  # fmt: skip
    root = ET.fromstring(render_timeline(records, title="t"))
    marks = [
        (m.get("data-node"), m.get("data-what"), m.get("data-outcome"))
        for m in find(root, "request")
    ]
    assert marks == [
        ("hetzner-1", "probe.node.info", "accepted"),
        ("hetzner-1", "probe.node.info", "refused"),
        ("ovh-1", "healthz", "no-answer"),
    ]  # a plain read (node.info) is no request mark
    fills = [m.find(f"{SVG}polygon").get("fill") for m in find(root, "request")]
    assert fills == ["#00897b", "#ef6c00", "#d32f2f"]
    [write] = find(root, "op", what="probe.sync.resync")
    assert write.get("data-outcome") == "fail" and "unsafe" in write.find(f"{SVG}title").text
    assert find(root, "empty") == []


def test_the_checker_verdict_is_a_mark_on_the_run_lane() -> None:
    held = {"records": 30, "held": True, "violations": 0, "broken": []}
    broken = {"records": 31, "held": False, "violations": 1, "broken": [{"node": "n"}]}
    records = [
        rec(1, "info", 0.0, "history.check", None, held),
        rec(2, "info", 1.0, "history.check", None, broken),
    ]
    root = ET.fromstring(render_timeline(records, title="t"))
    assert [g.get("data-lane") for g in find(root, "lane")] == ["node:run"]
    verdicts = [
        (m.get("data-outcome"), m.find(f"{SVG}polygon").get("fill")) for m in find(root, "check")
    ]
    assert verdicts == [("held", "#2e7d32"), ("broken", "#d32f2f")]


def test_a_test_without_a_lane_gets_a_picture_that_says_why(tmp_path: Path) -> None:
    empty = ET.fromstring(render_timeline([], title="t", start=T0, failure_at=T0 + 2.0))
    [note] = find(empty, "empty", records="0")
    assert "nothing recorded" in note.text
    [failure] = find(empty, "failure")
    assert failure.get("data-at") == "2.000"
    reads = [rec(1, "observation", 0.0, "rollout.preview", "hetzner-1", {"missing": []})]
    [note] = find(ET.fromstring(render_timeline(reads, title="t")), "empty", records="1")
    assert note.text == "1 record(s), none drawn as a lane: rollout.preview"
    # Only when asked (the history is on): otherwise a test without records stays without.
    assert timeline_of_test(tmp_path, "Suite", TEST) is None
    svg = timeline_of_test(tmp_path, "Suite", TEST, started=T0, draw_empty=True)
    assert ET.fromstring(svg).get("data-title") == TEST and 'class="empty"' in svg


def test_the_history_tail_reads_only_what_was_appended_and_starts_over_on_a_new_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "history.jsonl"
    tail = HistoryTail()
    assert tail.records_of(path, "S.T1") == []  # no file yet
    path.write_text(json.dumps({"seq": 1, "test": "S.T1"}) + "\n" + '{"seq": 2, "te')
    assert [r["seq"] for r in tail.records_of(path, "S.T1")] == [1]
    offset = tail.offset
    with path.open("a") as out:  # the half-written line is completed, one more is added
        out.write('st": "S.T2"}\n' + json.dumps({"seq": 3, "test": "S.T1"}) + "\nnot json\n")
    assert [r["seq"] for r in tail.records_of(path, "S.T1")] == [1, 3]
    assert [r["seq"] for r in tail.records_of(path, "S.T2")] == [2]
    assert tail.offset > offset
    path.write_text(json.dumps({"seq": 1, "test": "S.T9"}) + "\n")  # rewritten: shorter
    assert tail.records_of(path, "S.T1") == []
    assert [r["seq"] for r in tail.records_of(path, "S.T9")] == [1]
    path.write_text(json.dumps({"seq": 1, "test": "S.T8"}) + "\n" + "x" * 200 + "\n")  # anew
    assert [r["seq"] for r in tail.records_of(path, "S.T8")] == [1]
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"seq": 7, "test": "S.T9"}) + "\n")
    assert [r["seq"] for r in tail.records_of(other, "S.T9")] == [7]
