"""Node-written times against runner times: at the writer's precision, after the skew allowance.

Properties (hypothesis) over precisions, skews and the same-tick boundary, and the exact race
that made healthy matrix runs red: a decommission stamped ``…43.902Z`` by a node whose
millisecond began before the runner read ``…43.902392Z``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tribesqa.checks import ArchiveJudge, activation_problems
from tribesqa.contract import parse_method_result
from tribesqa.contract.node_time import (
    NodeStamp,
    certainly_after,
    fraction_digits,
    not_before,
    parse_stamp,
    render,
    truncate,
)

DIGITS = st.sampled_from([0, 1, 2, 3, 6])
MOMENTS = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)
)
SKEWS = st.sampled_from([0.0, 0.0005, 0.5, 1.0, 2.0, 30.0])
# How long after the runner's reading the node wrote (0 = the same instant).
DELAYS = st.integers(min_value=0, max_value=3_000_000).map(lambda us: timedelta(microseconds=us))
# A node clock off by at most the allowance: a fraction of skew, either way.
ERRORS = st.floats(min_value=-1.0, max_value=1.0, allow_nan=False)


def resolution(digits: int) -> timedelta:
    return timedelta(microseconds=10 ** (6 - digits))


def written(moment: datetime, digits: int) -> NodeStamp:
    """What a node writing at ``moment`` with ``digits`` fraction digits puts on the wire."""
    return parse_stamp(render(moment, digits))


@given(MOMENTS, DIGITS)
def test_truncation_never_rounds_up_and_stays_within_one_tick(
    moment: datetime, digits: int
) -> None:
    cut = truncate(moment, resolution(digits))
    assert cut <= moment < cut + resolution(digits)
    assert truncate(cut, resolution(digits)) == cut


@given(MOMENTS, DIGITS)
def test_a_stamp_reads_back_at_the_precision_it_was_written(moment: datetime, digits: int) -> None:
    stamp = written(moment, digits)
    assert stamp.digits == digits
    assert stamp.moment == truncate(moment, resolution(digits))
    assert parse_stamp(stamp.text()) == stamp


@given(MOMENTS, DIGITS, DELAYS, SKEWS, ERRORS)
def test_a_write_after_the_runner_time_is_never_before_it(
    runner: datetime, digits: int, delay: timedelta, skew: float, error: float
) -> None:
    # The node wrote `delay` after the runner's reading, its clock off by at most `skew`.
    node_clock = runner + delay + timedelta(seconds=skew * error)
    assert not_before(written(node_clock, digits), runner, skew)


@given(MOMENTS, DIGITS, SKEWS)
def test_a_write_in_the_same_tick_is_not_before(runner: datetime, digits: int, skew: float) -> None:
    same_tick = truncate(runner, resolution(digits))
    assert not_before(written(same_tick, digits), runner, skew)


@given(MOMENTS, DIGITS, SKEWS, st.integers(min_value=1, max_value=10**7))
def test_a_whole_tick_before_the_allowance_is_before(
    runner: datetime, digits: int, skew: float, extra_us: int
) -> None:
    # The stamp's whole tick ends before runner - skew: the node certainly wrote earlier.
    tick_end = runner - timedelta(seconds=skew) - timedelta(microseconds=extra_us)
    stamp = written(tick_end - resolution(digits), digits)
    assert stamp.moment + resolution(digits) <= tick_end
    assert not not_before(stamp, runner, skew)


@given(MOMENTS, DIGITS, SKEWS, SKEWS)
def test_more_allowance_never_turns_a_pass_into_a_failure(
    runner: datetime, digits: int, skew: float, more: float
) -> None:
    stamp = written(runner - timedelta(seconds=1), digits)
    if not_before(stamp, runner, skew):
        assert not_before(stamp, runner, skew + more)


@given(MOMENTS, DIGITS, DELAYS, SKEWS, ERRORS)
def test_a_write_before_the_runner_time_is_never_certainly_after_it(
    runner: datetime, digits: int, delay: timedelta, skew: float, error: float
) -> None:
    # Written `delay` before the runner's reading by a clock within the allowance.
    node_clock = runner - delay + timedelta(seconds=skew * error)
    assert not certainly_after(written(node_clock, digits), runner, skew)


@given(MOMENTS, DIGITS, SKEWS)
def test_a_write_well_after_the_allowance_is_certainly_after(
    runner: datetime, digits: int, skew: float
) -> None:
    later = runner + timedelta(seconds=skew) + resolution(digits) + timedelta(microseconds=1)
    assert certainly_after(written(later, digits), runner, skew)


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("2026-12-01T19:44:43Z", 0),
        ("2026-12-01T19:44:43.9Z", 1),
        ("2026-12-01T19:44:43.902Z", 3),
        ("2026-12-01T19:44:43.902000Z", 6),
        ("2026-12-01T19:44:43.902392+00:00", 6),
        ("2026-12-01T20:44:43.902+01:00", 3),
        ("2026-12-01T19:44:43.123456789Z", 6),
    ],
)
def test_fraction_digits_are_read_from_the_text(text: str, digits: int) -> None:
    assert fraction_digits(text) == digits
    assert parse_stamp(text).moment.tzinfo is UTC


def test_a_naive_or_malformed_time_is_refused() -> None:
    with pytest.raises(ValueError, match="no timezone"):
        parse_stamp("2026-12-01T19:44:43")
    with pytest.raises(ValueError):
        parse_stamp("yesterday")


# ------------------------------------------------- the race that turned healthy runs red

RUNNER_BEFORE = datetime(2026, 12, 1, 19, 44, 43, 902392, tzinfo=UTC)
ADDRESS = "http://127.0.0.1:12001"


def membership_row(node_id: str, **fields: str | None) -> dict[str, str | None]:
    row: dict[str, str | None] = {
        "node_id": node_id,
        "pubkey": "ab" * 32,
        "transport_address": ADDRESS,
        "scope": "tribe",
        "status": "decommissioned",
        "joined_at": "2026-12-01T19:40:00.000Z",
        "activated_at": "2026-12-01T19:40:01.000Z",
        "decommissioned_at": "2026-12-01T19:44:43.902Z",
        "updated_at": "2026-12-01T19:44:43.902Z",
    }
    row.update(fields)
    return row


def as_the_library_reads_it(row: dict[str, str | None]) -> list[dict[str, object]]:
    """The row through the contract models, exactly as ``fetch_membership_rows`` returns it."""
    view = parse_method_result("cluster_nodes.list", {"nodes": [row]}, source="node hetzner-1")
    return [r.model_dump(mode="json") for r in view.nodes]


def test_the_models_keep_the_nodes_precision() -> None:
    (row,) = as_the_library_reads_it(membership_row("ovh-1"))
    assert row["decommissioned_at"] == "2026-12-01T19:44:43.902Z"


@pytest.mark.parametrize(
    "stamp", ["2026-12-01T19:44:43.902Z", "2026-12-01T19:44:43Z", "2026-12-01T19:44:43.902392Z"]
)
def test_a_decommission_in_the_runners_tick_is_archived_since_then(stamp: str) -> None:
    rows = as_the_library_reads_it(membership_row("ovh-1", decommissioned_at=stamp))
    judge = ArchiveJudge("ovh-1", ADDRESS, since=RUNNER_BEFORE)
    verdict = judge.judge({"hetzner-1": {"rows": rows, "servers": []}}, {})
    assert verdict.done, verdict.problem


def test_an_activation_in_the_runners_tick_is_fresh() -> None:
    rows = as_the_library_reads_it(
        membership_row(
            "ovh-1",
            status="active",
            activated_at="2026-12-01T19:44:43Z",
            decommissioned_at=None,
        )
    )
    problems, _ = activation_problems("ovh-1", {"hetzner-1": rows}, {}, RUNNER_BEFORE)
    assert problems == []
    earlier, _ = activation_problems(
        "ovh-1", {"hetzner-1": rows}, {}, RUNNER_BEFORE + timedelta(seconds=1)
    )
    assert earlier == ["hetzner-1 has activated_at 2026-12-01T19:44:43Z"]


def test_a_decommission_written_now_with_an_old_time_is_settled() -> None:
    rows = as_the_library_reads_it(
        membership_row(
            "ovh-1", decommissioned_at="2026-12-01T19:43:43.902Z", updated_at="2026-12-01T19:44:44Z"
        )
    )
    verdict = ArchiveJudge("ovh-1", ADDRESS, since=RUNNER_BEFORE).judge(
        {"hetzner-1": {"rows": rows, "servers": []}}, {}
    )
    assert not verdict.done
    assert verdict.terminal == (
        "decommissioned_at 2026-12-01T19:43:43.902Z on hetzner-1 is before "
        "2026-12-01T19:44:43.902Z (the step began 2026-12-01T19:44:43.902392Z) "
        "(settled: the row was written during the step)"
    )
    assert "written during the step" in ArchiveJudge.SETTLED[0]


def test_an_old_decommissioned_row_only_lags() -> None:
    # An observer still holding the row of an earlier decommission may yet receive the new one.
    old = "2026-12-01T19:30:00.000Z"
    rows = as_the_library_reads_it(membership_row("ovh-1", decommissioned_at=old, updated_at=old))
    verdict = ArchiveJudge("ovh-1", ADDRESS, since=RUNNER_BEFORE).judge(
        {"hetzner-1": {"rows": rows, "servers": []}}, {}
    )
    assert not verdict.done
    assert verdict.terminal is None
    assert "is before 2026-12-01T19:44:43.902Z" in verdict.problem


def test_the_skew_allowance_is_named_and_applied() -> None:
    rows = as_the_library_reads_it(
        membership_row("ovh-1", decommissioned_at="2026-12-01T19:44:42Z")
    )
    allowed = ArchiveJudge("ovh-1", ADDRESS, since=RUNNER_BEFORE, skew_s=2).judge(
        {"hetzner-1": {"rows": rows, "servers": []}}, {}
    )
    assert allowed.done
    late = RUNNER_BEFORE + timedelta(seconds=3)
    refused = ArchiveJudge("ovh-1", ADDRESS, since=late, skew_s=2).judge(
        {"hetzner-1": {"rows": rows, "servers": []}}, {}
    )
    assert "is before 2026-12-01T19:44:44Z" in refused.problem
    assert "allowing 2 s of clock skew" in refused.problem


def test_every_judge_that_fails_fast_names_its_settled_checks() -> None:
    from tribesqa import checks
    from tribesqa.checks.judgement import _Judge

    judges = {
        name: cls
        for name, cls in vars(checks).items()
        if isinstance(cls, type) and issubclass(cls, _Judge) and cls is not _Judge
    }
    failing_fast = {"MembershipJudge", "NodeActiveJudge", "ArchiveJudge"}
    assert failing_fast <= set(judges)
    for name, cls in judges.items():
        assert bool(cls.SETTLED) == (name in failing_fast), name


def test_a_row_written_just_before_the_step_only_lags_on_a_skewed_fleet() -> None:
    # updated_at a second before the step, 2 s of skew allowed: it may be an older row.
    rows = as_the_library_reads_it(
        membership_row(
            "ovh-1", decommissioned_at="2026-12-01T19:40:00Z", updated_at="2026-12-01T19:44:42Z"
        )
    )
    verdict = ArchiveJudge("ovh-1", ADDRESS, since=RUNNER_BEFORE, skew_s=2).judge(
        {"hetzner-1": {"rows": rows, "servers": []}}, {}
    )
    assert not verdict.done and verdict.terminal is None


def test_node_times_keep_their_precision_through_copies_and_pickles() -> None:
    import copy
    import pickle

    (row,) = parse_method_result(
        "cluster_nodes.list", {"nodes": [membership_row("ovh-1")]}, source="node hetzner-1"
    ).nodes
    stamp = row.decommissioned_at
    assert stamp is not None and stamp.digits == 3
    for again in (copy.copy(stamp), copy.deepcopy(stamp), pickle.loads(pickle.dumps(stamp))):
        assert again == stamp and again.digits == 3
    assert copy.deepcopy(row).model_dump(mode="json")["decommissioned_at"].endswith(".902Z")


def test_with_no_allowance_given_no_clock_skew_is_allowed() -> None:
    runner = datetime(2025, 1, 1, tzinfo=UTC)
    half_before = parse_stamp("2024-12-31T23:59:59.500000Z")
    half_after = parse_stamp("2025-01-01T00:00:00.500000Z")
    assert not not_before(half_before, runner)
    assert not_before(half_before, runner, 1.0)
    assert certainly_after(half_after, runner)
    assert not certainly_after(half_after, runner, 1.0)


def test_a_lowercase_z_is_utc_too() -> None:
    stamp = parse_stamp("2025-01-01T00:00:00.25z")
    assert stamp == NodeStamp(datetime(2025, 1, 1, 0, 0, 0, 250000, tzinfo=UTC), 2)


def test_a_datetime_counts_as_microseconds_unless_it_remembers_its_digits() -> None:
    from tribesqa.contract.wire_types import NodeTime

    moment = datetime(2025, 1, 1, 1, 0, 0, 902392, tzinfo=timezone(timedelta(hours=1)))
    assert parse_stamp(moment) == NodeStamp(moment.astimezone(UTC), 6)
    remembered = parse_stamp(NodeTime.of(moment, 3))
    assert remembered.digits == 3
    assert remembered.moment == moment
    assert remembered.text() == "2025-01-01T00:00:00.902Z"


def test_rendered_times_are_utc_whatever_the_runners_local_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        moment = datetime(2025, 1, 1, 5, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
        assert render(moment, 0) == "2025-01-01T00:00:00Z"
    finally:
        monkeypatch.undo()
        time.tzset()
