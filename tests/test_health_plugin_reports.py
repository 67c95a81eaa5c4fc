"""What the health, tribe and plugin-state judges report: the message parts, the lagging nodes,
the per-node diff table (``matrix``) and the mismatch lines a failed wait shows QA.

The keywords turn a ``Judgement`` into the failure message and the HTML/JSON artifacts, so every
field of it is user-visible; these tests read each one for a fleet with one good, one wrong and
one unreachable node. (Mutation testing, ``make mutation``, showed these were unread.)
"""

from __future__ import annotations

from tests.test_convergence_logic import NODES, case, event, state, status, tribe
from tribesqa.checks import (
    TRIBE_UNKNOWN,
    ClusterHealthJudge,
    ItemVisibleJudge,
    PluginStateJudge,
    StaysAbsentJudge,
    TribeJudge,
    describe_plugin_state,
)
from tribesqa.reporting.diffing import PRESENCE


def lines(judgement) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(m) for m in judgement.mismatches]


# ------------------------------------------------------------------------------ cluster health


def test_health_table_shows_each_node_status_with_a_short_digest_and_marks_the_silent_node() -> (
    None
):
    views = {"hetzner-1": status("healthy"), "scaleway-1": status("isolated"), "ovh-1": None}
    result = ClusterHealthJudge().judge(views, {"ovh-1": "connection refused"})
    assert result.lagging == ["scaleway-1", "ovh-1"]
    assert result.matrix is not None
    assert result.matrix.row_keys == ["cluster_status"]
    assert result.matrix.fields == [
        "status",
        "self_status",
        "active",
        "syncing",
        "decommissioned",
        "membership_digest",
        "control_plane_version",
    ]
    assert result.matrix.nodes == NODES
    assert result.matrix.unreachable == ["ovh-1"]
    assert result.matrix.cell("cluster_status", "ovh-1") is None
    assert result.matrix.cell("cluster_status", "scaleway-1") == {
        "status": "isolated",
        "self_status": "active",
        "active": 3,
        "syncing": 0,
        "decommissioned": 0,
        "membership_digest": "d" * 12,
        "control_plane_version": 4,
    }
    # only the status is judged; the digest is shortened in the table, never in the judged view
    assert views["hetzner-1"]["membership_digest"] == "d" * 64
    assert lines(result) == ["scaleway-1 sees cluster_status.status = isolated (expected healthy)"]
    assert result.message("cluster not healthy", 2.0) == (
        "cluster not healthy: scaleway-1 (isolated), ovh-1 unreachable (connection refused) "
        "after 2.0 s; 1 of 3 nodes healthy"
    )


def test_a_healthy_cluster_reports_no_problem_and_every_node_healthy() -> None:
    result = ClusterHealthJudge().judge(dict.fromkeys(NODES, status("healthy")), {})
    assert result.done
    assert result.problem == ""
    assert result.lagging == []
    assert result.mismatches == []
    assert result.verdict().summary == "3 of 3 nodes healthy"


def test_an_unreachable_node_without_an_error_text_reads_no_answer() -> None:
    result = ClusterHealthJudge().judge({"ovh-1": None}, {})
    assert result.problem == "ovh-1 unreachable (no answer)"


# ------------------------------------------------------------------------------------- tribe


def test_tribe_table_shows_version_short_digest_and_member_count() -> None:
    views = {
        "hetzner-1": tribe(3, "a" * 64),
        "scaleway-1": dict(TRIBE_UNKNOWN),
        "ovh-1": None,
    }
    result = TribeJudge().judge(views, {"ovh-1": "HTTP 503"})
    assert result.matrix is not None
    assert result.matrix.row_keys == ["tribe"]
    assert result.matrix.unreachable == ["ovh-1"]
    assert result.matrix.cell("tribe", "hetzner-1") == {
        "tribe_id": "t",
        "name": "n",
        "version": 3,
        "digest": "a" * 16,
        "members": 1,
    }
    assert result.matrix.cell("tribe", "scaleway-1") == dict.fromkeys(
        ("tribe_id", "name", "version", "digest", "members")
    ) | {"version": "tribe-unknown"}
    assert result.problem == (
        "ovh-1 unreachable (HTTP 503); scaleway-1 not replayed the tribe yet (tribe-unknown)"
    )
    assert result.lagging == ["scaleway-1", "ovh-1"]
    assert result.agreement == "1 of 3 nodes agree"


