"""Console progress of long waits: lines at the start, at each change of the judge's summary
(never per poll) and at the end; which waits report and when the console stays quiet."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes import ScriptedFleet
from tribesqa import console_progress
from tribesqa.console_progress import console_wanted, progress_factory
from tribesqa.waiting import (
    ConsistencyViolation,
    FakeClock,
    Observation,
    Verdict,
    WaitProgress,
    WaitTimeout,
    consistently,
    poll_until,
)
from tribesqa.waiting.progress import progress_for, set_progress_factory

pytestmark = pytest.mark.req("PROG-1")

NODES = ["hetzner-1", "scaleway-1", "ovh-1"]


def active_on(observations: dict[str, Observation]) -> Verdict:
    lagging = [n for n, o in observations.items() if o.value != "active"]
    agree = len(observations) - len(lagging)
    return Verdict(not lagging, f"scaleway-1 active on {agree}/{len(observations)} nodes", lagging)


def recorder(what: str, timeout_s: float, interval_s: float) -> tuple[WaitProgress, list[str]]:
    lines: list[str] = []
    return WaitProgress(what, timeout_s, interval_s, lines.append), lines


def test_lines_at_start_at_each_change_and_at_the_end_not_per_poll() -> None:
    # 3 polls at 1/3, 4 polls at 2/3, then 3/3: 8 polls, 4 lines.
    fleet = ScriptedFleet(
        {
            "hetzner-1": ["active"],
            "scaleway-1": ["syncing"] * 7 + ["active"],
            "ovh-1": ["syncing"] * 3 + ["active"],
        }
    )
    progress, lines = recorder("membership", 900, 5)
    result = poll_until(
        NODES, fleet, active_on, what="membership", timeout_s=900, interval_s=5,
        clock=FakeClock(), progress=progress,
    )  # fmt: skip
    assert result.attempts == 8
    assert lines == [
        "membership: waiting up to 900 s (poll 5 s)",
        "membership: scaleway-1 active on 1/3 nodes (0 s of 900 s)",
        "membership: scaleway-1 active on 2/3 nodes (15 s of 900 s)",
        "membership: done: scaleway-1 active on 3/3 nodes (35 s of 900 s)",
    ]


def test_a_wait_done_at_once_says_start_and_end_only() -> None:
    progress, lines = recorder("membership", 900, 5)
    fleet = ScriptedFleet({n: ["active"] for n in NODES})
    poll_until(
        NODES, fleet, active_on, what="membership", timeout_s=900, interval_s=5,
        clock=FakeClock(), progress=progress,
    )  # fmt: skip
    assert lines == [
        "membership: waiting up to 900 s (poll 5 s)",
        "membership: done: scaleway-1 active on 3/3 nodes (0 s of 900 s)",
    ]


def test_a_timeout_ends_with_its_last_summary() -> None:
    progress, lines = recorder("membership", 20, 5)
    fleet = ScriptedFleet({"hetzner-1": ["active"], "scaleway-1": ["syncing"]})
    with pytest.raises(WaitTimeout):
        poll_until(
            ["hetzner-1", "scaleway-1"], fleet, active_on, what="membership", timeout_s=20,
            interval_s=5, clock=FakeClock(), progress=progress,
        )  # fmt: skip
    assert lines == [
        "membership: waiting up to 20 s (poll 5 s)",
        "membership: scaleway-1 active on 1/2 nodes (0 s of 20 s)",
        "membership: timed out: scaleway-1 active on 1/2 nodes (20 s of 20 s)",
    ]


def test_a_stays_wait_reports_held_or_broke() -> None:
    progress, lines = recorder("stays active", 60, 10)
    fleet = ScriptedFleet({n: ["active"] for n in NODES})
    consistently(
        NODES, fleet, active_on, what="stays active", duration_s=60, interval_s=10,
        clock=FakeClock(), progress=progress,
    )  # fmt: skip
    assert lines == [
        "stays active: waiting up to 60 s (poll 10 s)",
        "stays active: scaleway-1 active on 3/3 nodes (0 s of 60 s)",
        "stays active: held: scaleway-1 active on 3/3 nodes (60 s of 60 s)",
    ]
    progress, lines = recorder("stays active", 60, 10)
    fleet = ScriptedFleet({"hetzner-1": ["active", "active", "syncing"]})
    with pytest.raises(ConsistencyViolation):
        consistently(
            ["hetzner-1"], fleet, active_on, what="stays active", duration_s=60, interval_s=10,
            clock=FakeClock(), progress=progress,
        )  # fmt: skip
    assert lines[-1] == "stays active: broke: scaleway-1 active on 0/1 nodes (20 s of 60 s)"
    assert len(lines) == 3


def test_a_judge_that_raises_still_ends_the_lines() -> None:
    progress, lines = recorder("membership", 900, 5)

    def broken(_: dict[str, Observation]) -> Verdict:
        raise RuntimeError("judge bug")

    with pytest.raises(RuntimeError):
        poll_until(
            ["hetzner-1"], ScriptedFleet({"hetzner-1": ["x"]}), broken, what="membership",
            timeout_s=900, interval_s=5, clock=FakeClock(), progress=progress,
        )  # fmt: skip
    assert lines[-1] == "membership: stopped: no attempt judged (0 s of 900 s)"


# ------------------------------------------------------------------ which waits report, where


@pytest.fixture
def clean_switches(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in ("TRIBES_QA_PROGRESS", *console_progress.PABOT_MARKERS):
        monkeypatch.delenv(name, raising=False)
    yield monkeypatch
    set_progress_factory(None)


def test_only_waits_of_at_least_progress_after_report(clean_switches: pytest.MonkeyPatch) -> None:
    lines: list[str] = []
    set_progress_factory(progress_factory(lambda: 60.0, lines.append))
    assert progress_for("short", 30, 0.1) is None
    reporter = progress_for("long", 60, 5)
    assert reporter is not None
    reporter.start()
    assert lines == ["\nlong: waiting up to 60 s (poll 5 s)"]  # on a line of its own
    set_progress_factory(progress_factory(lambda: None, lines.append))
    assert progress_for("no target or no entry", 3600, 5) is None


@pytest.mark.req("PROG-2")
@pytest.mark.parametrize(
    ("environment", "wanted"),
    [
        ({}, True),
        ({"PABOTQUEUEINDEX": "0"}, False),
        ({"PABOTEXECUTIONPOOLID": "1"}, False),
        ({"PABOTQUEUEINDEX": "0", "TRIBES_QA_PROGRESS": "1"}, True),
        ({"TRIBES_QA_PROGRESS": "0"}, False),
        ({"TRIBES_QA_PROGRESS": "no"}, False),
    ],
)
def test_quiet_under_pabot_unless_asked(
    clean_switches: pytest.MonkeyPatch, environment: dict[str, str], wanted: bool
) -> None:
    for name, value in environment.items():
        clean_switches.setenv(name, value)
    assert console_wanted() is wanted
    set_progress_factory(progress_factory(lambda: 60.0, lambda _: None))
    assert (progress_for("long", 900, 5) is not None) is wanted
