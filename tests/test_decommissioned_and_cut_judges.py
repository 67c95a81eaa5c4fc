"""The judges behind `Decommissioned Node Should Report Itself Out Of The Cluster`, `...Should
Receive No New Writes` and `Node Should Be Cut From The Sync Mesh`: the whole report each gives
the one wait (problem text, table, mismatches, agreement), and the verdicts the waits rely on.
Pure: no fleet (the keywords against the simulator: tests/keywords/)."""

from __future__ import annotations

from typing import Any

import pytest

from tribesqa.checks.conformance import OWN_ROW
from tribesqa.checks.decommissioned import (
    NoNewWritesJudge,
    SelfView,
    SelfViewJudge,
    describe_self_view,
)
from tribesqa.checks.mesh import CutFromMeshJudge, describe_servers
from tribesqa.contract import ClusterNodesList, ClusterStatus, SyncStatus
from tribesqa.reporting.diffing import PRESENCE, Mismatch
from tribesqa.waiting import Observation

T = "2026-05-01T10:00:00Z"
HETZ, SCW = "http://127.0.0.1:12001", "http://127.0.0.1:18001"


def _row(node_id: str, status: str) -> dict[str, object]:
    return {
        "node_id": node_id,
        "pubkey": "a" * 64,
        "transport_address": HETZ,
        "scope": "full",
        "status": status,
        "joined_at": T,
        "activated_at": T,
        "decommissioned_at": T if status == "decommissioned" else None,
        "updated_at": T,
    }


def self_view(self_status: str, own: str | None, mode: str, servers: list[str]) -> SelfView:
    rows = [_row("hetzner-1", "active")] + ([_row("scaleway-1", own)] if own else [])
    return SelfView(
        ClusterStatus.model_validate(
            {
                "node_id": "scaleway-1",
                "status": "healthy",
                "self_status": self_status,
                "active": 1,
                "syncing": 0,
                "decommissioned": 1,
                "membership_digest": "d",
                "control_plane_version": 3,
            }
        ),
        ClusterNodesList.model_validate({"nodes": rows}),
        SyncStatus.model_validate(
            {
                "mode": mode,
                "servers": [{"node_id": s, "url": HETZ, "connected": True} for s in servers],
                "high_water_mark": 4,
                "applied_events": 4,
                "pending_events": 0,
            }
        ),
    )


# ---------------------------------------------------------------------------------------------
# The decommissioned node's own view
# ---------------------------------------------------------------------------------------------


@pytest.mark.req("DECOM-1", "DECOM-2", "DECOM-3")
def test_a_view_still_active_names_every_wrong_part_with_its_table_and_mismatches() -> None:
    """One problem per node, every wrong part after "is decommissioned but"; the table holds
    the three parts of the view, a mismatch per wrong field (expected vs actual)."""
    judge = SelfViewJudge({"scaleway-1": "scaleway-1"})
    result = judge.judge({"scaleway-1": self_view("active", "active", "live", ["hetzner-1"])}, {})
    assert not result.done and result.lagging == ["scaleway-1"]
    assert result.problem == (
        "node scaleway-1 is decommissioned but cluster_status.self_status is active; its own row "
        "in cluster_nodes.list is active; sync.status mode is live, not stopped; sync.status "
        f"still lists 1 sync server(s): hetzner-1 ({HETZ})"
    )
    assert result.agreement == ""  # one node: no "1 of 1 nodes"
    assert result.mismatches == [
        Mismatch("scaleway-1", "cluster_status", "self_status", "decommissioned", "active"),
        Mismatch("scaleway-1", OWN_ROW, "status", "decommissioned", "active"),
        Mismatch("scaleway-1", "sync.status", "mode", "stopped", "live"),
        Mismatch("scaleway-1", "sync.status", "servers", [], ["hetzner-1"]),
    ]
    matrix = result.matrix
    assert matrix is not None and matrix.row_keys == ["cluster_status", OWN_ROW, "sync.status"]
    assert matrix.cell("cluster_status", "scaleway-1") == {"self_status": "active"}
    assert matrix.cell("sync.status", "scaleway-1") == {"mode": "live", "servers": "hetzner-1"}


