"""Unit tests of the convergence judges (no fleet; FakeClock, so no real sleeps)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fakes import ScriptedFleet
from tribesqa.checks import (
    TRIBE_UNKNOWN,
    ArchiveJudge,
    ClusterHealthJudge,
    ItemVisibleJudge,
    MembershipJudge,
    NodeActiveJudge,
    PluginStateJudge,
    StatusMemory,
    StaysAbsentJudge,
    TribeJudge,
    activation_problems,
    describe_membership,
    normalize_expected,
    parse_time,
    sync_endpoint_problems,
)
from tribesqa.contract import ContractError
from tribesqa.diagnostics import TribesFailure
from tribesqa.keywords.convergence_base import fetch_membership_rows
from tribesqa.reporting.diffing import PRESENCE
from tribesqa.waiting import (
    ConsistencyViolation,
    FakeClock,
    WaitTerminal,
    WaitTimeout,
    consistently,
    poll_until,
)

NODES = ["hetzner-1", "scaleway-1", "ovh-1"]
START = datetime(2025, 1, 1, tzinfo=UTC)  # FakeClock's default wall start
BEFORE = "2024-12-31T23:59:00Z"
LATER = "2025-01-01T00:00:05Z"
ADDRESSES = {n: f"http://127.0.0.1:{21000 + i}" for i, n in enumerate(NODES)}


def row(node_id: str, status: str = "active", *, updated: str = BEFORE, **changes: Any) -> dict:
    data = {
        "node_id": node_id,
        "pubkey": "ab" * 32,
        "transport_address": ADDRESSES.get(node_id, "http://127.0.0.1:29999"),
        "scope": "full",
        "status": status,
        "joined_at": BEFORE,
        "activated_at": None if status == "syncing" else BEFORE,
        "decommissioned_at": BEFORE if status == "decommissioned" else None,
        "updated_at": updated,
    }
    data.update(changes)
    return data


def view(**statuses: str) -> list[dict]:
    """``view(hetzner_1="active", ovh_1="syncing")`` -> rows (underscores become dashes)."""
    return [row(name.replace("_", "-"), status) for name, status in statuses.items()]


ALL_ACTIVE = view(hetzner_1="active", scaleway_1="active", ovh_1="active")
OVH_SYNCING = view(hetzner_1="active", scaleway_1="active", ovh_1="syncing")


def wait(judge: Any, probe: Any, nodes: list[str] = NODES, timeout_s: float = 10.0) -> Any:
    return poll_until(
        nodes,
        probe,
        judge,
        what="membership not converged",
        timeout_s=timeout_s,
        interval_s=0.5,
        clock=FakeClock(),
    )


# ------------------------------------------------------------------------------- membership


def test_converged_membership_is_done() -> None:
    judge = MembershipJudge(NODES, started_at=START)
    result = judge.judge(dict.fromkeys(NODES, ALL_ACTIVE), {})
    assert result.done
    assert result.agreement == "3 of 3 nodes agree"
    assert result.lagging == []
    assert result.terminal is None


def test_a_syncing_row_everyone_sees_is_not_converged() -> None:
    judge = MembershipJudge(NODES, started_at=START)
    result = judge.judge(dict.fromkeys(NODES, OVH_SYNCING), {})
    assert not result.done
    assert result.problem == "node ovh-1 still syncing on every node"
    assert result.agreement == "3 of 3 nodes agree"  # they agree, but on a stuck row
    assert {(m.node, m.row, m.field, m.actual) for m in result.mismatches} == {
        (n, "ovh-1", "status", "syncing") for n in NODES
    }


@pytest.mark.req("REF-23")
def test_one_observer_still_syncing_names_it_and_marks_the_cell() -> None:
    judge = MembershipJudge(NODES, started_at=START)
    views = {"hetzner-1": OVH_SYNCING, "scaleway-1": ALL_ACTIVE, "ovh-1": ALL_ACTIVE}
    result = judge.judge(views, {})
    assert not result.done
    assert result.problem == "node ovh-1 still syncing on hetzner-1"
    assert result.lagging == ["hetzner-1"]
    assert result.matrix is None  # built only for a report
    assert result.explained().matrix is not None
    assert ("ovh-1", "hetzner-1", "status") in result.matrix.differing()
    message = result.message("membership not converged", 10.0)
    assert message == (
        "membership not converged: node ovh-1 still syncing on hetzner-1 after 10.0 s; "
        "2 of 3 nodes agree; hetzner-1 differs on ovh-1.status (syncing vs active) (+1 more)"
    )


def test_unreachable_observer_and_missing_row() -> None:
    judge = MembershipJudge(NODES, started_at=START)
    short = view(hetzner_1="active", scaleway_1="active")
    views = {"hetzner-1": ALL_ACTIVE, "scaleway-1": short, "ovh-1": None}
    result = judge.judge(views, {"ovh-1": "ManagementError: connection refused"})
    assert not result.done
    assert "ovh-1 unreachable (ManagementError: connection refused)" in result.problem
    assert "node ovh-1 has no membership row on scaleway-1" in result.problem
    assert set(result.lagging) == {"scaleway-1", "ovh-1"}


def test_wait_times_out_with_one_message_naming_node_property_and_duration() -> None:
    judge = MembershipJudge(NODES, started_at=START)
    probe = ScriptedFleet(
        {"hetzner-1": [OVH_SYNCING], "scaleway-1": [ALL_ACTIVE], "ovh-1": [ALL_ACTIVE]}
    )
    with pytest.raises(WaitTimeout) as caught:
        wait(judge, probe)
    assert caught.value.result.elapsed_s == pytest.approx(10.0)
    assert judge.last is not None
    assert judge.last.message("membership not converged", caught.value.result.elapsed_s) == (
        "membership not converged: node ovh-1 still syncing on hetzner-1 after 10.0 s; "
        "2 of 3 nodes agree; hetzner-1 differs on ovh-1.status (syncing vs active) (+1 more)"
    )


def test_wait_converges_once_the_row_turns_active() -> None:
    judge = MembershipJudge(NODES, started_at=START)
    probe = ScriptedFleet(
        {
            "hetzner-1": [OVH_SYNCING, OVH_SYNCING, ALL_ACTIVE],
            "scaleway-1": [ALL_ACTIVE],
            "ovh-1": [ALL_ACTIVE],
        }
    )
    result = wait(judge, probe)
    assert result.attempts == 3
    assert result.verdict.done


def test_row_going_backwards_during_the_wait_is_terminal() -> None:
    regressed = [row("hetzner-1"), row("scaleway-1"), row("ovh-1", "syncing", updated=LATER)]
    judge = MembershipJudge(NODES, started_at=START)
    # 1st poll: ovh-1 does not answer yet (not done); 2nd poll: hetzner-1, which saw ovh-1
    # active, now sees a syncing row written during the wait: fail now, not after 10 s.
    probe = ScriptedFleet(
        {
            "hetzner-1": [ALL_ACTIVE, regressed],
            "scaleway-1": [ALL_ACTIVE],
            "ovh-1": [ConnectionError("refused"), ALL_ACTIVE],
        }
    )
    with pytest.raises(WaitTerminal) as caught:
        wait(judge, probe)
    assert caught.value.result.attempts == 2
    assert judge.last is not None and judge.last.terminal is not None
    assert "node ovh-1 went backwards on hetzner-1: active -> syncing" in judge.last.terminal
    assert judge.last.message("membership not converged", 0.5).startswith(
        "membership not converged: node ovh-1 went backwards on hetzner-1"
    )


def test_syncing_row_written_before_the_wait_is_a_resync_not_a_regression() -> None:
    # The test forced a resync before waiting: the syncing row is older than the wait, and
    # a peer that still showed the old active row at the first poll is simply catching up.
    resynced = [row("hetzner-1"), row("scaleway-1"), row("ovh-1", "syncing", updated=BEFORE)]
    judge = MembershipJudge(NODES, started_at=START)
    probe = ScriptedFleet(
        {
            "hetzner-1": [ALL_ACTIVE, resynced, ALL_ACTIVE],
            "scaleway-1": [resynced, ALL_ACTIVE],
            "ovh-1": [resynced, ALL_ACTIVE],
        }
    )
    result = wait(judge, probe)
    assert result.verdict.done


def test_status_memory_grace_and_reactivation() -> None:
    memory = StatusMemory(START, grace_s=1.0)
    assert memory.observe("a", row("x"), member=True) is None
    # within the grace period: written "at" the start, not after it
    assert (
        memory.observe("a", row("x", "syncing", updated="2025-01-01T00:00:00.500Z"), member=True)
        is None
    )
    assert memory.observe("a", row("x", "syncing", updated=LATER), member=True) is not None
    # decommissioned -> syncing is a reactivation
    memory2 = StatusMemory(START)
    assert memory2.observe("a", row("y", "decommissioned"), member=False) is None
    assert memory2.observe("a", row("y", "syncing", updated=LATER), member=False) is None
    assert memory2.observe("a", row("y", "active", updated=LATER), member=False) is None


@pytest.mark.req("REF-23")
def test_unexpected_decommission_of_a_member_is_terminal() -> None:
    gone = [row("hetzner-1"), row("scaleway-1"), row("ovh-1", "decommissioned", updated=LATER)]
    judge = MembershipJudge(NODES, started_at=START)
    probe = ScriptedFleet({"hetzner-1": [gone], "scaleway-1": [ALL_ACTIVE], "ovh-1": [ALL_ACTIVE]})
    with pytest.raises(WaitTerminal):
        wait(judge, probe)
    assert judge.last is not None
    assert judge.last.terminal is not None
    assert judge.last.terminal.startswith("node ovh-1 unexpectedly decommissioned on hetzner-1")


def test_a_decommission_in_the_same_tick_as_a_live_row_is_lag_not_a_verdict() -> None:
    # Written by different writers in one tick (or within the skew allowance): which came last
    # cannot be told, so the wait goes on; the deadline still reports a member not active.
    same_tick = [row("hetzner-1"), row("scaleway-1"), row("ovh-1", "decommissioned")]
    judge = MembershipJudge(NODES, started_at=START)
    probe = ScriptedFleet(
        {"hetzner-1": [same_tick], "scaleway-1": [ALL_ACTIVE], "ovh-1": [ALL_ACTIVE]}
    )
    with pytest.raises(WaitTimeout):
        wait(judge, probe)
    assert judge.last is not None and judge.last.terminal is None
    assert "node ovh-1 still decommissioned on hetzner-1" in judge.last.problem
    skewed = [row("hetzner-1"), row("scaleway-1"), row("ovh-1", "decommissioned", updated=LATER)]
    within = MembershipJudge(NODES, started_at=START, skew_s=120)  # LATER - BEFORE = 65 s
    views = {"hetzner-1": skewed, "scaleway-1": ALL_ACTIVE, "ovh-1": ALL_ACTIVE}
    assert within.judge(views, {}).terminal is None
    assert MembershipJudge(NODES, started_at=START, skew_s=30).judge(views, {}).terminal


@pytest.mark.req("REF-23")
def test_archived_row_of_a_former_member_is_fine_and_expected_decommission_too() -> None:
    gone = [row("hetzner-1"), row("scaleway-1"), row("ovh-1", "decommissioned")]
    observers = ["hetzner-1", "scaleway-1"]
    judge = MembershipJudge(observers, started_at=START)
    assert judge.judge(dict.fromkeys(observers, gone), {}).done
    expected = normalize_expected(
        {"hetzner-1": "active", "scaleway-1": "active", "ovh-1": {"status": "decommissioned"}}
    )
    judge = MembershipJudge(NODES, expected, started_at=START)
    result = judge.judge(dict.fromkeys(observers, gone), {})
    assert result.terminal is None
    assert result.done


def test_a_row_seen_active_then_decommissioned_is_terminal_even_for_a_non_member() -> None:
    judge = MembershipJudge(["hetzner-1"], started_at=START)
    judge.judge({"hetzner-1": ALL_ACTIVE}, {})
    gone = [row("hetzner-1"), row("scaleway-1"), row("ovh-1", "decommissioned")]
    result = judge.judge({"hetzner-1": gone}, {})
    assert result.terminal is not None and "ovh-1 unexpectedly decommissioned" in result.terminal


def test_expected_table_mismatches_are_reported_per_observer() -> None:
    expected = normalize_expected(
        [
            {"node": "hetzner-1", "status": "active", "scope": "full"},
            {"node": "scaleway-1", "status": "active", "scope": "read-only"},
            {"node": "ovh-1", "status": "active", "transport_address": ADDRESSES["ovh-1"]},
        ]
    )
    judge = MembershipJudge(NODES, expected, started_at=START)
    result = judge.judge(dict.fromkeys(NODES, ALL_ACTIVE), {})
    assert not result.done
    assert result.problem.startswith(
        "expected table not met: hetzner-1 sees scaleway-1.scope = full (expected read-only)"
    )
    assert len(result.mismatches) == 3
    assert {m.field for m in result.mismatches} == {"scope"}


def test_expected_table_flags_missing_and_unexpected_rows() -> None:
    expected = normalize_expected({"hetzner-1": "active", "scaleway-1": "active"})
    judge = MembershipJudge(NODES, expected, started_at=START)
    result = judge.judge(dict.fromkeys(NODES, ALL_ACTIVE), {})
    assert not result.done
    assert any(m.row == "ovh-1" and m.field == PRESENCE for m in result.mismatches)


def test_normalize_expected_forms_and_errors() -> None:
    # Text tables are Robot's to convert (the keyword's dict | list type); here they are refused.
    full = normalize_expected({"ovh-1": {"status": "active", "scope": "full"}})
    assert full == {"ovh-1": {"status": "active", "scope": "full"}}
    assert normalize_expected({"ovh-1": "syncing"}) == {"ovh-1": {"status": "syncing"}}
    assert normalize_expected([{"node": "ovh-1", "status": "active"}]) == {
        "ovh-1": {"status": "active"}
    }
    assert normalize_expected({"ovh-1": "active"}, {"ovh-1": "id-7"}.get) == {
        "id-7": {"status": "active"}
    }
    assert normalize_expected(None) == {}
    with pytest.raises(TribesFailure, match="unknown field"):
        normalize_expected({"ovh-1": {"colour": "red"}})
    with pytest.raises(TribesFailure, match="names no node"):
        normalize_expected([{"status": "active"}])
    with pytest.raises(TribesFailure, match="dictionary"):
        normalize_expected("not a table")


def test_describe_membership_is_short() -> None:
    assert describe_membership(OVH_SYNCING) == "hetzner-1:active,scaleway-1:active,ovh-1:syncing"
    many = [row(f"n-{i}") for i in range(49)] + [row("n-49", "syncing")]
    assert describe_membership(many) == "49 active,n-49:syncing"


def test_parse_time_refuses_naive_times() -> None:
    assert parse_time("2025-01-01T00:00:00Z") == START
    assert parse_time(START) == START
    with pytest.raises(TribesFailure, match="timezone"):
        parse_time("2025-01-01T00:00:00")
    with pytest.raises(TribesFailure, match="RFC 3339"):
        parse_time("yesterday")


# ------------------------------------------------------------------------- node / archive


@pytest.mark.req("REF-23")
def test_node_active_everywhere_message_and_terminal() -> None:
    judge = NodeActiveJudge("ovh-1", started_at=START)
    views = {"hetzner-1": OVH_SYNCING, "scaleway-1": ALL_ACTIVE, "ovh-1": ALL_ACTIVE}
    result = judge.judge(views, {})
    assert not result.done
    assert result.message("node ovh-1 not active everywhere", 20.0) == (
        "node ovh-1 not active everywhere: node ovh-1 still syncing on hetzner-1 after 20.0 s; "
        "2 of 3 nodes agree"
    )
    gone = [row("hetzner-1"), row("scaleway-1"), row("ovh-1", "decommissioned", updated=LATER)]
    result = judge.judge({"hetzner-1": gone, "scaleway-1": ALL_ACTIVE, "ovh-1": ALL_ACTIVE}, {})
    assert result.terminal is not None and "decommissioned" in result.terminal
    assert (
        NodeActiveJudge("ovh-1", started_at=START).judge(dict.fromkeys(NODES, ALL_ACTIVE), {}).done
    )


def test_an_old_decommissioned_row_after_a_reactivation_is_lag_not_a_verdict() -> None:
    # Legion answered before the reactivation reached hetzner-1: it still holds the old row.
    old = row("ovh-1", "decommissioned", updated=BEFORE)
    reactivated = row("ovh-1", "syncing", updated=LATER)
    views = {
        "hetzner-1": [row("hetzner-1"), row("scaleway-1"), old],
        "scaleway-1": [row("hetzner-1"), row("scaleway-1"), reactivated],
        "ovh-1": [row("hetzner-1"), row("scaleway-1"), reactivated],
    }
    for judge in (
        NodeActiveJudge("ovh-1", started_at=START),
        MembershipJudge(NODES, started_at=START),
    ):
        result = judge.judge(views, {})
        assert result.terminal is None, result.terminal
        assert not result.done and "hetzner-1" in result.lagging
    # The same old row with nothing newer anywhere is a decommission: terminal at once.
    alone = {name: [row("hetzner-1"), row("scaleway-1"), old] for name in NODES}
    result = NodeActiveJudge("ovh-1", started_at=START).judge(alone, {})
    assert result.terminal is not None and "unexpectedly decommissioned" in result.terminal


def archive_view(rows: list[dict], servers: list[str] | None = None) -> dict:
    return {"rows": rows, "servers": servers or []}


@pytest.mark.req("REF-23")
def test_archive_judge() -> None:
    archived = [
        row("hetzner-1"),
        row("scaleway-1"),
        row("ovh-1", "decommissioned", decommissioned_at=LATER),
    ]
    observers = ["hetzner-1", "scaleway-1"]
    judge = ArchiveJudge("ovh-1", ADDRESSES["ovh-1"], since=START)
    assert judge.judge(dict.fromkeys(observers, archive_view(archived)), {}).done

    deleted = [row("hetzner-1"), row("scaleway-1")]
    result = judge.judge(
        {
            "hetzner-1": archive_view(deleted),
            "scaleway-1": archive_view(archived, [ADDRESSES["ovh-1"] + "/"]),
        },
        {},
    )
    assert not result.done
    assert result.problem == (
        f"row missing on hetzner-1; scaleway-1 still syncs with {ADDRESSES['ovh-1']}"
    )
    old = [row("hetzner-1"), row("ovh-1", "decommissioned", decommissioned_at=BEFORE)]
    result = judge.judge({"hetzner-1": archive_view(old)}, {})
    assert "is before 2025-01-01T00:00:00Z" in result.problem
    active = judge.judge({"hetzner-1": archive_view(ALL_ACTIVE)}, {})
    assert "status active on hetzner-1" in active.problem
    assert "decommissioned_at not set on hetzner-1" in active.problem


def test_activation_problems() -> None:
    fresh = [row("hetzner-1"), row("ovh-1", activated_at=LATER)]
    stale = [row("hetzner-1"), row("ovh-1", activated_at=BEFORE)]
    problems, mismatches = activation_problems("ovh-1", {"a": fresh, "b": fresh}, {}, START)
    assert problems == [] and mismatches == []
    problems, mismatches = activation_problems(
        "ovh-1", {"a": fresh, "b": stale, "c": None}, {"c": "refused"}, START
    )
    assert problems == [f"b has activated_at {BEFORE}", "c unreachable (refused)"]
    assert [(m.node, m.field) for m in mismatches] == [("b", "activated_at")]


def test_sync_endpoint_problems() -> None:
    address = ADDRESSES["ovh-1"]
    views = dict.fromkeys(NODES, ALL_ACTIVE)
    assert sync_endpoint_problems("ovh-1", address, views, None) == []
    wrong = "http://127.0.0.1:21003"
    problems = sync_endpoint_problems("ovh-1", wrong, views, "GET x: ConnectError: refused")
    assert problems == [
        f"Legion says {wrong}, peers report {address} (every node)",
        "unreachable: GET x: ConnectError: refused",
    ]
    assert "scheme ftp is not http/https/ws/wss" in sync_endpoint_problems(
        "ovh-1", "ftp://127.0.0.1:1", {}, None
    )
    assert "no explicit port" in sync_endpoint_problems("ovh-1", "http://127.0.0.1", {}, None)
    assert sync_endpoint_problems("ovh-1", None, {}, None) == ["Legion exposes no sync endpoint"]


# ---------------------------------------------------------------------------- plugin state


def case(case_id: str, counter: int = 0) -> dict:
    return {
        "id": case_id,
        "run_id": "r1",
        "name": f"name-{case_id}",
        "counter": counter,
        "updated_at": BEFORE,
        "origin_node": "hetzner-1",
    }


def event(event_id: str, case_id: str = "c1") -> dict:
    return {
        "id": event_id,
        "run_id": "r1",
        "case_id": case_id,
        "kind": "note",
        "payload": {},
        "created_at": BEFORE,
        "origin_node": "hetzner-1",
    }


def state(cases: list[dict], events: list[dict] | None = None) -> dict:
    return {"cases": cases, "events": events or []}


def test_plugin_state_converged_and_counts() -> None:
    same = state([case("c1", 3)], [event("e1")])
    assert PluginStateJudge().judge(dict.fromkeys(NODES, same), {}).done
    assert PluginStateJudge(1, 1).judge(dict.fromkeys(NODES, same), {}).done
    result = PluginStateJudge(2, 1).judge(dict.fromkeys(NODES, same), {})
    assert not result.done
    assert result.problem.startswith("hetzner-1 holds 1 cases (expected 2)")


def test_plugin_state_counter_difference_is_marked() -> None:
    views = {
        "hetzner-1": state([case("c1", 3)]),
        "scaleway-1": state([case("c1", 3)]),
        "ovh-1": state([case("c1", 2)]),
    }
    result = PluginStateJudge().judge(views, {})
    assert not result.done
    assert result.lagging == ["ovh-1"]
    assert result.problem == "ovh-1 differs on case:c1.counter (2 vs 3)"
    assert result.explained().matrix is not None
    assert ("case:c1", "ovh-1", "counter") in result.matrix.differing()


def test_plugin_state_missing_event() -> None:
    views = {
        "hetzner-1": state([case("c1")], [event("e1")]),
        "scaleway-1": state([case("c1")], [event("e1")]),
        "ovh-1": state([case("c1")]),
    }
    result = PluginStateJudge().judge(views, {})
    assert result.problem == "ovh-1 lacks row event:e1"


def test_item_visible_with_counter() -> None:
    judge = ItemVisibleJudge("cases", "c1", counter=3)
    assert judge.judge({"ovh-1": state([case("c1", 3)])}, {}).done
    result = judge.judge({"ovh-1": state([case("c1", 2)])}, {})
    assert result.problem == "case c1 on ovh-1 has counter 2, expected 3"
    assert result.message("run r1", 1.5) == (
        "run r1: case c1 on ovh-1 has counter 2, expected 3 after 1.5 s"
    )
    result = ItemVisibleJudge("events", "e9").judge({"ovh-1": state([], [event("e1")])}, {})
    assert result.problem == "event e9 not visible on ovh-1"


def test_stays_stale_fails_at_the_first_poll_where_the_item_appears() -> None:
    absent, present = state([case("c0")]), state([case("c0"), case("c1")])
    probe = ScriptedFleet({"ovh-1": [absent, absent, present]})
    judge = StaysAbsentJudge("c1")
    with pytest.raises(ConsistencyViolation) as caught:
        consistently(
            ["ovh-1"], probe, judge, what="stale", duration_s=5.0, interval_s=0.5, clock=FakeClock()
        )
    assert caught.value.result.attempts == 3
    assert caught.value.result.elapsed_s == pytest.approx(1.0)
    assert judge.last is not None and judge.last.problem == "case c1 appeared on ovh-1"


def test_stays_stale_holds_for_the_duration() -> None:
    probe = ScriptedFleet({"ovh-1": [state([case("c0")])]})
    result = consistently(
        ["ovh-1"],
        probe,
        StaysAbsentJudge("c1"),
        what="stale",
        duration_s=2.0,
        interval_s=0.5,
        clock=FakeClock(),
    )
    assert result.attempts == 5


def test_stays_stale_read_error_breaks_the_guarantee() -> None:
    result = StaysAbsentJudge("c1").judge({"ovh-1": None}, {"ovh-1": "HTTP 404"})
    assert not result.done
    assert result.problem == "could not read the plugin state of ovh-1 (HTTP 404)"


# ------------------------------------------------------------------------ status and tribe


def status(value: str) -> dict:
    return {
        "node_id": "x",
        "status": value,
        "self_status": "active",
        "active": 3,
        "syncing": 0,
        "decommissioned": 0,
        "membership_digest": "d" * 64,
        "control_plane_version": 4,
    }


def test_cluster_health_judge() -> None:
    assert ClusterHealthJudge().judge(dict.fromkeys(NODES, status("healthy")), {}).done
    views = {"hetzner-1": status("healthy"), "scaleway-1": status("isolated"), "ovh-1": None}
    result = ClusterHealthJudge().judge(views, {"ovh-1": "timeout"})
    assert result.problem == "scaleway-1 (isolated), ovh-1 unreachable (timeout)"
    assert result.agreement == "1 of 3 nodes healthy"


def tribe(version: int, digest: str) -> dict:
    return {
        "tribe_id": "t",
        "name": "n",
        "members": ["ab" * 32],
        "version": version,
        "digest": digest,
    }


@pytest.mark.req("API-12")
def test_tribe_judge_waits_for_unknown_and_flags_digest_differences() -> None:
    assert TribeJudge().judge(dict.fromkeys(NODES, tribe(1, "aa")), {}).done
    views = {
        "hetzner-1": tribe(1, "aa"),
        "scaleway-1": tribe(1, "aa"),
        "ovh-1": dict(TRIBE_UNKNOWN),
    }
    result = TribeJudge().judge(views, {})
    assert not result.done and result.terminal is None
    assert result.problem == "ovh-1 not replayed the tribe yet (tribe-unknown)"
    views["ovh-1"] = tribe(2, "bb")
    result = TribeJudge().judge(views, {})
    assert result.lagging == ["ovh-1"]
    assert "ovh-1 at version 2 digest bb" in result.problem


def test_timeline_describe_is_used_for_membership_waits() -> None:
    judge = MembershipJudge(NODES, started_at=START)
    probe = ScriptedFleet({n: [ALL_ACTIVE] for n in NODES})
    result = poll_until(
        NODES,
        probe,
        judge,
        what="m",
        timeout_s=1,
        interval_s=0.5,
        clock=FakeClock(),
        describe=describe_membership,
    )
    assert (
        result.timeline.rows[0].cells["ovh-1"] == "hetzner-1:active,scaleway-1:active,ovh-1:active"
    )


def test_fake_clock_wall_matches_start() -> None:
    assert FakeClock().wall() == START
    assert FakeClock().wall() + timedelta(seconds=5) == parse_time(LATER)


def test_row_order_does_not_matter_and_other_fields_are_compared() -> None:
    judge = MembershipJudge(NODES, started_at=START)
    reordered = list(reversed(ALL_ACTIVE))
    assert judge.judge(
        {"hetzner-1": ALL_ACTIVE, "scaleway-1": reordered, "ovh-1": ALL_ACTIVE}, {}
    ).done
    moved = [
        row("hetzner-1"),
        row("scaleway-1"),
        row("ovh-1", transport_address="http://10.0.0.9:1"),
    ]
    result = judge.judge({"hetzner-1": ALL_ACTIVE, "scaleway-1": ALL_ACTIVE, "ovh-1": moved}, {})
    assert not result.done
    assert result.lagging == ["ovh-1"]
    assert result.message("membership not converged", 3.0) == (
        "membership not converged: ovh-1 differs from the majority view after 3.0 s; "
        "2 of 3 nodes agree; ovh-1 differs on ovh-1.transport_address "
        f"(http://10.0.0.9:1 vs {ADDRESSES['ovh-1']})"
    )


def test_identical_views_of_a_large_fleet_are_judged_once() -> None:
    names = [f"n-{i}" for i in range(50)]
    rows = [row(name) for name in names[:-1]] + [row(names[-1], "syncing")]
    judge = MembershipJudge(names, started_at=START)
    result = judge.judge(dict.fromkeys(names, rows), {})
    assert result.problem == "node n-49 still syncing on every node"
    assert len(result.mismatches) == 50
    assert {m.node for m in result.mismatches} == set(names)
    assert result.agreement == "50 of 50 nodes agree"


# ------------------------------------------------------------------------------- fetching


class CountingClient:
    """Answers ``cluster_nodes.list`` with a fixed view, counting calls."""

    def __init__(self, node: str, rows: list[dict]) -> None:
        self.node = node
        self.rows = rows

    def call(self, method: str, params: Any = None) -> Any:
        assert method == "cluster_nodes.list"
        return {"nodes": [dict(r) for r in self.rows]}


def test_fetched_rows_are_normalized_the_same_whether_checked_or_remembered() -> None:
    rows = [row(n, updated="2025-01-01T01:00:00+01:00") for n in NODES]
    first = fetch_membership_rows(CountingClient("hetzner-1", rows))
    again = fetch_membership_rows(CountingClient("ovh-1", rows))
    assert first == again
    assert first[0]["updated_at"] == "2025-01-01T00:00:00Z"  # normalized to UTC either way
    again[0]["status"] = "mutated"  # callers get their own rows
    assert fetch_membership_rows(CountingClient("ovh-1", rows))[0]["status"] == "active"


def test_remembered_rows_still_fail_the_contract_when_a_view_is_wrong() -> None:
    rows = [row(n) for n in NODES]
    fetch_membership_rows(CountingClient("hetzner-1", rows))
    # Every row is known, but the view repeats one: the model's rule still speaks.
    with pytest.raises(ContractError, match=r"node scaleway-1 / cluster_nodes.list.*duplicate"):
        fetch_membership_rows(CountingClient("scaleway-1", [*rows, rows[0]]))
    # One unknown, invalid row among known ones is reported with its index.
    broken = row("ovh-1", status="active", activated_at=None)
    with pytest.raises(ContractError, match=r"node ovh-1 / cluster_nodes.list.*nodes\[2\]"):
        fetch_membership_rows(CountingClient("ovh-1", [*rows[:2], broken]))
