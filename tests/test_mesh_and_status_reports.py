"""What the mesh, status, generation, conformance and refusal judges report, exactly.

The judges' verdicts are covered by `test_runtime_judges.py` and `test_conformance_checks.py`;
these tests read the rest of each report (whole problem texts, the diff table, the mismatches,
the agreement phrase) and the edge cases the verdicts rely on: trailing slashes, node names that
differ from membership ids, a connected server with a failing reason, unreachable nodes listed
first, a refusal without a message. Each test names the rule it holds. Pure: no fleet.
"""

from __future__ import annotations

from typing import Any

import pytest

from tribesqa.checks.conformance import (
    decommissioned_view_problems,
    membership_record_problems,
    snapshot_secret_problems,
)
from tribesqa.checks.generations import GenerationStaysJudge
from tribesqa.checks.health import StatusAgreesJudge
from tribesqa.checks.mesh import DerivedServersJudge, expected_servers, server_problems
from tribesqa.checks.refusal import NOT_JSON, answer_code, expected_http_status, refusal_problem
from tribesqa.contract import (
    ClusterNodesList,
    ClusterStatus,
    ErrorCode,
    LegionSnapshot,
    MemberStatus,
    SyncStatus,
)
from tribesqa.reporting.diffing import Mismatch
from tribesqa.waiting import Observation

HETZ, OVH, SCW = "http://127.0.0.1:12001", "http://127.0.0.1:24001", "http://127.0.0.1:18001"
URL = {"hetzner-1": HETZ, "ovh-1": OVH, "scaleway-1": SCW}
IDS = {name: name for name in URL}


def rows(**statuses: str) -> list[dict[str, Any]]:
    return [
        {"node_id": node, "status": status, "transport_address": URL[node]}
        for node, status in statuses.items()
    ]


def server(url: str | None, *, connected: bool = True, failing: str | None = None) -> dict:
    return {"url": url, "connected": connected, "failing_reason": failing}


def mesh(membership: list[dict[str, Any]], *servers: dict[str, Any]) -> dict[str, Any]:
    return {"rows": membership, "servers": list(servers)}


ALL_ACTIVE = rows(**{"hetzner-1": "active", "ovh-1": "active", "scaleway-1": "active"})


# ---------------------------------------------------------------------------------------------
# The derived sync mesh
# ---------------------------------------------------------------------------------------------


@pytest.mark.req("REF-23")
@pytest.mark.parametrize(
    ("address", "url"), [(OVH + "/", OVH), (OVH, OVH + "/")], ids=["row-slash", "server-slash"]
)
def test_a_trailing_slash_on_either_side_is_the_same_sync_server(address: str, url: str) -> None:
    """Transport addresses and sync server urls compare without their trailing slash."""
    membership = [
        {"node_id": "hetzner-1", "status": "active", "transport_address": HETZ},
        {"node_id": "ovh-1", "status": "active", "transport_address": address},
    ]
    assert expected_servers("hetzner-1", membership) == {"ovh-1": OVH}
    assert server_problems("hetzner-1", mesh(membership, server(url))) == []


@pytest.mark.req("REF-23")
def test_only_the_trailing_slash_is_trimmed_from_an_address() -> None:
    """An address ending in a capital X keeps it (no other character is trimmed)."""
    relay = "http://RELAY-X"
    membership = [
        {"node_id": "hetzner-1", "status": "active", "transport_address": HETZ},
        {"node_id": "ovh-1", "status": "active", "transport_address": relay + "/"},
    ]
    assert expected_servers("hetzner-1", membership) == {"ovh-1": relay}
    assert server_problems("hetzner-1", mesh(membership, server(relay + "/"))) == []