@pytest.mark.req("DECOM-2")
def test_a_missing_own_row_is_a_missing_cell_and_a_presence_mismatch() -> None:
    result = SelfViewJudge({}).judge(
        {"scaleway-1": self_view("decommissioned", None, "stopped", [])}, {}
    )
    assert result.problem == (
        "node scaleway-1 is decommissioned but cluster_nodes.list has no row for itself (scaleway-1)"
    )
    assert result.mismatches == [Mismatch("scaleway-1", OWN_ROW, PRESENCE, "present", "missing")]
    assert result.matrix is not None and result.matrix.cell(OWN_ROW, "scaleway-1") is None


def test_a_right_view_is_done_and_an_unread_one_is_not_yet() -> None:
    judge = SelfViewJudge({"scaleway-1": "scaleway-1"})
    right = self_view("decommissioned", "decommissioned", "stopped", [])
    assert judge.judge({"scaleway-1": right}, {}).done
    verdict = judge({"scaleway-1": Observation("scaleway-1", None, "ConnectError: refused", 0.1)})
    assert (verdict.done, verdict.lagging, verdict.terminal) == (False, ["scaleway-1"], None)
    assert judge.last is not None and judge.last.matrix is not None
    assert judge.last.problem == "node scaleway-1: could not read its view (ConnectError: refused)"
    assert judge.last.matrix.unreachable == ["scaleway-1"]
    assert describe_self_view(right) == "self_status=decommissioned sync=stopped servers=0"


# ---------------------------------------------------------------------------------------------
# No new writes
# ---------------------------------------------------------------------------------------------


@pytest.mark.req("DECOM-4")
def test_new_events_from_an_active_origin_are_named_with_before_and_now() -> None:
    """Its own and Legion's writes do not count; the table shows every origin before and now,
    a mismatch per origin that grew."""
    before = {"hetzner-1": 3, "scaleway-1": 2, "legion": 5}
    judge = NoNewWritesJudge({"scaleway-1": "scaleway-1"}, {"scaleway-1": before})
    calm = judge.judge({"scaleway-1": {**before, "legion": 9, "scaleway-1": 2}}, {})
    assert calm.done and calm.problem == ""
    grown = judge.judge({"scaleway-1": {**before, "hetzner-1": 5, "ovh-1": 1}}, {})
    assert not grown.done and grown.lagging == ["scaleway-1"]
    assert grown.problem == (
        "node scaleway-1 is decommissioned but received 3 new event(s) from the active nodes "
        "(version vector from hetzner-1 3 -> 5, from ovh-1 0 -> 1)"
    )
    assert grown.mismatches == [
        Mismatch("scaleway-1", "hetzner-1", "version_vector", 3, 5),
        Mismatch("scaleway-1", "ovh-1", "version_vector", 0, 1),
    ]
    matrix = grown.matrix
    assert matrix is not None
    assert matrix.row_keys == ["hetzner-1", "legion", "ovh-1", "scaleway-1"]
    assert matrix.cell("ovh-1", "scaleway-1") == {"before": 0, "now": 1}


def test_a_read_error_breaks_the_no_new_writes_guarantee() -> None:
    judge = NoNewWritesJudge({}, {"scaleway-1": {}})
    result = judge.judge({"scaleway-1": None}, {"scaleway-1": "ProbeTimeout: no answer"})
    assert not result.done
    assert result.problem == "node scaleway-1: could not read its view (ProbeTimeout: no answer)"


# ---------------------------------------------------------------------------------------------
# Cut from the sync mesh
# ---------------------------------------------------------------------------------------------


def servers(*peers: tuple[str, str, bool]) -> dict[str, Any]:
    return {
        "servers": [
            {"node_id": node, "url": url, "connected": connected, "failing_reason": None}
            for node, url, connected in peers
        ]
    }


