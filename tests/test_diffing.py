"""Unit tests of membership / plugin diffs, expected tables, digests and the HTML report."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tribesqa.reporting.diffing import (
    PRESENCE,
    Matrix,
    Mismatch,
    digest,
    expected_mismatches,
    membership_matrix,
    plugin_state_matrix,
    summarize,
    to_plain,
)
from tribesqa.reporting.report_html import (
    DIFF_BACKGROUND,
    failure_report_html,
    matrix_table_html,
    mismatches_html,
    timeline_html,
)
from tribesqa.waiting import FakeClock, WaitTimeout, all_nodes_satisfy, poll_until

OBSERVERS = ["hetzner-1", "scaleway-1", "ovh-1"]


def row(node_id: str, status: str = "active", **overrides: Any) -> dict[str, Any]:
    """A ClusterNodeRow as a node returns it."""
    base: dict[str, Any] = {
        "node_id": node_id,
        "pubkey": f"{node_id}-pub",
        "transport_address": f"http://127.0.0.1:{21000 + len(node_id)}",
        "scope": "full",
        "status": status,
        "joined_at": "2025-01-01T00:00:00Z",
        "activated_at": None if status == "syncing" else "2025-01-01T00:00:05Z",
        "decommissioned_at": "2025-01-01T01:00:00Z" if status == "decommissioned" else None,
        "updated_at": "2025-01-01T00:00:05Z",
    }
    base.update(overrides)
    return base


def agreed_view() -> list[dict[str, Any]]:
    return [row(node) for node in OBSERVERS]


# ---------------------------------------------------------------------------- membership matrix


def test_identical_views_converge() -> None:
    matrix = membership_matrix({node: agreed_view() for node in OBSERVERS})
    assert matrix.row_keys == OBSERVERS
    assert matrix.nodes == OBSERVERS
    assert matrix.differing() == set()
    assert matrix.converged
    assert summarize(matrix) == "3 of 3 nodes agree"
    assert matrix.cell("ovh-1", "hetzner-1") == {
        "status": "active",
        "transport_address": "http://127.0.0.1:21005",
        "scope": "full",
        "activated_at": "2025-01-01T00:00:05Z",
        "decommissioned_at": None,
    }


@pytest.mark.req("REF-22")
def test_status_syncing_vs_active_marks_the_odd_observer() -> None:
    lagging_view = [row("hetzner-1"), row("scaleway-1"), row("ovh-1", "syncing")]
    views = {"hetzner-1": lagging_view, "scaleway-1": agreed_view(), "ovh-1": agreed_view()}
    matrix = membership_matrix(views)
    assert matrix.differing() == {
        ("ovh-1", "hetzner-1", "status"),
        ("ovh-1", "hetzner-1", "activated_at"),
    }
    assert matrix.differing_rows() == ["ovh-1"]
    assert matrix.differing_nodes() == ["hetzner-1"]
    assert matrix.agreeing_nodes() == ["scaleway-1", "ovh-1"]
    assert matrix.majority("ovh-1", "status") == "active"
    assert summarize(matrix) == (
        "2 of 3 nodes agree; hetzner-1 differs on ovh-1.status (syncing vs active) (+1 more)"
    )


@pytest.mark.req("REF-22")
def test_decommissioned_vs_active() -> None:
    decommissioned = [row("hetzner-1"), row("scaleway-1", "decommissioned"), row("ovh-1")]
    views = {"hetzner-1": decommissioned, "scaleway-1": decommissioned, "ovh-1": agreed_view()}
    matrix = membership_matrix(views)
    assert matrix.differing() == {
        ("scaleway-1", "ovh-1", "status"),
        ("scaleway-1", "ovh-1", "decommissioned_at"),
    }
    assert summarize(matrix).startswith(
        "2 of 3 nodes agree; ovh-1 differs on scaleway-1.status (active vs decommissioned)"
    )


def test_three_way_status_split_uses_first_node_as_tie_break() -> None:
    views = {
        "hetzner-1": [row("x", "syncing")],
        "scaleway-1": [row("x", "active")],
        "ovh-1": [row("x", "decommissioned")],
    }
    matrix = membership_matrix(views, fields=("status",))
    assert matrix.majority("x", "status") == "syncing"
    assert matrix.differing() == {("x", "scaleway-1", "status"), ("x", "ovh-1", "status")}
    assert summarize(matrix) == (
        "1 of 3 nodes agree; scaleway-1 differs on x.status (active vs syncing); "
        "ovh-1 differs on x.status (decommissioned vs syncing)"
    )


@pytest.mark.req("REF-22")
def test_missing_row_is_marked_on_the_node_that_lacks_it() -> None:
    views = {
        "hetzner-1": agreed_view(),
        "scaleway-1": agreed_view(),
        "ovh-1": [row("hetzner-1"), row("scaleway-1")],
    }
    matrix = membership_matrix(views)
    assert matrix.cell("ovh-1", "ovh-1") is None
    assert not matrix.is_present("ovh-1", "ovh-1")
    assert matrix.differing() == {("ovh-1", "ovh-1", PRESENCE)}
    assert summarize(matrix) == "2 of 3 nodes agree; ovh-1 lacks row ovh-1"


def test_extra_row_is_marked_on_the_node_that_has_it() -> None:
    ghost = [*agreed_view(), row("ghost-9", "syncing")]
    views = {"hetzner-1": ghost, "scaleway-1": agreed_view(), "ovh-1": agreed_view()}
    matrix = membership_matrix(views)
    assert matrix.row_keys == [*OBSERVERS, "ghost-9"]
    assert matrix.differing() == {("ghost-9", "hetzner-1", PRESENCE)}
    assert matrix.reference("ghost-9") is None
    assert summarize(matrix) == "2 of 3 nodes agree; hetzner-1 has extra row ghost-9"


@pytest.mark.req("REF-22")
def test_field_mismatch_transport_address() -> None:
    moved = [
        row("hetzner-1"),
        row("scaleway-1", transport_address="http://10.0.0.9:1"),
        row("ovh-1"),
    ]
    views = {"hetzner-1": agreed_view(), "scaleway-1": moved, "ovh-1": agreed_view()}
    matrix = membership_matrix(views)
    assert matrix.differing() == {("scaleway-1", "scaleway-1", "transport_address")}
    assert summarize(matrix) == (
        "2 of 3 nodes agree; scaleway-1 differs on scaleway-1.transport_address "
        "(http://10.0.0.9:1 vs http://127.0.0.1:21010)"
    )


def test_unreachable_node_column_is_unknown_not_missing() -> None:
    views = {"hetzner-1": agreed_view(), "scaleway-1": None, "ovh-1": agreed_view()}
    matrix = membership_matrix(views)
    assert matrix.unreachable == ["scaleway-1"]
    assert matrix.reachable == ["hetzner-1", "ovh-1"]
    assert matrix.differing() == set()
    assert not matrix.converged
    assert ("ovh-1", "scaleway-1") not in matrix.cells
    assert summarize(matrix) == "2 of 3 nodes agree; scaleway-1 unreachable"


def test_duplicate_row_in_one_view_shows_as_extra() -> None:
    doubled = [*agreed_view(), row("ovh-1", "syncing")]
    views = {"hetzner-1": doubled, "scaleway-1": agreed_view(), "ovh-1": agreed_view()}
    matrix = membership_matrix(views)
    assert "ovh-1#2" in matrix.row_keys
    assert matrix.differing() == {("ovh-1#2", "hetzner-1", PRESENCE)}


def test_pydantic_like_objects_are_dumped() -> None:
    class FakeModel:
        def __init__(self, data: dict[str, Any]) -> None:
            self.data = data

        def model_dump(self, *, mode: str) -> dict[str, Any]:
            assert mode == "json"
            return self.data

    views = {
        "a": [FakeModel(row("a"))],
        "b": [row("a", "syncing")],
        "c": [FakeModel(row("a"))],
    }
    matrix = membership_matrix(views)
    assert matrix.differing() == {("a", "b", "status"), ("a", "b", "activated_at")}
    assert to_plain((FakeModel({"k": (1, 2)}),)) == [{"k": [1, 2]}]


def test_summary_caps_the_number_of_details() -> None:
    views: dict[str, list[dict[str, Any]] | None] = {"ref": [row("x")], "ref2": [row("x")]}
    views |= {f"n{i}": [row("x", "syncing")] for i in range(2)}
    views |= {f"down{i}": None for i in range(3)}
    text = summarize(membership_matrix(views, fields=("status",)))
    assert text == (
        "2 of 7 nodes agree; n0 differs on x.status (syncing vs active); "
        "n1 differs on x.status (syncing vs active); down0 unreachable; and 2 more"
    )


# ---------------------------------------------------------------------------- expected table


def test_expected_mismatches_cover_fields_missing_and_unexpected_rows() -> None:
    expected = {
        "hetzner-1": {"status": "active", "scope": "full"},
        "scaleway-1": {"status": "active", "transport_address": "http://127.0.0.1:21010"},
        "ovh-1": {"status": "active"},
    }
    views = {
        "hetzner-1": agreed_view(),
        "scaleway-1": [row("hetzner-1"), row("scaleway-1"), row("ovh-1", "syncing")],
        "ovh-1": [row("hetzner-1", scope="partial"), row("ovh-1"), row("ghost", "syncing")],
        "down-1": None,
    }
    mismatches = expected_mismatches(views, expected)
    assert mismatches == [
        Mismatch("scaleway-1", "ovh-1", "status", "active", "syncing"),
        Mismatch("ovh-1", "hetzner-1", "scope", "full", "partial"),
        Mismatch("ovh-1", "scaleway-1", PRESENCE, "present", "missing"),
        Mismatch("ovh-1", "ghost", PRESENCE, "absent", "present (syncing)"),
        Mismatch("down-1", "*", "(view)", "membership view", "unreachable"),
    ]
    assert str(mismatches[0]) == "scaleway-1 sees ovh-1.status = syncing (expected active)"
    assert str(mismatches[2]) == "ovh-1 sees row scaleway-1 missing (expected present)"
    assert str(mismatches[4]) == "down-1 unreachable (expected membership view)"
    assert expected_mismatches({"hetzner-1": agreed_view()}, expected) == []


def test_expected_null_field() -> None:
    views = {"a": [row("b", "decommissioned")]}
    mismatches = expected_mismatches(views, {"b": {"decommissioned_at": None}})
    assert mismatches == [Mismatch("a", "b", "decommissioned_at", None, "2025-01-01T01:00:00Z")]
    assert "= 2025-01-01T01:00:00Z (expected null)" in str(mismatches[0])


# ---------------------------------------------------------------------------- plugin state


def test_plugin_state_matrix_cases_and_events() -> None:
    def state(counter: int, events: list[str]) -> dict[str, Any]:
        return {
            "cases": [{"id": "c1", "run_id": "r", "name": "alpha", "counter": counter}],
            "events": [{"id": e, "case_id": "c1", "kind": "ping", "payload": {}} for e in events],
        }

    views = {
        "a": state(3, ["e1", "e2"]),
        "b": state(3, ["e1", "e2"]),
        "c": state(2, ["e1"]),
        "d": None,
    }
    matrix = plugin_state_matrix(views)
    assert matrix.row_keys == ["case:c1", "event:e1", "event:e2"]
    assert matrix.cell("case:c1", "a") == {"name": "alpha", "counter": 3}
    assert matrix.cell("event:e1", "a") == {"kind": "ping", "case_id": "c1"}
    assert matrix.row_fields("case:c1") == ["name", "counter"]
    assert matrix.differing() == {("case:c1", "c", "counter"), ("event:e2", "c", PRESENCE)}
    assert summarize(matrix) == (
        "2 of 4 nodes agree; c differs on case:c1.counter (2 vs 3) (+1 more); d unreachable"
    )


# ---------------------------------------------------------------------------- digest


def test_digest_is_stable_and_order_insensitive_by_default() -> None:
    view = agreed_view()
    shuffled = [{k: r[k] for k in reversed(list(r))} for r in reversed(view)]
    assert digest(view) == digest(shuffled)
    assert re.fullmatch(r"[0-9a-f]{64}", digest(view))
    assert digest(view, ordered=True) != digest(shuffled, ordered=True)
    changed = [*view[:2], row("ovh-1", "syncing")]
    assert digest(changed) != digest(view)
    assert digest({"a": 1}) == "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"


# ---------------------------------------------------------------------------- HTML


def _lagging_matrix() -> Matrix:
    lagging_view = [row("hetzner-1"), row("scaleway-1"), row("ovh-1", "syncing")]
    return membership_matrix(
        {"hetzner-1": lagging_view, "scaleway-1": agreed_view(), "ovh-1": agreed_view()}
    )


def test_matrix_html_marks_the_differing_cell_with_majority_tooltip() -> None:
    page = matrix_table_html(_lagging_matrix(), title="membership")
    assert page.count("<table") == 1
    marked = re.findall(r'<td class="tribes-diff"[^>]*>.*?</td>', page, re.S)
    assert len(marked) == 1
    assert DIFF_BACKGROUND in marked[0]
    assert 'title="majority: status=active, activated_at=2025-01-01T00:00:05Z"' in marked[0]
    assert "<b><span" in marked[0] and "syncing" in marked[0]
    assert page.count("<b>active</b>") == 8  # status in bold in every other cell
    # Null fields are left out unless they are the difference.
    assert "decommissioned_at" not in page
    assert "activated_at: <span" in marked[0]
    assert "<b>ovh-1</b>" in page  # the differing row's label stands out


def test_matrix_html_missing_and_unreachable() -> None:
    views = {
        "hetzner-1": agreed_view(),
        "scaleway-1": None,
        "ovh-1": [row("hetzner-1"), row("scaleway-1")],
    }
    page = matrix_table_html(membership_matrix(views), title="membership")
    assert "— missing —" in page
    assert re.search(r'class="tribes-diff"[^>]*>\s*<i>— missing —</i>', page)
    assert re.search(r'class="tribes-unreachable"[^>]*>scaleway-1<br>.*?unreachable', page)


def test_html_escapes_everything_from_nodes() -> None:
    evil = "<script>alert(1)</script>"
    views = {
        "a": [row(evil, "syncing", scope='"><img src=x>')],
        "b": [row(evil)],
        "c": [row(evil)],
    }
    page = failure_report_html(
        f"status {evil}",
        membership_matrix(views),
        links={evil: "artifacts/a.json", "bad": "javascript:alert(1)"},
        mismatches=[Mismatch("a", evil, "status", "active", evil)],
    )
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img" not in page
    assert 'href="#"' in page
    assert 'href="artifacts/a.json"' in page


def test_timeline_html_shows_collapsed_rows_and_errors() -> None:
    calls = {"n": 0}

    def probe(node: str) -> str:
        if node == "b":
            raise ConnectionError("refused <b>")
        calls["n"] += 1
        return "syncing"

    with pytest.raises(WaitTimeout) as caught:
        poll_until(
            ["a", "b"],
            probe,
            all_nodes_satisfy(lambda v: v == "active", label="active"),
            what="w",
            timeout_s=99,
            interval_s=1,
            clock=FakeClock(),
        )
    page = timeline_html(caught.value.result.timeline, ["a", "b"])
    assert "#1&ndash;#100 &times;100" in page
    assert "0.0&ndash;99.0" in page
    assert "ConnectionError: refused &lt;b&gt;" in page
    assert page.count("<tr>") == 2  # header + one collapsed row


def test_failure_report_composes_message_matrix_timeline_links() -> None:
    with pytest.raises(WaitTimeout) as caught:
        poll_until(
            ["a"],
            lambda n: "syncing",
            all_nodes_satisfy(lambda v: v == "active"),
            what="w",
            timeout_s=2,
            interval_s=1,
            clock=FakeClock(),
        )
    message = str(caught.value)
    page = failure_report_html(
        message,
        _lagging_matrix(),
        caught.value.result.timeline,
        {"ovh-1 membership": "artifacts/t/fail/ovh-1.json"},
    )
    assert page.index(message) < page.index('class="tribes-matrix"') < page.index("<details>")
    assert "timeline: 3 polls in 1 distinct states" in page
    assert '<a href="artifacts/t/fail/ovh-1.json">ovh-1 membership</a>' in page
    assert mismatches_html([]) == "<p><i>no mismatches</i></p>"
    assert "<table" not in failure_report_html("only a message")