@pytest.mark.req("REF-23")
def test_a_peer_or_server_without_an_address_is_reported_with_an_empty_one() -> None:
    """No address is invented: an active peer without one is missing "()", a server without a url
    is a source that is no active member."""
    membership = [
        {"node_id": "hetzner-1", "status": "active", "transport_address": HETZ},
        {"node_id": "ovh-1", "status": "active", "transport_address": None},
    ]
    assert expected_servers("hetzner-1", membership) == {"ovh-1": ""}
    assert [text for text, _ in server_problems("hetzner-1", mesh(membership))] == [
        "does not sync from active peer ovh-1 ()"
    ]
    alone = rows(**{"hetzner-1": "active"})
    assert [text for text, _ in server_problems("hetzner-1", mesh(alone, server(None)))] == [
        "syncs from , which is no other active member"
    ]
    nameless = DerivedServersJudge(IDS).judge(
        {"hetzner-1": mesh(alone, server(None), server(OVH))}, {}
    )
    assert nameless.matrix is not None
    assert nameless.matrix.cell("sync servers", "hetzner-1") == {
        "expected": "(none)",
        "actual": f", {OVH}",
    }


@pytest.mark.req("REF-23")
def test_a_failing_reason_fails_a_server_even_when_it_says_connected() -> None:
    """A server is fine only when connected AND without a failing reason; a disconnected one
    without a reason is reported "not connected"."""
    membership = rows(**{"hetzner-1": "active", "ovh-1": "active", "scaleway-1": "active"})
    view = mesh(membership, server(OVH, failing="tls handshake"), server(SCW, connected=False))
    assert server_problems("hetzner-1", view) == [
        (
            f"sync server ovh-1 ({OVH}) not connected: tls handshake",
            Mismatch("hetzner-1", "ovh-1", "connected", True, "tls handshake"),
        ),
        (
            f"sync server scaleway-1 ({SCW}) not connected: not connected",
            Mismatch("hetzner-1", "scaleway-1", "connected", True, "not connected"),
        ),
    ]


@pytest.mark.req("REF-23")
def test_every_nodes_mismatches_and_problems_are_reported_in_order() -> None:
    """An unreachable node first does not hide the nodes after it; each node's missing, extra
    and disconnected servers are one mismatch each, all nodes' together."""
    membership = rows(**{"hetzner-1": "active", "ovh-1": "active", "scaleway-1": "decommissioned"})
    views = {
        "scaleway-1": None,
        "hetzner-1": mesh(membership, server(SCW)),
        "ovh-1": mesh(membership, server(HETZ, connected=False, failing="refused")),
    }
    result = DerivedServersJudge(IDS).judge(views, {"scaleway-1": "timed out"})
    assert result.problem == (
        "scaleway-1 unreachable (timed out); "
        f"hetzner-1 does not sync from active peer ovh-1 ({OVH}); "
        f"hetzner-1 syncs from {SCW}, which is no other active member; "
        f"ovh-1 sync server hetzner-1 ({HETZ}) not connected: refused"
    )
    assert result.mismatches == [
        Mismatch("hetzner-1", "ovh-1", "sync server", OVH, "absent"),
        Mismatch("hetzner-1", SCW, "sync server", "absent", SCW),
        Mismatch("ovh-1", "hetzner-1", "connected", True, "refused"),
    ]
    assert result.lagging == ["scaleway-1", "hetzner-1", "ovh-1"]
    assert result.agreement == "0 of 3 nodes sync as derived (off: scaleway-1, hetzner-1, ovh-1)"