def test_tribe_split_names_the_minority_and_the_majority_version() -> None:
    views = {
        "hetzner-1": tribe(2, "b" * 64),
        "scaleway-1": tribe(1, "a" * 64),
        "ovh-1": tribe(2, "b" * 64),
    }
    result = TribeJudge().judge(views, {})
    assert result.problem == (
        f"scaleway-1 at version 1 digest {'a' * 12}; majority at version 2 digest {'b' * 12}"
    )
    assert result.lagging == ["scaleway-1"]
    assert result.agreement == "2 of 3 nodes agree"
    done = TribeJudge().judge(dict.fromkeys(NODES, tribe(2, "b" * 64)), {})
    assert (done.done, done.problem, done.lagging) == (True, "", [])


def test_a_tribe_without_members_counts_zero() -> None:
    empty = {**tribe(1, "aa"), "members": None}
    result = TribeJudge().judge({"ovh-1": empty}, {})
    assert result.matrix is not None
    assert result.matrix.cell("tribe", "ovh-1")["members"] == 0  # type: ignore[index]


# ------------------------------------------------------------------------------ plugin state


def test_plugin_state_counts_are_reported_per_node_with_a_mismatch_line_each() -> None:
    views = {
        "hetzner-1": state([case("c1")], [event("e1")]),
        "scaleway-1": state([case("c1")], [event("e1")]),
        "ovh-1": None,
    }
    result = PluginStateJudge(expected_cases=2, expected_events=1).judge(
        views, {"ovh-1": "timeout"}
    )
    assert result.problem == (
        "ovh-1 unreachable (timeout); hetzner-1 holds 1 cases (expected 2); "
        "scaleway-1 holds 1 cases (expected 2)"
    )
    assert result.lagging == NODES
    assert lines(result) == [
        "hetzner-1 sees (cases).count = 1 (expected 2)",
        "scaleway-1 sees (cases).count = 1 (expected 2)",
    ]
    assert result.agreement == "2 of 3 nodes agree"
    assert result.matrix is not None and result.matrix.unreachable == ["ovh-1"]


def test_plugin_state_event_count_is_checked_too() -> None:
    views = dict.fromkeys(NODES[:1], state([case("c1")], [event("e1"), event("e2")]))
    result = PluginStateJudge(expected_events=1).judge(views, {})
    assert result.problem == "hetzner-1 holds 2 events (expected 1)"
    assert lines(result) == ["hetzner-1 sees (events).count = 2 (expected 1)"]


def test_plugin_state_lists_three_count_differences_then_says_how_many_more() -> None:
    nodes = ["n1", "n2", "n3", "n4", "n5"]
    result = PluginStateJudge(expected_cases=1).judge(dict.fromkeys(nodes, state([])), {})
    assert result.problem == (
        "n1 holds 0 cases (expected 1); n2 holds 0 cases (expected 1); "
        "n3 holds 0 cases (expected 1); and 2 more count differences"
    )
    assert len(result.mismatches) == 5
    four = PluginStateJudge(expected_cases=1).judge(dict.fromkeys(nodes[:4], state([])), {})
    assert four.problem.endswith("; and 1 more count differences")
    three = PluginStateJudge(expected_cases=1).judge(dict.fromkeys(nodes[:3], state([])), {})
    assert "more count differences" not in three.problem


def test_plugin_state_difference_goes_in_the_problem_and_agreement_stays_short() -> None:
    views = {
        "hetzner-1": state([case("c1", 3)]),
        "scaleway-1": state([case("c1", 3)]),
        "ovh-1": state([case("c1", 2)]),
    }
    result = PluginStateJudge().judge(views, {})
    assert result.agreement == "2 of 3 nodes agree"
    assert result.detail == ""
    assert result.message("plugin state differs", 1.0) == (
        "plugin state differs: ovh-1 differs on case:c1.counter (2 vs 3) after 1.0 s; "
        "2 of 3 nodes agree"
    )
    converged = PluginStateJudge(1, 0).judge(dict.fromkeys(NODES, state([case("c1")])), {})
    assert (converged.done, converged.problem, converged.lagging) == (True, "", [])
    assert converged.agreement == "3 of 3 nodes agree"


