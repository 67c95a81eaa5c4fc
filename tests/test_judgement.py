"""The shared parts of every judge: the verdict the engine reads, the failure message, how a
judge turns probe observations into views and errors, node listings, time arguments."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.test_convergence_logic import ALL_ACTIVE, NODES, START, row, status, view
from tribesqa.checks import (
    ArchiveJudge,
    ClusterHealthJudge,
    Judgement,
    MembershipJudge,
    parse_time,
)
from tribesqa.diagnostics import TribesFailure
from tribesqa.waiting import Observation


@pytest.fixture
def kolkata(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The runner's local zone is +05:30: every time a check prints or returns must be UTC."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# ----------------------------------------------------------------------------- the verdict


def test_the_verdict_summary_is_the_agreement_when_done_and_problem_plus_agreement_if_not() -> None:
    done = Judgement(done=True, problem="", agreement="3 of 3 nodes agree")
    assert done.verdict().summary == "3 of 3 nodes agree"
    assert Judgement(done=True, problem="", agreement="").verdict().summary == "done"
    failing = Judgement(
        done=False, problem="ovh-1 (isolated)", agreement="2 of 3 nodes healthy", lagging=["ovh-1"]
    )
    verdict = failing.verdict()
    assert (verdict.done, verdict.summary, verdict.lagging) == (
        False,
        "ovh-1 (isolated); 2 of 3 nodes healthy",
        ["ovh-1"],
    )
    assert Judgement(done=False, problem="x", agreement="").verdict().summary == "x"


def test_a_one_look_message_has_no_elapsed_time() -> None:
    judgement = Judgement(done=False, problem="ovh-1 (isolated)", agreement="2 of 3 nodes healthy")
    assert judgement.message("cluster not healthy", None) == (
        "cluster not healthy: ovh-1 (isolated); 2 of 3 nodes healthy"
    )


def test_the_membership_detail_keeps_every_differing_node() -> None:
    views = {
        "hetzner-1": ALL_ACTIVE,
        "scaleway-1": view(hetzner_1="active", scaleway_1="syncing", ovh_1="active"),
        "ovh-1": view(hetzner_1="active", scaleway_1="active", ovh_1="syncing"),
        "upcloud-1": ALL_ACTIVE,
        "exoscale-1": ALL_ACTIVE,
    }
    result = MembershipJudge(NODES, started_at=START).judge(views, {}).explained()
    assert result.detail == (
        "scaleway-1 differs on scaleway-1.status (syncing vs active) (+1 more); "
        "ovh-1 differs on ovh-1.status (syncing vs active) (+1 more)"
    )


# ------------------------------------------------------------------- observations to views


def test_a_failed_probe_reaches_the_judge_as_no_view_with_its_error() -> None:
    judge = ClusterHealthJudge()
    verdict = judge(
        {
            "hetzner-1": Observation("hetzner-1", status("healthy"), None, 0.1),
            "scaleway-1": Observation("scaleway-1", None, "ManagementError: refused", 0.1),
            "ovh-1": Observation("ovh-1", None, "", 0.1),
        }
    )
    assert verdict.summary == (
        "scaleway-1 unreachable (ManagementError: refused), ovh-1 unreachable (no answer); "
        "1 of 3 nodes healthy"
    )
    assert judge.last is not None and judge.last.lagging == ["scaleway-1", "ovh-1"]


def test_a_long_error_is_cut_at_120_characters() -> None:
    error = "E" * 200
    result = ClusterHealthJudge().judge({"ovh-1": None}, {"ovh-1": error})
    assert result.problem == f"ovh-1 unreachable ({'E' * 119}…)"


# --------------------------------------------------------------------------- node listings


def test_observers_are_listed_by_name_up_to_three_then_counted() -> None:
    syncing = view(hetzner_1="active", scaleway_1="active", ovh_1="syncing")
    judge = MembershipJudge(NODES, started_at=START)
    alone = judge.judge({"hetzner-1": syncing}, {})
    assert alone.problem == "node ovh-1 still syncing on hetzner-1"  # one of one: named
    both = judge.judge(dict.fromkeys(NODES[:2], syncing), {})
    assert both.problem == "node ovh-1 still syncing on every node"
    names = ["n1", "n2", "n3", "n4", "n5"]
    three = {n: syncing if n in names[:3] else ALL_ACTIVE for n in names}
    assert judge.judge(three, {}).problem == "node ovh-1 still syncing on n1, n2, n3"
    four = {n: syncing if n in names[:4] else ALL_ACTIVE for n in names}
    assert judge.judge(four, {}).problem == "node ovh-1 still syncing on 4 nodes (n1, n2, n3, ...)"


# ------------------------------------------------------------------------- compared values


def test_odd_field_values_are_compared_without_crashing_the_judge() -> None:
    # a node answering a list where a text belongs must be a difference, not a traceback
    odd = [row("hetzner-1", scope=["full"]), row("ovh-1")]
    other = [row("hetzner-1", scope=["read-only"]), row("ovh-1")]
    result = MembershipJudge(["ovh-1"], started_at=START).judge(
        {"a": odd, "b": odd, "c": other}, {}
    )
    assert result.lagging == ["c"]
    assert result.problem == "c differs from the majority view"


# ------------------------------------------------------------------------------------ times


def test_time_arguments_name_the_argument_and_accept_a_lowercase_z() -> None:
    assert parse_time("2025-01-01T00:00:00z") == START
    with pytest.raises(TribesFailure) as caught:
        parse_time(42)
    assert str(caught.value) == "argument time must be a time, got 42"
    with pytest.raises(TribesFailure) as caught:
        parse_time("")
    assert str(caught.value) == "argument time must be a time, got ''"
    with pytest.raises(TribesFailure) as caught:
        parse_time("soon", "since")
    assert str(caught.value).startswith("argument since must be an RFC 3339 time")


@pytest.mark.usefixtures("kolkata")
def test_times_are_returned_and_printed_in_utc_whatever_the_local_zone() -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    parsed = parse_time("2025-01-01T05:30:00+05:30")
    assert parsed.utcoffset() == timedelta(0)
    assert parsed.isoformat() == "2025-01-01T00:00:00+00:00"
    judge = ArchiveJudge("ovh-1", None, since=datetime(2025, 1, 1, 5, 30, tzinfo=india))
    old = row("ovh-1", "decommissioned", decommissioned_at="2024-12-31T23:00:00Z")
    result = judge.judge({"hetzner-1": {"rows": [old], "servers": []}}, {})
    assert result.problem.endswith("(the step began 2025-01-01T00:00:00Z)")
    assert START.tzinfo is UTC