@pytest.mark.req("REF-23")
def test_the_diff_table_shows_expected_and_actual_servers_per_node() -> None:
    """One "sync servers" row; per node the other active members' addresses it should sync from
    and the urls it does (sorted, "(none)" when empty); unreachable nodes have no cell."""
    lone = rows(**{"hetzner-1": "active"})
    views = {
        "hetzner-1": mesh(ALL_ACTIVE, server(SCW), server(OVH)),
        "ovh-1": mesh(lone),
        "scaleway-1": None,
    }
    result = DerivedServersJudge(IDS).judge(views, {"scaleway-1": "refused"})
    matrix = result.matrix
    assert matrix is not None
    assert (matrix.row_keys, matrix.nodes, matrix.fields) == (
        ["sync servers"],
        ["hetzner-1", "ovh-1", "scaleway-1"],
        ["expected", "actual"],
    )
    assert matrix.unreachable == ["scaleway-1"]
    assert matrix.cell("sync servers", "hetzner-1") == {
        "expected": f"{SCW}, {OVH}",
        "actual": f"{SCW}, {OVH}",
    }
    # ovh-1 lists only hetzner-1 as active: it expects hetzner-1, and nobody is its own peer.
    assert matrix.cell("sync servers", "ovh-1") == {"expected": HETZ, "actual": "(none)"}
    assert matrix.cell("sync servers", "scaleway-1") is None
    only = DerivedServersJudge(IDS).judge({"hetzner-1": mesh(lone)}, {})
    assert only.matrix is not None
    assert only.matrix.cell("sync servers", "hetzner-1") == {
        "expected": "(none)",
        "actual": "(none)",
    }


@pytest.mark.req("REF-23")
def test_node_names_map_to_membership_ids_and_fall_back_to_the_name() -> None:
    """A node excludes its own membership id (from ``node_ids``), not its name; a node missing
    from ``node_ids`` is its own id."""
    membership = [
        {"node_id": "n-h", "status": "active", "transport_address": HETZ},
        {"node_id": "n-o", "status": "active", "transport_address": OVH},
        {"node_id": "scaleway-1", "status": "active", "transport_address": SCW},
    ]
    views = {
        "hetzner-1": mesh(membership, server(OVH), server(SCW)),
        "ovh-1": mesh(membership, server(HETZ), server(SCW)),
        "scaleway-1": mesh(membership, server(HETZ), server(OVH)),
    }
    result = DerivedServersJudge({"hetzner-1": "n-h", "ovh-1": "n-o"}).judge(views, {})
    assert result.done, result.problem
    assert result.problem == ""
    assert result.agreement == "3 of 3 nodes sync as derived"
    assert result.matrix is not None
    assert result.matrix.cell("sync servers", "scaleway-1") == {
        "expected": f"{HETZ}, {OVH}",
        "actual": f"{HETZ}, {OVH}",
    }


@pytest.mark.req("REF-23")
def test_the_agreement_counts_the_nodes_that_sync_as_derived() -> None:
    """ "N of M nodes sync as derived", naming the nodes off the mesh when some are."""
    good = mesh(ALL_ACTIVE, server(OVH), server(SCW))
    views = {"hetzner-1": good, "ovh-1": mesh(ALL_ACTIVE, server(HETZ)), "scaleway-1": None}
    result = DerivedServersJudge(IDS).judge(views, {})
    assert result.agreement == "1 of 3 nodes sync as derived (off: ovh-1, scaleway-1)"
    assert result.problem.startswith("ovh-1 does not sync from active peer scaleway-1")
    assert result.verdict().lagging == ["ovh-1", "scaleway-1"]


# ---------------------------------------------------------------------------------------------
# cluster_status against the node's own rows
# ---------------------------------------------------------------------------------------------

DIGEST = "0123456789abcdef" * 4


def status_view(active: int, syncing: int = 0, decommissioned: int = 0, digest: str = DIGEST):
    membership = rows(**{"hetzner-1": "active", "ovh-1": "active", "scaleway-1": "decommissioned"})
    return {
        "status": {
            "status": "healthy",
            "self_status": "active",
            "active": active,
            "syncing": syncing,
            "decommissioned": decommissioned,
            "membership_digest": digest,
            "control_plane_version": 3,
        },
        "rows": membership,
    }


