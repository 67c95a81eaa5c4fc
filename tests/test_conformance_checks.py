"""The pure conformance judges: refusals, the decommissioned node's view, received events,
snapshot secrets and membership rows."""

from __future__ import annotations

import pytest

from tribesqa.checks.conformance import (
    decommissioned_view_problems,
    describe_received,
    events_received_since,
    membership_record_problems,
    snapshot_secret_problems,
)
from tribesqa.checks.refusal import expected_http_status, refusal_problem
from tribesqa.contract import (
    ClusterNodesList,
    ClusterStatus,
    LegionSnapshot,
    MemberStatus,
    SyncStatus,
)

PUBKEY = "a" * 64
T = "2026-05-01T10:00:00Z"


def _row(node_id: str, status: str) -> dict[str, object]:
    return {
        "node_id": node_id,
        "pubkey": PUBKEY,
        "transport_address": "http://127.0.0.1:1000",
        "scope": "full",
        "status": status,
        "joined_at": T,
        "activated_at": T,
        "decommissioned_at": T if status == "decommissioned" else None,
        "updated_at": T,
    }


def _status(self_status: str) -> ClusterStatus:
    return ClusterStatus.model_validate(
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
    )


def _sync(mode: str, servers: list[str]) -> SyncStatus:
    return SyncStatus.model_validate(
        {
            "mode": mode,
            "servers": [
                {"node_id": s, "url": "http://127.0.0.1:2000", "connected": True} for s in servers
            ],
            "high_water_mark": 4,
            "applied_events": 4,
            "pending_events": 0,
        }
    )


def test_expected_statuses_and_unknown_codes() -> None:
    assert expected_http_status("invalid-payload") == 400
    assert expected_http_status("unknown-job") == 409
    assert expected_http_status("not-ready") == 503
    # The NIP-98 codes come from the same table: the security keywords' refusals are 401.
    assert expected_http_status("auth-required") == 401
    assert expected_http_status("replayed-auth-event") == 401
    with pytest.raises(ValueError, match="'nope' is not a contract error code"):
        expected_http_status("nope")


def test_refusal_judge() -> None:
    refusal = {"ok": False, "error": "unknown-job", "message": "no job"}
    assert refusal_problem("hetzner-1", "rollout.status", 409, refusal, "unknown-job") is None
    assert refusal_problem("hetzner-1", "rollout.status", 400, refusal, "unknown-job") == (
        "node hetzner-1 / rollout.status: expected HTTP 409 unknown-job, got HTTP 400 unknown-job: no job"
    )
    accepted = refusal_problem("hetzner-1", "x", 200, {"ok": True, "result": 1}, "unknown-job")
    assert accepted == (
        "node hetzner-1 / x succeeded but should have been refused with HTTP 409 unknown-job: "
        "got HTTP 200 ok, result 1"
    )
    text = refusal_problem("hetzner-1", "x", 500, "boom\n", "unknown-method")
    assert text == (
        "node hetzner-1 / x: expected HTTP 400 unknown-method, got HTTP 500 with a body that is "
        "not a JSON envelope: 'boom'"
    )
    no_code = refusal_problem("hetzner-1", "x", 400, {"ok": False}, "unknown-method")
    assert no_code is not None and "a failed answer must name its error" in no_code


