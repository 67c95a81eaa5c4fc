"""Unit tests of the judges that hold runtime reports against membership: derived sync servers,
cluster_status counts, and generations that must stay put (no fleet; FakeClock, no real sleeps)."""

from __future__ import annotations

from typing import Any

import pytest

from tribesqa.checks.generations import GenerationStaysJudge
from tribesqa.checks.health import StatusAgreesJudge
from tribesqa.checks.mesh import DerivedServersJudge, expected_servers
from tribesqa.waiting import ConsistencyViolation, FakeClock, consistently

URL = {"hetzner-1": "http://127.0.0.1:12001", "ovh-1": "http://127.0.0.1:24001"}
URL["scaleway-1"] = "http://127.0.0.1:18001"


def rows(**statuses: str) -> list[dict[str, Any]]:
    return [
        {"node_id": node, "status": status, "transport_address": URL[node]}
        for node, status in statuses.items()
    ]


def server(node: str, *, connected: bool = True, failing: str | None = None) -> dict[str, Any]:
    return {"node_id": node, "url": URL[node], "connected": connected, "failing_reason": failing}


def mesh_view(membership: list[dict[str, Any]], *servers: dict[str, Any]) -> dict[str, Any]:
    return {"rows": membership, "servers": list(servers)}


IDS = {name: name for name in URL}


@pytest.mark.req("REF-23")
def test_derived_servers_are_the_other_active_rows() -> None:
    membership = rows(**{"hetzner-1": "active", "scaleway-1": "decommissioned", "ovh-1": "active"})
    assert expected_servers("hetzner-1", membership) == {"ovh-1": URL["ovh-1"]}
    views = {
        "hetzner-1": mesh_view(membership, server("ovh-1")),
        "ovh-1": mesh_view(membership, server("hetzner-1")),
    }
    assert DerivedServersJudge(IDS).judge(views, {}).done


@pytest.mark.req("REF-23")
def test_missing_extra_and_disconnected_servers_name_node_and_peer() -> None:
    membership = rows(**{"hetzner-1": "active", "scaleway-1": "decommissioned", "ovh-1": "active"})
    views = {
        "hetzner-1": mesh_view(membership, server("scaleway-1")),
        "ovh-1": mesh_view(membership, server("hetzner-1", connected=False, failing="refused")),
        "scaleway-1": None,
    }
    result = DerivedServersJudge(IDS).judge(views, {"scaleway-1": "timed out"})
    assert not result.done
    assert (
        "hetzner-1 does not sync from active peer ovh-1 (http://127.0.0.1:24001)" in result.problem
    )
    assert "hetzner-1 syncs from http://127.0.0.1:18001, which is no other active member" in (
        result.problem
    )
    assert "ovh-1 sync server hetzner-1 (http://127.0.0.1:12001) not connected: refused" in (
        result.problem
    )
    assert "scaleway-1 unreachable (timed out)" in result.problem
    assert result.lagging == ["hetzner-1", "ovh-1", "scaleway-1"]
    assert result.matrix is not None and result.matrix.unreachable == ["scaleway-1"]


def cluster_status(active: int, syncing: int = 0, decommissioned: int = 0, digest: str = "d1"):
    return {
        "status": "healthy",
        "self_status": "active",
        "active": active,
        "syncing": syncing,
        "decommissioned": decommissioned,
        "membership_digest": digest,
        "control_plane_version": 3,
    }


@pytest.mark.req("REF-23")
def test_cluster_status_counts_must_match_the_rows_and_digests_agree() -> None:
    membership = rows(**{"hetzner-1": "active", "scaleway-1": "decommissioned", "ovh-1": "active"})
    good = {"status": cluster_status(2, decommissioned=1), "rows": membership}
    assert StatusAgreesJudge().judge({"hetzner-1": good, "ovh-1": good}, {}).done
    miscounted = {"status": cluster_status(1, decommissioned=1), "rows": membership}
    other_digest = {"status": cluster_status(2, decommissioned=1, digest="d2"), "rows": membership}
    views = {"hetzner-1": miscounted, "ovh-1": good, "scaleway-1": good, "x-1": other_digest}
    result = StatusAgreesJudge().judge(views, {})
    assert not result.done
    assert "hetzner-1 cluster_status says active 1 but 2 active rows listed" in result.problem
    assert "membership_digest of x-1 differs from the majority" in result.problem
    assert result.lagging == ["hetzner-1", "x-1"]


@pytest.mark.req("ROLL-7")
def test_generation_stays_holds_and_fails_at_the_first_move() -> None:
    baseline, plugin = "/gnu/store/aaa-system", "/gnu/store/bbb-system"
    states = iter(
        [{"selected": baseline, "running": baseline}] * 3
        + [{"selected": plugin, "running": baseline}] * 10
    )
    clock = FakeClock()
    with pytest.raises(ConsistencyViolation) as failure:
        consistently(
            ["hetzner-1"],
            lambda _: next(states),
            GenerationStaysJudge(baseline),
            what="node hetzner-1 stays at generation",
            duration_s=2.0,
            interval_s=0.1,
            clock=clock,
        )
    assert f"node hetzner-1: selected {plugin} (expected both to stay at {baseline})" in (
        failure.value.message
    )
    steady = consistently(
        ["hetzner-1"],
        lambda _: {"selected": baseline, "running": baseline},
        GenerationStaysJudge(baseline),
        what="stays",
        duration_s=1.0,
        interval_s=0.1,
        clock=FakeClock(),
    )
    assert steady.attempts >= 10
