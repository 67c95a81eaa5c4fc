"""What the lifecycle checks report: the archive judge's mismatch lines, settled verdicts and
diff table, fresh activation, and the sync endpoint's form (scheme, port, trailing slash).

Each mismatch is a line of the failure report QA reads (``hetzner-1 sees ovh-1.status = active
(expected decommissioned)``), so the tests read the whole line, not just the node.
"""

from __future__ import annotations

from datetime import timedelta

from tests.test_convergence_logic import ADDRESSES, BEFORE, LATER, NODES, START, row
from tribesqa.checks import ArchiveJudge, activation_problems, sync_endpoint_problems

OVH = ADDRESSES["ovh-1"]


def archive_view(rows: list[dict], servers: list[str] | None = None) -> dict:
    return {"rows": rows, "servers": servers or []}


def lines(judgement) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(m) for m in judgement.mismatches]


def archived(**changes: object) -> dict:
    return row("ovh-1", "decommissioned", decommissioned_at=LATER, updated=LATER, **changes)


# ----------------------------------------------------------------------------------- archive


def test_archive_report_has_a_line_per_wrong_field_and_the_membership_table() -> None:
    judge = ArchiveJudge("ovh-1", OVH + "/", since=START)
    views = {
        "hetzner-1": archive_view([row("hetzner-1")]),
        "scaleway-1": archive_view([row("ovh-1", "active")], [OVH]),
        "ovh-1": None,
        "upcloud-1": archive_view([archived()]),
    }
    result = judge.judge(views, {"ovh-1": "refused"})
    assert lines(result) == [
        "hetzner-1 sees row ovh-1 missing (expected present)",
        "scaleway-1 sees ovh-1.status = active (expected decommissioned)",
        "scaleway-1 sees ovh-1.decommissioned_at = null (expected set)",
        f"scaleway-1 sees ovh-1.sync server = {OVH} (expected absent)",
    ]
    assert result.problem == (
        "row missing on hetzner-1; status active on scaleway-1; "
        "decommissioned_at not set on scaleway-1; "
        f"scaleway-1 still syncs with {OVH}; ovh-1 unreachable (refused)"
    )
    assert result.lagging == ["hetzner-1", "scaleway-1", "ovh-1"]
    assert result.agreement == "1 of 4 nodes agree"
    assert result.terminal is None
    explained = result.explained()
    assert explained.matrix is not None
    assert explained.matrix.unreachable == ["ovh-1"]
    assert explained.matrix.row_keys == ["hetzner-1", "ovh-1"]
    assert explained.matrix.cell("ovh-1", "upcloud-1")["status"] == "decommissioned"  # type: ignore[index]


def test_archive_done_everywhere_has_no_problem_and_no_terminal() -> None:
    judge = ArchiveJudge("ovh-1", None, since=START)
    result = judge.judge(dict.fromkeys(NODES[:2], archive_view([archived()])), {})
    assert (result.done, result.problem, result.lagging, result.terminal) == (True, "", [], None)
    assert result.agreement == "2 of 2 nodes agree"


def test_archive_without_a_given_address_uses_the_row_transport_address() -> None:
    judge = ArchiveJudge("ovh-1", None)
    result = judge.judge({"hetzner-1": archive_view([archived()], [OVH + "/"])}, {})
    assert result.problem == f"hetzner-1 still syncs with {OVH}"
    assert lines(result) == [f"hetzner-1 sees ovh-1.sync server = {OVH} (expected absent)"]
    nothing = ArchiveJudge("ovh-1", "")
    blank = archived(transport_address=None)
    assert nothing.judge({"hetzner-1": archive_view([blank], ["None"])}, {}).done
    assert ArchiveJudge("ovh-1", None).judge({"hetzner-1": {"rows": [archived()]}}, {}).done