@pytest.mark.req("GATE-7")
def test_every_node_still_linked_with_the_partitioned_one_is_named_with_the_server() -> None:
    """The partitioned node must report no server connected; every other node must not report
    it connected (its links with third nodes are not in question)."""
    judge = CutFromMeshJudge("scaleway-1", "scaleway-1")
    views = {
        "scaleway-1": servers(("hetzner-1", HETZ, True), ("ovh-1", "http://o", False)),
        "hetzner-1": servers(("scaleway-1", SCW, True), ("ovh-1", "http://o", True)),
        "ovh-1": servers(("scaleway-1", SCW, False), ("hetzner-1", HETZ, True)),
    }
    result = judge.judge(views, {})
    assert not result.done and result.lagging == ["scaleway-1", "hetzner-1"]
    assert result.problem == (
        f"scaleway-1 still reports its sync server(s) hetzner-1 ({HETZ}) connected; "
        f"hetzner-1 still reports scaleway-1 as a connected sync server: scaleway-1 ({SCW})"
    )
    assert result.agreement == "1 of 3 nodes see scaleway-1 cut off"
    assert result.mismatches == [
        Mismatch("scaleway-1", "hetzner-1", "connected", False, True),
        Mismatch("hetzner-1", "scaleway-1", "connected", False, True),
    ]
    matrix = result.matrix
    assert matrix is not None and matrix.row_keys == ["link with scaleway-1"]
    assert matrix.cell("link with scaleway-1", "ovh-1") == {"expected": "cut", "actual": "cut"}
    assert matrix.cell("link with scaleway-1", "hetzner-1") == {
        "expected": "cut",
        "actual": "connected: scaleway-1",
    }
    assert describe_servers(views["hetzner-1"]) == "2 servers, 2 connected"


def test_a_failing_server_counts_as_cut_and_an_unreachable_observer_as_not_yet() -> None:
    judge = CutFromMeshJudge("scaleway-1", "scaleway-1")
    failing = {
        "servers": [
            {"node_id": "hetzner-1", "url": HETZ, "connected": True, "failing_reason": "refused"}
        ]
    }
    assert judge.judge({"scaleway-1": failing}, {}).done
    result = judge.judge({"scaleway-1": failing, "hetzner-1": None}, {"hetzner-1": "timed out"})
    assert not result.done and result.problem == "hetzner-1 unreachable (timed out)"
    assert result.matrix is not None and result.matrix.unreachable == ["hetzner-1"]


# ---------------------------------------------------------------------------------------------
# Several nodes judged at once: every node's report, in order
# ---------------------------------------------------------------------------------------------

RIGHT = self_view("decommissioned", "decommissioned", "stopped", [])


