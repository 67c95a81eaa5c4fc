"""What the membership judges report and how they read the expected table and the timeline.

The mismatch lines, the problem text and the timeline cell are what QA reads when membership
does not converge; the tests read them whole for fleets with stuck, missing and unreachable
observers, and pin the edges of the shorthand forms (list entries named by ``name`` or
``node_id``, the six-row timeline limit, the ``(+N more)`` of the expected table).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.test_convergence_logic import ALL_ACTIVE, LATER, NODES, START, row, view
from tribesqa.checks import (
    MembershipJudge,
    NewerRows,
    NodeActiveJudge,
    StatusMemory,
    describe_membership,
    normalize_expected,
)
from tribesqa.contract import MemberStatus
from tribesqa.diagnostics import TribesFailure


def lines(judgement) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(m) for m in judgement.mismatches]


# ------------------------------------------------------------------------- node active judge


def test_node_active_report_groups_observers_by_what_they_see() -> None:
    views = {
        "hetzner-1": view(hetzner_1="active", ovh_1="syncing"),
        "scaleway-1": view(hetzner_1="active"),
        "ovh-1": None,
        "upcloud-1": view(ovh_1="active"),
        "exoscale-1": view(ovh_1="syncing"),
    }
    result = NodeActiveJudge("ovh-1", started_at=START).judge(views, {"ovh-1": "refused"})
    assert result.problem == (
        "ovh-1 unreachable (refused); node ovh-1 still syncing on hetzner-1, exoscale-1; "
        "node ovh-1 has no row on scaleway-1"
    )
    assert lines(result) == [
        "hetzner-1 sees ovh-1.status = syncing (expected active)",
        "scaleway-1 sees row ovh-1 missing (expected present)",
        "exoscale-1 sees ovh-1.status = syncing (expected active)",
    ]
    assert result.lagging == ["hetzner-1", "scaleway-1", "ovh-1", "exoscale-1"]
    assert result.agreement == "1 of 5 nodes agree"
    assert result.terminal is None
    explained = result.explained()
    assert explained.matrix is not None and explained.matrix.unreachable == ["ovh-1"]
    assert explained.detail == ""


def test_node_active_everywhere_is_done_with_no_problem() -> None:
    result = NodeActiveJudge("ovh-1", started_at=START).judge(dict.fromkeys(NODES, ALL_ACTIVE), {})
    assert (result.done, result.problem, result.lagging) == (True, "", [])
    assert result.agreement == "3 of 3 nodes agree"


def test_node_active_skew_keeps_a_decommission_in_doubt_from_being_terminal() -> None:
    # the decommissioned row is 65 s newer than the live rows: settled without skew,
    # in doubt with two clocks each 40 s off
    decommissioned = [row("ovh-1", "decommissioned", updated=LATER)]
    views = {"hetzner-1": decommissioned, "scaleway-1": ALL_ACTIVE}
    assert NodeActiveJudge("ovh-1", started_at=START).judge(views, {}).terminal
    skewed = NodeActiveJudge("ovh-1", started_at=START, skew_s=40)
    assert skewed.judge(views, {}).terminal is None


def test_node_active_backwards_row_uses_the_grace_given() -> None:
    judge = NodeActiveJudge("ovh-1", started_at=START, grace_s=10.0)
    judge.judge({"hetzner-1": ALL_ACTIVE}, {})
    resync = [row("ovh-1", "syncing", updated=LATER)]  # 5 s after the start: within the grace
    assert judge.judge({"hetzner-1": resync}, {}).terminal is None
    strict = NodeActiveJudge("ovh-1", started_at=START, grace_s=1.0)
    strict.judge({"hetzner-1": ALL_ACTIVE}, {})
    assert strict.judge({"hetzner-1": resync}, {}).terminal == (
        "node ovh-1 went backwards on hetzner-1: active -> syncing (row updated "
        f"{LATER}, after the wait began 2025-01-01T00:00:00Z; no resync was asked before the wait)"
    )


# ------------------------------------------------------------------------- membership judge


def test_membership_report_lines_for_stuck_and_missing_members() -> None:
    views = {
        "hetzner-1": view(hetzner_1="active", scaleway_1="active", ovh_1="syncing"),
        "scaleway-1": view(hetzner_1="active", scaleway_1="active"),
        "ovh-1": view(hetzner_1="active", scaleway_1="active", ovh_1="syncing"),
    }
    result = MembershipJudge(NODES, started_at=START).judge(views, {})
    assert result.problem == (
        "node ovh-1 still syncing on hetzner-1, ovh-1; "
        "node ovh-1 has no membership row on scaleway-1"
    )
    assert lines(result) == [
        "hetzner-1 sees ovh-1.status = syncing (expected active)",
        "scaleway-1 sees row ovh-1 missing (expected present)",
        "ovh-1 sees ovh-1.status = syncing (expected active)",
    ]
    assert result.agreement == "2 of 3 nodes agree"
    everywhere = MembershipJudge(NODES, started_at=START).judge(
        dict.fromkeys(NODES, view(hetzner_1="active", scaleway_1="active")), {}
    )
    assert everywhere.problem == "node ovh-1 has no membership row on every node"


def test_views_that_only_differ_outside_the_members_name_the_odd_observers() -> None:
    extra = [*ALL_ACTIVE, row("upcloud-1", "syncing")]
    one = MembershipJudge(NODES, started_at=START).judge(
        {"hetzner-1": ALL_ACTIVE, "scaleway-1": ALL_ACTIVE, "ovh-1": extra}, {}
    )
    assert one.problem == "ovh-1 differs from the majority view"
    assert one.lagging == ["ovh-1"]
    two = MembershipJudge(NODES, started_at=START).judge(
        {"a": ALL_ACTIVE, "b": ALL_ACTIVE, "c": ALL_ACTIVE, "d": extra, "e": extra}, {}
    )
    assert two.problem == "d, e differ from the majority view"


def test_expected_table_shows_two_mismatches_then_counts_the_rest() -> None:
    expected = normalize_expected(dict.fromkeys(NODES, "syncing"))
    result = MembershipJudge(NODES, expected, started_at=START).judge({"hetzner-1": ALL_ACTIVE}, {})
    assert result.problem == (
        "expected table not met: hetzner-1 sees hetzner-1.status = active (expected syncing); "
        "hetzner-1 sees scaleway-1.status = active (expected syncing) (+1 more)"
    )
    two = normalize_expected({"hetzner-1": "syncing", "scaleway-1": "syncing", "ovh-1": "active"})
    result = MembershipJudge(NODES, two, started_at=START).judge({"hetzner-1": ALL_ACTIVE}, {})
    assert result.problem == (
        "expected table not met: hetzner-1 sees hetzner-1.status = active (expected syncing); "
        "hetzner-1 sees scaleway-1.status = active (expected syncing)"
    )
    assert result.lagging == ["hetzner-1"]


def test_expected_rows_replace_the_member_check_for_their_nodes() -> None:
    # ovh-1 is a member, but the table says syncing: the row is right as it is
    expected = normalize_expected(
        {"hetzner-1": "active", "scaleway-1": "active", "ovh-1": "syncing"}
    )
    views = dict.fromkeys(NODES, view(hetzner_1="active", scaleway_1="active", ovh_1="syncing"))
    result = MembershipJudge(NODES, expected, started_at=START).judge(views, {})
    assert (result.done, result.problem, result.mismatches) == (True, "", [])


def test_membership_skew_and_grace_are_passed_on() -> None:
    later = [row("hetzner-1"), row("ovh-1", "decommissioned", updated=LATER)]
    views = {"hetzner-1": later, "scaleway-1": ALL_ACTIVE}
    assert MembershipJudge(NODES, started_at=START).judge(views, {}).terminal
    assert MembershipJudge(NODES, started_at=START, skew_s=40).judge(views, {}).terminal is None
    judge = MembershipJudge(NODES, started_at=START, grace_s=10.0)
    judge.judge({"hetzner-1": ALL_ACTIVE}, {})
    resync = [row("hetzner-1"), row("scaleway-1"), row("ovh-1", "syncing", updated=LATER)]
    assert judge.judge({"hetzner-1": resync}, {}).terminal is None


def test_membership_terminal_survives_an_unreachable_observer_and_leaves_no_empty_reason() -> None:
    result = MembershipJudge(NODES, started_at=START).judge(
        {"hetzner-1": ALL_ACTIVE, "ovh-1": None}, {}
    )
    assert result.terminal is None
    assert result.problem == "ovh-1 unreachable (no answer)"


# ---------------------------------------------------------------------------- status memory


def test_status_memory_defaults_to_no_skew() -> None:
    memory = StatusMemory(START, grace_s=0.0)
    memory.observe("a", row("x"), member=True)
    just_after = row("x", "syncing", updated="2025-01-01T00:00:00.500Z")
    assert memory.observe("a", just_after, member=True) is not None
    skewed = StatusMemory(START, grace_s=0.0, skew_s=1.0)
    skewed.observe("a", row("x"), member=True)
    assert skewed.observe("a", just_after, member=True) is None


def test_a_row_without_updated_at_never_counts_as_a_regression() -> None:
    memory = StatusMemory(START)
    memory.observe("a", row("x"), member=True)
    assert memory.observe("a", row("x", "syncing", updated=None), member=True) is None
    assert memory.observe("a", row("x", "syncing", updated="garbage"), member=True) is None


def test_unexpected_decommission_reason_names_node_observer_and_time() -> None:
    memory = StatusMemory(START)
    gone = row("ovh-1", "decommissioned", decommissioned_at=LATER)
    assert memory.observe("hetzner-1", gone, member=True) == (
        f"node ovh-1 unexpectedly decommissioned on hetzner-1 (decommissioned_at {LATER})"
    )
    assert memory.observe("hetzner-1", gone, member=True, may_decommission=True) is None
    assert memory.observe("hetzner-1", gone, member=True, superseded=True) is None
    # an unknown status is not ranked and changes nothing
    assert memory.observe("hetzner-1", row("ovh-1", "joining"), member=True) is None
    assert memory.highest[("hetzner-1", "ovh-1")] == "decommissioned"


def test_newer_rows_defaults_to_no_skew_and_needs_a_live_row() -> None:
    live = [row("ovh-1", updated="2025-01-01T00:00:00Z")]
    gone = row("ovh-1", "decommissioned", updated="2025-01-01T00:00:01.500Z")
    assert NewerRows([live]).supersede(gone) is False  # certainly newer: a real decommission
    assert NewerRows([live], skew_s=1.0).supersede(gone) is True
    assert NewerRows([[]]).supersede(gone) is False
    assert NewerRows([live]).supersede({**gone, "updated_at": None}) is False


# ----------------------------------------------------------------------- expected and timeline


def test_expected_list_entries_may_name_their_node_by_name_or_node_id() -> None:
    assert normalize_expected([{"name": "ovh-1", "status": "active"}]) == {
        "ovh-1": {"status": "active"}
    }
    assert normalize_expected([{"node_id": "ovh-1", "scope": "full"}]) == {
        "ovh-1": {"scope": "full"}
    }
    assert normalize_expected([{"node": "", "name": "", "node_id": "ovh-1"}]) == {"ovh-1": {}}


def test_expected_values_are_compared_as_text_and_times_as_rfc3339() -> None:
    table = normalize_expected(
        {"ovh-1": {"status": MemberStatus.ACTIVE, "joined_at": datetime(2025, 1, 1, tzinfo=UTC)}}
    )
    assert table == {"ovh-1": {"status": "active", "joined_at": "2025-01-01T00:00:00Z"}}
    assert type(table["ovh-1"]["status"]) is str


def test_expected_table_errors_name_the_entry_and_what_is_known() -> None:
    with pytest.raises(TribesFailure) as caught:
        normalize_expected({"ovh-1": {"colour": "red", "age": 3}})
    assert str(caught.value).startswith(
        "expected row of ovh-1: unknown field(s) age, colour (known: activated_at, "
    )
    with pytest.raises(TribesFailure) as caught:
        normalize_expected([{"node": "ovh-1"}, "active"])
    assert str(caught.value) == "expected[1] must be a dictionary, got 'active'"
    with pytest.raises(TribesFailure) as caught:
        normalize_expected([{"status": "active"}])
    assert str(caught.value) == "expected[0] names no node (add node=<name>)"
    with pytest.raises(TribesFailure) as caught:
        normalize_expected({"ovh-1": 3})
    assert str(caught.value) == "expected row of ovh-1 must be a dictionary, got 3"
    with pytest.raises(TribesFailure) as caught:
        normalize_expected(3)
    assert str(caught.value) == "expected membership must be a dictionary or a list, got int"


def test_timeline_cell_lists_up_to_six_rows_then_summarises() -> None:
    six = [row(f"n-{i}") for i in range(6)]
    assert describe_membership(six) == ",".join(f"n-{i}:active" for i in range(6))
    seven = [*six, row("n-6", "syncing")]
    assert describe_membership(seven) == "6 active,n-6:syncing"
    odd = [row(f"s-{i}", "syncing") for i in range(5)] + [row("a-1"), row("a-2")]
    assert describe_membership(odd) == (
        "2 active,s-0:syncing,s-1:syncing,s-2:syncing,s-3:syncing,..."
    )
    four_odd = [row(f"s-{i}", "syncing") for i in range(4)] + [row(f"a-{i}") for i in range(3)]
    assert (
        describe_membership(four_odd) == "3 active,s-0:syncing,s-1:syncing,s-2:syncing,s-3:syncing"
    )
    none_active = [row(f"s-{i}", "syncing") for i in range(7)]
    assert describe_membership(none_active).startswith("0 active,")
    assert describe_membership(None) == "None"
    assert describe_membership({"error": "x"}) == '{"error":"x"}'


def test_membership_with_no_observer_answering_is_reported_not_a_crash() -> None:
    result = MembershipJudge(NODES, started_at=START).judge(dict.fromkeys(NODES[:2]), {})
    assert result.problem == "hetzner-1 unreachable (no answer); scaleway-1 unreachable (no answer)"
    assert (result.done, result.lagging, result.agreement) == (
        False,
        NODES[:2],
        "0 of 2 nodes agree",
    )


def test_two_of_two_observers_read_every_node() -> None:
    syncing = view(hetzner_1="active", scaleway_1="active", ovh_1="syncing")
    result = MembershipJudge(NODES, started_at=START).judge(dict.fromkeys(NODES[:2], syncing), {})
    assert result.problem == "node ovh-1 still syncing on every node"


def test_expected_rows_add_to_the_member_checks_of_the_other_members() -> None:
    # hetzner-1 is checked by the table, scaleway-1 and ovh-1 as members
    expected = normalize_expected({"hetzner-1": {"scope": "read-only"}})
    views = {"hetzner-1": view(hetzner_1="active", scaleway_1="syncing")}
    result = MembershipJudge(NODES, expected, started_at=START).judge(views, {})
    assert result.problem == (
        "node scaleway-1 still syncing on hetzner-1; "
        "node ovh-1 has no membership row on hetzner-1; "
        "expected table not met: hetzner-1 sees hetzner-1.scope = full (expected read-only); "
        "hetzner-1 sees row scaleway-1 present (syncing) (expected absent)"
    )


def test_an_expected_empty_field_matches_a_null() -> None:
    expected = normalize_expected({"ovh-1": {"status": "active", "decommissioned_at": None}})
    assert expected == {"ovh-1": {"status": "active", "decommissioned_at": None}}
    result = MembershipJudge(["ovh-1"], expected, started_at=START).judge(
        {"ovh-1": [row("ovh-1")]}, {}
    )
    assert result.done


def test_by_default_a_decommission_a_second_after_the_live_row_is_terminal() -> None:
    # with no skew allowance, 1.5 s is certainly later; each judge defaults to no skew
    live = row("ovh-1", updated="2025-01-01T00:00:00Z")
    gone = row("ovh-1", "decommissioned", updated="2025-01-01T00:00:01.500Z")
    views = {"hetzner-1": [live], "scaleway-1": [gone]}
    assert MembershipJudge(["ovh-1"], started_at=START).judge(views, {}).terminal
    assert NodeActiveJudge("ovh-1", started_at=START).judge(views, {}).terminal


def test_after_a_reactivation_going_back_to_syncing_is_a_regression_again() -> None:
    memory = StatusMemory(START)
    memory.observe("a", row("x", "decommissioned"), member=False)
    memory.observe("a", row("x", "active", updated=LATER), member=False)
    assert memory.observe("a", row("x", "syncing", updated=LATER), member=False) is not None


def test_a_row_seen_syncing_then_active_then_syncing_is_a_regression() -> None:
    memory = StatusMemory(START)
    memory.observe("a", row("x", "syncing"), member=True)
    memory.observe("a", row("x"), member=True)
    assert memory.highest[("a", "x")] == "active"
    assert memory.observe("a", row("x", "syncing", updated=LATER), member=True) is not None