@pytest.mark.req("REF-23")
def test_every_miscount_is_named_with_its_mismatch_and_one_digest_is_no_problem() -> None:
    """Each count that differs from the rows listed is one clause and one mismatch (expected =
    rows listed, actual = the count); a single digest among the nodes adds nothing."""
    views = {"scaleway-1": None, "hetzner-1": status_view(1, syncing=1, decommissioned=1)}
    result = StatusAgreesJudge().judge(views, {"scaleway-1": "connection refused"})
    assert result.problem == (
        "scaleway-1 unreachable (connection refused); "
        "hetzner-1 cluster_status says active 1 but 2 active rows listed, "
        "syncing 1 but 0 syncing rows listed"
    )
    assert result.mismatches == [
        Mismatch("hetzner-1", "cluster_status", "active", 2, 1),
        Mismatch("hetzner-1", "cluster_status", "syncing", 0, 1),
    ]
    assert result.lagging == ["scaleway-1", "hetzner-1"]
    assert result.agreement == "0 of 2 nodes agree"


@pytest.mark.req("REF-23")
def test_status_agreement_counts_nodes_and_a_minority_digest_lags() -> None:
    """ "N of M nodes agree"; the nodes off the majority digest lag; nothing to say when done."""
    good = status_view(2, decommissioned=1)
    views = {"hetzner-1": good, "ovh-1": good, "scaleway-1": status_view(2, 0, 1, "f" * 64)}
    result = StatusAgreesJudge().judge(views, {})
    assert result.problem == "membership_digest of scaleway-1 differs from the majority"
    assert result.agreement == "2 of 3 nodes agree"
    done = StatusAgreesJudge().judge({"hetzner-1": good, "ovh-1": good}, {})
    assert (done.done, done.problem, done.agreement) == (True, "", "2 of 2 nodes agree")


@pytest.mark.req("REF-23")
def test_the_status_table_shows_each_nodes_counts_and_a_short_digest() -> None:
    """One "cluster_status" row; the digest is cut to 12 characters, the counts are as the node
    said; an unreachable node has no cell."""
    views = {"hetzner-1": status_view(1, decommissioned=1), "ovh-1": None}
    result = StatusAgreesJudge().judge(views, {})
    matrix = result.matrix
    assert matrix is not None
    assert matrix.row_keys == ["cluster_status"]
    assert matrix.unreachable == ["ovh-1"]
    assert matrix.cell("cluster_status", "ovh-1") is None
    assert matrix.cell("cluster_status", "hetzner-1") == {
        "status": "healthy",
        "self_status": "active",
        "active": 1,
        "syncing": 0,
        "decommissioned": 1,
        "membership_digest": DIGEST[:12],
        "control_plane_version": 3,
    }
    # No error text recorded for the unreachable node: the report says so rather than "None".
    assert result.problem.endswith("; ovh-1 unreachable (no answer)")


# ---------------------------------------------------------------------------------------------
# Generations that must stay put
# ---------------------------------------------------------------------------------------------

BASE, NEW = "/gnu/store/aaa-system", "/gnu/store/bbb-system"


def seen(node: str, value: Any = None, error: str | None = None) -> Observation:
    return Observation(node, value, error, 0.0)


@pytest.mark.req("ROLL-7")
def test_a_generation_report_names_every_moved_field_and_unreadable_node() -> None:
    """Each node says which of selected/running moved; an unreadable node does not hide the
    nodes after it."""
    judge = GenerationStaysJudge(BASE)
    assert judge.problem("ovh-1", {"selected": BASE, "running": NEW}) == (
        f"node ovh-1: running {NEW} (expected both to stay at {BASE})"
    )
    verdict = judge(
        {
            "hetzner-1": seen("hetzner-1", error="ConnectionError: refused"),
            "ovh-1": seen("ovh-1", {"selected": NEW, "running": None}),
        }
    )
    assert verdict.done is False
    assert verdict.summary == (
        "node hetzner-1: generation.status unreadable (ConnectionError: refused); "
        f"node ovh-1: selected {NEW}, running None (expected both to stay at {BASE})"
    )