def test_one_judge_for_method_calls_and_hand_made_probes() -> None:
    """The same verdict whichever way the request is named: the status comes from the table."""
    refusal = {"ok": False, "error": "auth-required", "message": "no Authorization header"}
    sent = "a request without an Authorization header"
    for named in ({}, {"sent": sent}):
        assert (
            refusal_problem("hetzner-1", "node.info", 401, refusal, "auth-required", **named)
            is None
        )
    wrong_status = refusal_problem("hetzner-1", "node.info", 403, refusal, "auth-required")
    assert wrong_status == (
        "node hetzner-1 / node.info: expected HTTP 401 auth-required, "
        "got HTTP 403 auth-required: no Authorization header"
    )
    probe = refusal_problem("hetzner-1", "node.info", 403, refusal, "auth-required", sent=sent)
    assert probe == (
        "node hetzner-1 refused a request without an Authorization header for node.info with "
        "HTTP 403 auth-required, expected 401 auth-required (no Authorization header)"
    )
    # A 409 code judged for a hand-made request wants 409, not 401.
    busy = {"ok": False, "error": "rollout-in-progress", "message": "busy"}
    assert (
        refusal_problem("h", "rollout.start", 409, busy, "rollout-in-progress", sent=sent) is None
    )
    with pytest.raises(ValueError, match="'nope' is not a contract error code"):
        refusal_problem("h", "node.info", 401, refusal, "nope", sent=sent)


def test_decommissioned_view() -> None:
    rows = ClusterNodesList.model_validate(
        {"nodes": [_row("hetzner-1", "active"), _row("scaleway-1", "decommissioned")]}
    )
    right = decommissioned_view_problems(
        "scaleway-1", "scaleway-1", _status("decommissioned"), rows, _sync("stopped", [])
    )
    assert right == []
    active_rows = ClusterNodesList.model_validate({"nodes": [_row("hetzner-1", "active")]})
    wrong = decommissioned_view_problems(
        "scaleway-1", "scaleway-1", _status("active"), active_rows, _sync("live", ["hetzner-1"])
    )
    assert wrong == [
        "cluster_status.self_status is active",
        "cluster_nodes.list has no row for itself (scaleway-1)",
        "sync.status mode is live, not stopped",
        "sync.status still lists 1 sync server(s): hetzner-1 (http://127.0.0.1:2000)",
    ]


def test_received_events_ignore_own_and_legion_origins() -> None:
    before = {"hetzner-1": 3, "scaleway-1": 2, "legion": 5}
    assert events_received_since("scaleway-1", before, {**before, "legion": 9}) == {}
    grown = events_received_since("scaleway-1", before, {**before, "hetzner-1": 5, "ovh-1": 1})
    assert grown == {"hetzner-1": (3, 5), "ovh-1": (0, 1)}
    assert describe_received("scaleway-1", grown) == (
        "node scaleway-1 is decommissioned but received 3 new event(s) from the active nodes "
        "(version vector from hetzner-1 3 -> 5, from ovh-1 0 -> 1)"
    )


def _snapshot(rows: list[dict[str, object]]) -> dict[str, object]:
    return {
        "nodes": [
            {"name": "hetzner-1", "provider": "hetzner", "region": "fsn1", "status": "planned"},
            {"name": "ovh-1", "provider": "ovh", "region": "gra", "status": "planned"},
        ],
        "clusterMembership": rows,
        "graphRuns": [],
    }


def test_snapshot_secrets_name_the_record() -> None:
    raw = _snapshot([])
    assert snapshot_secret_problems(raw) == []
    raw["nodes"][1]["ssh"] = {"host": "h", "port": 22, "user": "u", "private_key": "x"}  # type: ignore[index]
    raw["legionToken"] = "t"
    assert snapshot_secret_problems(raw) == [
        "record of ovh-1: nodes[1].ssh.private_key",
        "legionToken",
    ]


def test_membership_rows() -> None:
    row = {**_row("hetzner-1", "active"), "node": "hetzner-1"}
    row.pop("updated_at")
    snapshot = LegionSnapshot.model_validate(_snapshot([row]))
    expected = {"hetzner-1": MemberStatus.ACTIVE, "ovh-1": MemberStatus.SYNCING}
    assert membership_record_problems(snapshot, expected) == [
        "no clusterMembership row for ovh-1 (expected syncing)"
    ]
    assert membership_record_problems(snapshot, {"hetzner-1": MemberStatus.DECOMMISSIONED}) == [
        "clusterMembership row of hetzner-1 is active, expected decommissioned"
    ]