@pytest.mark.req("DECOM-1", "DECOM-2", "DECOM-3")
def test_every_node_s_self_view_is_reported_and_an_unread_one_first_hides_none() -> None:
    """Names map to membership ids (the own row is found by id); one problem per wrong node in
    order after the unread one, all mismatches together, "N of M nodes report it", and the
    table's cells per node ("(none)" when no sync server, servers joined)."""
    judge = SelfViewJudge({"scw-a": "scaleway-1", "scw-b": "scaleway-1", "scw-ok": "scaleway-1"})
    views = {
        "gone": None,
        "scw-a": self_view("active", "decommissioned", "stopped", []),
        "scw-b": self_view("decommissioned", "active", "stopped", ["hetzner-1", "ovh-1"]),
        "scw-ok": RIGHT,
    }
    result = judge.judge(views, {"gone": "ConnectError: refused"})
    assert not result.done and result.lagging == ["gone", "scw-a", "scw-b"]
    assert result.problem == (
        "node gone: could not read its view (ConnectError: refused); "
        "node scw-a is decommissioned but cluster_status.self_status is active; "
        "node scw-b is decommissioned but its own row in cluster_nodes.list is active; "
        f"sync.status still lists 2 sync server(s): hetzner-1 ({HETZ}), ovh-1 ({HETZ})"
    )
    assert result.agreement == "1 of 4 nodes report it"
    assert result.mismatches == [
        Mismatch("scw-a", "cluster_status", "self_status", "decommissioned", "active"),
        Mismatch("scw-b", OWN_ROW, "status", "decommissioned", "active"),
        Mismatch("scw-b", "sync.status", "servers", [], ["hetzner-1", "ovh-1"]),
    ]
    matrix = result.matrix
    assert matrix is not None
    assert (matrix.row_keys, matrix.nodes, matrix.fields, matrix.unreachable) == (
        ["cluster_status", OWN_ROW, "sync.status"],
        ["gone", "scw-a", "scw-b", "scw-ok"],
        ["self_status", "status", "mode", "servers"],
        ["gone"],
    )
    assert matrix.cells == {
        ("cluster_status", "scw-a"): {"self_status": "active"},
        (OWN_ROW, "scw-a"): {"status": "decommissioned"},
        ("sync.status", "scw-a"): {"mode": "stopped", "servers": "(none)"},
        ("cluster_status", "scw-b"): {"self_status": "decommissioned"},
        (OWN_ROW, "scw-b"): {"status": "active"},
        ("sync.status", "scw-b"): {"mode": "stopped", "servers": "hetzner-1, ovh-1"},
        ("cluster_status", "scw-ok"): {"self_status": "decommissioned"},
        (OWN_ROW, "scw-ok"): {"status": "decommissioned"},
        ("sync.status", "scw-ok"): {"mode": "stopped", "servers": "(none)"},
    }


def test_right_self_views_are_done_with_no_problem_and_every_node_agreeing() -> None:
    result = SelfViewJudge({"a": "scaleway-1", "b": "scaleway-1"}).judge(
        {"a": RIGHT, "b": RIGHT}, {}
    )
    assert (result.done, result.problem, result.lagging) == (True, "", [])
    assert result.agreement == "2 of 2 nodes report it"
    assert result.mismatches == []


def test_a_timeline_cell_of_what_is_no_view_is_its_text_cut_at_80() -> None:
    """An error (or anything not a view) in the timeline: its text, at most 80 characters."""
    assert describe_self_view("x" * 100) == "x" * 79 + "…"
    assert describe_self_view("ProbeTimeout") == "ProbeTimeout"
    assert describe_servers("x" * 100) == "x" * 80
    assert describe_servers(None) == "None"


@pytest.mark.req("DECOM-4")
def test_every_node_s_new_writes_are_reported_by_membership_id_and_an_unread_one_first() -> None:
    """Each node's own writes (by its membership id; a node missing from ``node_ids`` is its own
    id) and Legion's do not count; a node without a ``before`` vector starts from nothing; an
    origin gone from ``now`` reads 0. Problems and mismatches of every node, in order."""
    judge = NoNewWritesJudge(
        {"scw": "scaleway-1", "quiet": "ovh-2"},
        {"scw": {"hetzner-1": 3, "scaleway-1": 2, "ovh-1": 4}, "quiet": {"hetzner-1": 1}},
    )
    views = {
        "gone": None,
        "scw": {"hetzner-1": 5, "scaleway-1": 7},
        "ovh-1": {"ovh-1": 9, "hetzner-1": 2},
        "quiet": {"hetzner-1": 1, "legion": 3, "ovh-2": 6},
    }
    result = judge.judge(views, {"gone": "ConnectError: refused"})
    assert not result.done and result.lagging == ["gone", "scw", "ovh-1"]
    assert result.problem == (
        "node gone: could not read its view (ConnectError: refused); "
        "node scw is decommissioned but received 2 new event(s) from the active nodes "
        "(version vector from hetzner-1 3 -> 5); "
        "node ovh-1 is decommissioned but received 2 new event(s) from the active nodes "
        "(version vector from hetzner-1 0 -> 2)"
    )
    assert result.agreement == "1 of 4 nodes received nothing"
    assert result.mismatches == [
        Mismatch("scw", "hetzner-1", "version_vector", 3, 5),
        Mismatch("ovh-1", "hetzner-1", "version_vector", 0, 2),
    ]
    matrix = result.matrix
    assert matrix is not None
    assert (matrix.row_keys, matrix.nodes, matrix.fields, matrix.unreachable) == (
        ["hetzner-1", "legion", "ovh-1", "ovh-2", "scaleway-1"],
        ["gone", "scw", "ovh-1", "quiet"],
        ["before", "now"],
        ["gone"],
    )
    assert matrix.cells == {
        ("hetzner-1", "scw"): {"before": 3, "now": 5},
        ("scaleway-1", "scw"): {"before": 2, "now": 7},
        ("ovh-1", "scw"): {"before": 4, "now": 0},
        ("ovh-1", "ovh-1"): {"before": 0, "now": 9},
        ("hetzner-1", "ovh-1"): {"before": 0, "now": 2},
        ("hetzner-1", "quiet"): {"before": 1, "now": 1},
        ("legion", "quiet"): {"before": 0, "now": 3},
        ("ovh-2", "quiet"): {"before": 0, "now": 6},
    }