def test_archive_stamp_before_the_step_reads_the_bound_and_the_wanted_time() -> None:
    judge = ArchiveJudge("ovh-1", OVH, since=START)
    old = row("ovh-1", "decommissioned", decommissioned_at=BEFORE, updated=BEFORE)
    result = judge.judge({"hetzner-1": archive_view([old])}, {})
    assert result.problem == (
        "decommissioned_at 2024-12-31T23:59:00Z on hetzner-1 is before 2025-01-01T00:00:00Z "
        "(the step began 2025-01-01T00:00:00Z)"
    )
    assert lines(result) == [
        "hetzner-1 sees ovh-1.decommissioned_at = 2024-12-31T23:59:00Z "
        "(expected >= 2025-01-01T00:00:00Z)"
    ]
    assert result.terminal is None  # an old row may still be replaced: it only lags


def test_archive_stamp_written_during_the_step_but_before_it_is_settled() -> None:
    judge = ArchiveJudge("ovh-1", OVH, since=START, skew_s=1.0)
    wrong = row("ovh-1", "decommissioned", decommissioned_at=BEFORE, updated=LATER)
    result = judge.judge({"hetzner-1": archive_view([wrong])}, {})
    problem = (
        "decommissioned_at 2024-12-31T23:59:00Z on hetzner-1 is before 2024-12-31T23:59:59Z "
        "(the step began 2025-01-01T00:00:00Z, allowing 1 s of clock skew)"
    )
    assert result.problem == problem
    assert result.terminal == f"{problem} (settled: the row was written during the step)"
    # updated only within the skew of the start: it may be old, so not settled
    near = (START + timedelta(seconds=0.5)).isoformat().replace("+00:00", "Z")
    maybe_old = row("ovh-1", "decommissioned", decommissioned_at=BEFORE, updated=near)
    assert judge.judge({"hetzner-1": archive_view([maybe_old])}, {}).terminal is None


# -------------------------------------------------------------------------------- activation


def test_activation_report_lines_name_observer_field_and_the_wanted_bound() -> None:
    syncing = row("ovh-1", "syncing")
    stale = row("ovh-1", activated_at=BEFORE)
    problems, mismatches = activation_problems(
        "ovh-1",
        {"a": [syncing], "b": [stale], "c": [row("hetzner-1")], "d": None},
        {},
        START,
    )
    assert problems == [
        "a has activated_at None (status syncing)",
        f"b has activated_at {BEFORE}",
        "c has no row",
        "d unreachable (no answer)",
    ]
    assert [str(m) for m in mismatches] == [
        "a sees ovh-1.activated_at = null (expected >= 2025-01-01T00:00:00Z)",
        f"b sees ovh-1.activated_at = {BEFORE} (expected >= 2025-01-01T00:00:00Z)",
        "c sees row ovh-1 missing (expected present)",
    ]


def test_activation_allows_the_clock_skew() -> None:
    just_before = row("ovh-1", activated_at="2024-12-31T23:59:59.500Z")
    assert activation_problems("ovh-1", {"a": [just_before]}, {}, START, skew_s=1.0) == ([], [])
    problems, _ = activation_problems("ovh-1", {"a": [just_before]}, {}, START)
    assert problems == ["a has activated_at 2024-12-31T23:59:59.500Z"]


# ----------------------------------------------------------------------------- sync endpoint


def test_a_trailing_slash_on_either_side_is_the_same_endpoint() -> None:
    slashed = [row("ovh-1", transport_address=OVH + "/")]
    assert sync_endpoint_problems("ovh-1", OVH, dict.fromkeys(NODES, slashed), None) == []
    plain = [row("ovh-1")]
    views = dict.fromkeys(NODES, plain)
    assert sync_endpoint_problems("ovh-1", OVH + "/", views, None) == []


def test_peers_without_the_row_and_silent_peers_are_reported_apart() -> None:
    views = {"hetzner-1": [row("hetzner-1")], "scaleway-1": [row("ovh-1")], "ovh-1": None}
    assert sync_endpoint_problems("ovh-1", OVH, views, None) == [
        f"Legion says {OVH}, peers report (no row) (hetzner-1)"
    ]
    other = "http://127.0.0.1:21009"
    split = {"hetzner-1": [row("ovh-1", transport_address=other)], "scaleway-1": [row("hetzner-1")]}
    assert sync_endpoint_problems("ovh-1", OVH, split, None) == [
        f"Legion says {OVH}, peers report {other} (hetzner-1); (no row) (scaleway-1)"
    ]