def test_describe_plugin_state_counts_cases_events_and_sums_counters() -> None:
    assert describe_plugin_state(state([case("c1", 2), case("c2", 3)], [event("e1")])) == (
        "2 cases (sum 5), 1 events"
    )
    unset = {**case("c3"), "counter": None}
    assert describe_plugin_state({"cases": [unset], "events": None}) == "1 cases (sum 0), 0 events"
    assert describe_plugin_state({}) == "0 cases (sum 0), 0 events"
    assert describe_plugin_state("HTTP 500 from ovh-1") == "HTTP 500 from ovh-1"


# ---------------------------------------------------------------------------- item visibility


def test_item_visible_reports_each_node_without_it_and_marks_its_row() -> None:
    views = {
        "hetzner-1": state([case("c1", 3)]),
        "scaleway-1": state([case("c2", 3)]),
        "ovh-1": None,
        "upcloud-1": state([case("c1", 1)]),
    }
    result = ItemVisibleJudge("cases", "c1", counter=3).judge(views, {"ovh-1": "reset"})
    assert result.problem == (
        "case c1 not visible on scaleway-1; ovh-1 unreachable (reset); "
        "case c1 on upcloud-1 has counter 1, expected 3"
    )
    assert result.lagging == ["scaleway-1", "ovh-1", "upcloud-1"]
    assert result.agreement == "1 of 4 nodes show it"
    assert [(m.node, m.row, m.field, m.expected, m.actual) for m in result.mismatches] == [
        ("scaleway-1", "case:c1", PRESENCE, "present", "missing"),
        ("upcloud-1", "case:c1", "counter", 3, 1),
    ]
    assert result.matrix is not None and result.matrix.unreachable == ["ovh-1"]


def test_item_visible_on_every_node_is_done_and_one_node_needs_no_agreement_phrase() -> None:
    views = dict.fromkeys(NODES, state([], [event("e1")]))
    result = ItemVisibleJudge("events", "e1").judge(views, {})
    assert (result.done, result.problem, result.lagging) == (True, "", [])
    assert result.agreement == "3 of 3 nodes show it"
    single = ItemVisibleJudge("events", "e1").judge({"ovh-1": state([])}, {})
    assert single.agreement == ""
    assert single.problem == "event e1 not visible on ovh-1"


def test_stays_absent_names_the_kind_that_appeared_and_counts_nodes_still_stale() -> None:
    views = {
        "hetzner-1": state([case("c0")]),
        "scaleway-1": state([], [event("x1")]),
        "ovh-1": None,
    }
    result = StaysAbsentJudge("x1").judge(views, {"ovh-1": "HTTP 404"})
    assert result.problem == (
        "event x1 appeared on scaleway-1; could not read the plugin state of ovh-1 (HTTP 404)"
    )
    assert result.lagging == ["scaleway-1", "ovh-1"]
    assert result.agreement == "1 of 3 nodes still stale"
    assert [(m.node, m.row, m.field, m.expected, m.actual) for m in result.mismatches] == [
        ("scaleway-1", "event:x1", PRESENCE, "absent", "present")
    ]
    assert result.matrix is not None and result.matrix.unreachable == ["ovh-1"]
    still = StaysAbsentJudge("x1").judge(dict.fromkeys(NODES, state([case("c0")])), {})
    assert (still.done, still.problem, still.agreement) == (True, "", "3 of 3 nodes still stale")


def test_a_tribe_with_no_node_answering_is_reported_not_a_crash() -> None:
    result = TribeJudge().judge(dict.fromkeys(NODES[:2]), {"hetzner-1": "refused"})
    assert result.problem == "hetzner-1 unreachable (refused); scaleway-1 unreachable (no answer)"
    assert (result.done, result.lagging, result.agreement) == (
        False,
        NODES[:2],
        "0 of 2 nodes agree",
    )


def test_plugin_state_message_names_an_unreachable_node_in_the_table_summary_too() -> None:
    views = {"hetzner-1": state([case("c1")]), "ovh-1": None}
    result = PluginStateJudge().judge(views, {"ovh-1": "timeout"})
    assert result.message("plugin state", 1.0) == (
        "plugin state: ovh-1 unreachable (timeout) after 1.0 s; 1 of 2 nodes agree; "
        "ovh-1 unreachable"
    )


def test_stays_absent_reads_every_node_after_one_it_could_not_read() -> None:
    views = {"ovh-1": None, "hetzner-1": state([case("x1")])}
    result = StaysAbsentJudge("x1").judge(views, {"ovh-1": "HTTP 404"})
    assert result.problem == (
        "could not read the plugin state of ovh-1 (HTTP 404); case x1 appeared on hetzner-1"
    )