@pytest.mark.req("ROLL-7")
def test_a_generation_that_holds_says_where_and_one_that_moves_names_the_node() -> None:
    """Done: "selected and running at <path>"; moved: the node is the lagging one."""
    judge = GenerationStaysJudge(BASE)
    held = judge({"hetzner-1": seen("hetzner-1", {"selected": BASE, "running": BASE})})
    assert (held.done, held.summary) == (True, f"selected and running at {BASE}")
    moved = judge(
        {
            "hetzner-1": seen("hetzner-1", {"selected": NEW, "running": BASE}),
            "ovh-1": seen("ovh-1", {"selected": BASE, "running": BASE}),
        }
    )
    assert (moved.done, moved.lagging) == (False, ["hetzner-1"])  # ovh-1 held still


# ---------------------------------------------------------------------------------------------
# Conformance: the decommissioned node's view, snapshot secrets, membership records
# ---------------------------------------------------------------------------------------------

T = "2026-05-01T10:00:00Z"


def _row(node_id: str, status: str) -> dict[str, object]:
    return {
        "node_id": node_id,
        "pubkey": "a" * 64,
        "transport_address": "http://127.0.0.1:1000",
        "scope": "full",
        "status": status,
        "joined_at": T,
        "activated_at": T,
        "decommissioned_at": T if status == "decommissioned" else None,
        "updated_at": T,
    }


@pytest.mark.req("REF-23")
def test_a_decommissioned_node_that_still_thinks_itself_active_is_named_in_full() -> None:
    """Its own row still active is reported with the status it has; every lingering sync server
    is listed, comma-separated."""
    status = ClusterStatus.model_validate(
        {
            "node_id": "scaleway-1",
            "status": "healthy",
            "self_status": "decommissioned",
            "active": 2,
            "syncing": 0,
            "decommissioned": 0,
            "membership_digest": "d",
            "control_plane_version": 3,
        }
    )
    listed = ClusterNodesList.model_validate(
        {"nodes": [_row("hetzner-1", "active"), _row("scaleway-1", "active")]}
    )
    sync = SyncStatus.model_validate(
        {
            "mode": "stopped",
            "servers": [
                {"node_id": "hetzner-1", "url": HETZ, "connected": True},
                {"node_id": "ovh-1", "url": OVH, "connected": False},
            ],
            "high_water_mark": 4,
            "applied_events": 4,
            "pending_events": 0,
        }
    )
    assert decommissioned_view_problems("scaleway-1", "scaleway-1", status, listed, sync) == [
        "its own row in cluster_nodes.list is active",
        f"sync.status still lists 2 sync server(s): hetzner-1 ({HETZ}), ovh-1 ({OVH})",
    ]


def test_secret_paths_are_reported_whatever_the_snapshot_shape() -> None:
    """A snapshot that is not an object, or a node record that is not one, still gets every
    secret path reported (without a machine name: there is none to read)."""
    assert snapshot_secret_problems([{"private_key": "x"}]) == ["[0].private_key"]
    odd = {"nodes": [[{"private_key": "x"}]], "clusterMembership": [], "graphRuns": []}
    assert snapshot_secret_problems(odd) == ["nodes[0][0].private_key"]
    # A key that only looks like a record path past the records names no record (and is no error).
    beyond = {"nodes": [{"name": "hetzner-1"}], "nodes[1]": {"private_key": "x"}}
    assert snapshot_secret_problems(beyond) == ["nodes[1].private_key"]


def test_every_missing_membership_record_is_reported() -> None:
    """A missing row does not stop the check: each expected node is judged."""
    snapshot = LegionSnapshot.model_validate(
        {"nodes": [], "clusterMembership": [], "graphRuns": []}
    )
    expected = {"hetzner-1": MemberStatus.ACTIVE, "ovh-1": MemberStatus.SYNCING}
    assert membership_record_problems(snapshot, expected) == [
        "no clusterMembership row for hetzner-1 (expected active)",
        "no clusterMembership row for ovh-1 (expected syncing)",
    ]


