"""Join and converge: a 3-node cluster agrees on membership, sync mesh and tribe everywhere."""

from __future__ import annotations

from typing import Any

import pytest
from fleetkit import JoinedCluster, eventually

from tribesqa.contract import LegionSnapshot, parse_payload

pytestmark = pytest.mark.timeout(90)


def test_graph_run_materializes_both_joiners(cluster: JoinedCluster) -> None:
    assert cluster.run["state"] == "succeeded", cluster.run
    assert cluster.run["planned"] == ["scaleway-1", "ovh-1"]
    assert cluster.run["materialized"] == ["scaleway-1", "ovh-1"]
    snapshot = parse_payload(
        LegionSnapshot, cluster.fleet.legion.snapshot(), source="legion snapshot"
    )
    assert {n.name: n.status.value for n in snapshot.nodes} == dict.fromkeys(cluster.names, "ready")
    assert [m.node for m in snapshot.cluster_membership] == cluster.names
    assert all(m.status.value == "active" for m in snapshot.cluster_membership)


def test_every_node_lists_the_same_three_active_rows(cluster: JoinedCluster) -> None:
    fleet = cluster.fleet
    infos = {name: fleet.call(name, "node.info") for name in cluster.names}
    assert {info["node_id"] for info in infos.values()} == set(cluster.names)
    legion_records = fleet.records()
    for name, info in infos.items():
        assert info["transport_address"] == legion_records[name]["transport_address"]
        assert info["pubkey"] == legion_records[name]["pubkey"]

    def converged() -> list[dict[str, Any]]:
        views = {name: fleet.call(name, "cluster_nodes.list")["nodes"] for name in cluster.names}
        first = views[cluster.names[0]]
        for name, rows in views.items():
            assert rows == first, f"{name} lists different rows"
        return first

    rows = eventually(converged)
    assert sorted(row["node_id"] for row in rows) == sorted(cluster.names)
    for row in rows:
        info = infos[row["node_id"]]
        assert row["status"] == "active", row
        assert row["scope"] == "full", row
        assert row["transport_address"] == info["transport_address"], row
        assert row["pubkey"] == info["pubkey"], row
        assert row["activated_at"] is not None and row["decommissioned_at"] is None, row


def test_cluster_status_is_healthy_with_one_digest(cluster: JoinedCluster) -> None:
    fleet = cluster.fleet

    def healthy() -> None:
        statuses = [fleet.call(name, "cluster_status") for name in cluster.names]
        for status in statuses:
            assert status["status"] == "healthy", status
            assert status["self_status"] == "active", status
            assert (status["active"], status["syncing"], status["decommissioned"]) == (3, 0, 0)
        assert len({s["membership_digest"] for s in statuses}) == 1, statuses
        assert len({s["control_plane_version"] for s in statuses}) == 1, statuses

    eventually(healthy)


def test_sync_servers_are_the_two_other_nodes_connected(cluster: JoinedCluster) -> None:
    fleet = cluster.fleet
    addresses = {name: fleet.node(name)["transport_address"] for name in cluster.names}

    def mesh() -> None:
        for name in cluster.names:
            status = fleet.call(name, "sync.status")
            servers = {s["node_id"]: s for s in status["servers"]}
            assert sorted(servers) == sorted(set(cluster.names) - {name}), (name, status)
            for peer, server in servers.items():
                assert server["url"] == addresses[peer], (name, server)
                assert server["connected"] is True, (name, server)
                assert server["failing_reason"] is None, (name, server)
            assert status["mode"] == "live", status
            assert status["pending_events"] == 0, status

    eventually(mesh)


def test_tribe_is_identical_everywhere(cluster: JoinedCluster) -> None:
    fleet = cluster.fleet
    tribes = [fleet.call(name, "tribe.status") for name in cluster.names]
    assert all(tribe == tribes[0] for tribe in tribes), tribes
    assert tribes[0]["members"] == [fleet.admin_key.pubkey_hex]
    assert tribes[0]["version"] >= 1


def test_joiners_were_syncing_before_active(cluster: JoinedCluster) -> None:
    # Polled on the init node while the graph ran: a row may only move forward.
    allowed = (["syncing", "active"], ["active"])
    for joiner in ("scaleway-1", "ovh-1"):
        assert cluster.seen.get(joiner) in allowed, cluster.seen
    assert cluster.seen["hetzner-1"] == ["active"], cluster.seen
    # Polling may miss a short syncing window, so the proof is in the replicated log: Legion's
    # last membership write holds ovh-1 syncing, and ovh-1's own later event turned it active
    # (newer HLC wins).
    log = cluster.fleet.sync_log("hetzner-1")
    legion_rows = next(e for e in log if e["origin"] == "legion")["data"]["rows"]
    legion_row = next(r for r in legion_rows if r["node_id"] == "ovh-1")
    assert legion_row["status"] == "syncing" and legion_row["activated_at"] is None
    own = [e for e in log if e["origin"] == "ovh-1" and e["kind"] == "member"]
    assert own and own[-1]["data"]["status"] == "active", own
    assert own[-1]["hlc"] > legion_row["hlc"]
    assert own[-1]["data"]["activated_at"] >= legion_row["joined_at"]
