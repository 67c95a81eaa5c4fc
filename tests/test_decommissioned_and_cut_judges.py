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