# ---------------------------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------------------------


def test_an_unknown_code_lists_the_codes_the_contract_knows() -> None:
    known = ", ".join(sorted(code.value for code in ErrorCode))
    with pytest.raises(ValueError) as error:
        expected_http_status("nope")
    assert str(error.value) == f"'nope' is not a contract error code (known: {known})"


def test_answer_code_is_the_error_ok_or_what_stands_in_for_it() -> None:
    """The code an answer carries: ``ok`` only for ``ok: true``, else its error, "no error
    code" when it names none, and the not-JSON phrase for a body that is no object."""
    assert answer_code({"ok": True, "result": 1}) == "ok"
    assert answer_code({"ok": False, "error": "auth-required"}) == "auth-required"
    assert answer_code({"ok": False}) == "no error code"
    assert answer_code({"ok": "yes", "error": "x"}) == "x"
    assert answer_code("<html>") == NOT_JSON


def test_an_answer_without_the_contract_envelope_names_node_and_method() -> None:
    """A body that is JSON but no envelope: the contract error (which opens with the node and
    the method) follows the expected refusal."""
    text = refusal_problem("hetzner-1", "rollout.status", 400, {"ok": False}, "unknown-job")
    assert text is not None
    assert text.startswith(
        "expected HTTP 409 unknown-job, got HTTP 400: node hetzner-1 / rollout.status"
    )
    assert "a failed answer must name its error" in text


def test_a_hand_made_request_answered_without_an_envelope_shows_what_it_carried() -> None:
    """For a probe, a broken envelope is shown by the code it carried: "ok" for ``ok: true``
    with an error, "no error code" for ``ok: false`` without one."""
    sent = "a replayed NIP-98 event"
    ok_with_error = {"ok": True, "error": "x"}
    text = refusal_problem("h-1", "node.info", 200, ok_with_error, "replayed-auth-event", sent=sent)
    assert text is not None
    assert text.startswith(
        "node h-1 refused a replayed NIP-98 event for node.info with HTTP 200 ok, "
        "expected 401 replayed-auth-event (node h-1 / node.info"
    )
    nameless = refusal_problem("h-1", "node.info", 401, {"ok": False}, "auth-required", sent=sent)
    assert nameless is not None
    assert nameless.startswith(
        "node h-1 refused a replayed NIP-98 event for node.info with HTTP 401 no error code, "
        "expected 401 auth-required ("
    )


def test_a_refusal_without_a_message_ends_at_its_code() -> None:
    """No message: no dangling ": " after the code, no empty parentheses for a probe."""
    bare = {"ok": False, "error": "auth-required"}
    assert refusal_problem("h-1", "node.info", 403, bare, "auth-required") == (
        "node h-1 / node.info: expected HTTP 401 auth-required, got HTTP 403 auth-required"
    )
    assert refusal_problem("h-1", "node.info", 403, bare, "auth-required", sent="a probe") == (
        "node h-1 refused a probe for node.info with HTTP 403 auth-required, "
        "expected 401 auth-required"
    )


def test_long_bodies_are_cut_at_160_characters_and_whitespace_collapsed() -> None:
    """An accepted result is shown up to 160 characters; a non-JSON body on one line."""
    accepted = refusal_problem("h-1", "x", 200, {"ok": True, "result": "r" * 300}, "unknown-job")
    assert accepted is not None and accepted.endswith("result " + "r" * 160)
    html = refusal_problem("h-1", "x", 502, "<html>\n  bad\tgateway </html>", "not-ready")
    assert html == (
        "node h-1 / x: expected HTTP 503 not-ready, got HTTP 502 with a body that is not a "
        "JSON envelope: '<html> bad gateway </html>'"
    )