def test_nodes_that_received_nothing_are_done_and_one_node_has_no_agreement_phrase() -> None:
    judge = NoNewWritesJudge({}, {"a": {"hetzner-1": 2}, "b": {}})
    both = judge.judge({"a": {"hetzner-1": 2}, "b": {"b": 4}}, {})
    assert (both.done, both.problem, both.lagging, both.mismatches) == (True, "", [], [])
    assert both.agreement == "2 of 2 nodes received nothing"
    one = judge.judge({"a": {"hetzner-1": 2}}, {})
    assert (one.done, one.agreement) == (True, "")


@pytest.mark.req("GATE-7")
def test_an_unreachable_observer_first_hides_no_node_still_linked_and_every_link_is_named() -> None:
    """The partitioned node with two servers still connected: both named in the problem, the
    cell and the mismatches; the unreachable observer before it is lagging too."""
    judge = CutFromMeshJudge("scw", "scaleway-1")
    views = {
        "gone": None,
        "scw": servers(("hetzner-1", HETZ, True), ("ovh-1", "http://o", True)),
        "hetzner-1": servers(("scaleway-1", SCW, False)),
    }
    result = judge.judge(views, {"gone": "timed out"})
    assert not result.done and result.lagging == ["gone", "scw"]
    assert result.problem == (
        "gone unreachable (timed out); "
        f"scw still reports its sync server(s) hetzner-1 ({HETZ}), ovh-1 (http://o) connected"
    )
    assert result.agreement == "1 of 3 nodes see scw cut off"
    assert result.mismatches == [
        Mismatch("scw", "hetzner-1", "connected", False, True),
        Mismatch("scw", "ovh-1", "connected", False, True),
    ]
    matrix = result.matrix
    assert matrix is not None
    assert (matrix.row_keys, matrix.nodes, matrix.fields, matrix.unreachable) == (
        ["link with scw"],
        ["gone", "scw", "hetzner-1"],
        ["expected", "actual"],
        ["gone"],
    )
    assert matrix.cells == {
        ("link with scw", "scw"): {"expected": "cut", "actual": "connected: hetzner-1, ovh-1"},
        ("link with scw", "hetzner-1"): {"expected": "cut", "actual": "cut"},
    }


def test_a_node_cut_off_by_every_observer_is_done_with_no_problem() -> None:
    judge = CutFromMeshJudge("scaleway-1", "scaleway-1")
    views = {
        "scaleway-1": servers(("hetzner-1", HETZ, False)),
        "hetzner-1": servers(("scaleway-1", SCW, False), ("ovh-1", "http://o", True)),
    }
    result = judge.judge(views, {})
    assert (result.done, result.problem, result.lagging, result.mismatches) == (True, "", [], [])
    assert result.agreement == "2 of 2 nodes see scaleway-1 cut off"