def test_every_sync_scheme_is_accepted_and_a_missing_scheme_is_named() -> None:
    for scheme in ("http", "https", "ws", "wss"):
        assert sync_endpoint_problems("ovh-1", f"{scheme}://127.0.0.1:1", {}, None) == []
    assert sync_endpoint_problems("ovh-1", "ftp://127.0.0.1:1", {}, None) == [
        "scheme ftp is not http/https/ws/wss"
    ]
    assert sync_endpoint_problems("ovh-1", "//127.0.0.1:1", {}, None) == [
        "scheme (none) is not http/https/ws/wss"
    ]
    assert sync_endpoint_problems("ovh-1", "http://127.0.0.1:port", {}, None) == [
        "no explicit port"
    ]


def test_archive_reads_every_observer_after_an_unreachable_one() -> None:
    judge = ArchiveJudge("ovh-1", OVH)
    views = {"ovh-1": None, "hetzner-1": archive_view([row("ovh-1")])}
    result = judge.judge(views, {"ovh-1": "refused"})
    assert result.problem == (
        "ovh-1 unreachable (refused); status active on hetzner-1; "
        "decommissioned_at not set on hetzner-1"
    )


def test_archive_checks_the_address_it_was_given_over_the_rows_own() -> None:
    # the row still carries the old address; the node's real sync address is the one given
    moved = "http://127.0.0.1:21555"
    judge = ArchiveJudge("ovh-1", moved + "/")
    result = judge.judge({"hetzner-1": archive_view([archived()], [moved])}, {})
    assert result.problem == f"hetzner-1 still syncs with {moved}"
    assert judge.judge({"hetzner-1": archive_view([archived()], [OVH])}, {}).done


def test_archive_row_address_with_a_trailing_slash_still_matches_a_sync_server() -> None:
    slashed = archived(transport_address=OVH + "/")
    result = ArchiveJudge("ovh-1", None).judge({"hetzner-1": archive_view([slashed], [OVH])}, {})
    assert result.problem == f"hetzner-1 still syncs with {OVH}/"


def test_archive_message_is_problem_and_agreement_only() -> None:
    judge = ArchiveJudge("ovh-1", OVH)
    result = judge.judge({"hetzner-1": archive_view([row("hetzner-1")])}, {})
    assert result.message("ovh-1 not archived", 3.0) == (
        "ovh-1 not archived: row missing on hetzner-1 after 3.0 s; 0 of 1 nodes agree"
    )


def test_activation_reads_every_observer_after_an_unreachable_one() -> None:
    stale = [row("ovh-1", activated_at=BEFORE)]
    problems, _ = activation_problems("ovh-1", {"a": None, "b": stale}, {"a": "refused"}, START)
    assert problems == ["a unreachable (refused)", f"b has activated_at {BEFORE}"]


def test_a_stale_activation_reports_the_bound_it_was_compared_with() -> None:
    # 1.5 s of skew back from the start, cut to the stamp's whole seconds
    stale = [row("ovh-1", activated_at="2024-12-31T23:59:57Z")]
    _, mismatches = activation_problems("ovh-1", {"a": stale}, {}, START, skew_s=1.5)
    assert [str(m) for m in mismatches] == [
        "a sees ovh-1.activated_at = 2024-12-31T23:59:57Z (expected >= 2024-12-31T23:59:58Z)"
    ]


def test_sync_endpoint_reads_every_peer_after_a_silent_one() -> None:
    other = "http://127.0.0.1:21009"
    views = {"hetzner-1": None, "scaleway-1": [row("ovh-1", transport_address=other)]}
    assert sync_endpoint_problems("ovh-1", OVH, views, None) == [
        f"Legion says {OVH}, peers report {other} (scaleway-1)"
    ]


def test_no_endpoint_anywhere_is_one_problem() -> None:
    views = {"hetzner-1": [row("ovh-1", transport_address="")]}
    assert sync_endpoint_problems("ovh-1", None, views, None) == ["Legion exposes no sync endpoint"]
