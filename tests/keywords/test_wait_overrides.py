"""Per-call ``timeout=`` / ``poll=`` on the Wait and Stays keywords, against the simulator.

A wait on something that never happens (a live node expected ``decommissioned``) must give up
at the call's own timeout, long before the table's entry, poll at the call's own interval, and
say in its message which timeout and poll it used and where each came from. Without
overrides the message names the table entry, its column and the table file (the one
``TRIBES_QA_TIMEOUTS`` points at). Bad values fail with the keyword and argument named.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tribesqa.config import DEFAULT_TIMEOUTS_FILE, load_timeouts
from tribesqa.diagnostics import TribesFailure
from tribesqa.timing import TimeoutTable

TABLE_MEMBERSHIP_S = 30.0

SUITE = """
*** Settings ***
Library           tribesqa.library.TribesLibrary
Suite Setup       Open Target
Suite Teardown    Close Target

*** Test Cases ***
One Node Is Up
    ${init}=    Provision Init Node    hetzner
    VAR    ${NODE}    ${init.name}    scope=SUITE
    VAR    &{NEVER}    ${NODE}=decommissioned    scope=SUITE

A Wait Gives Up At Its Own Timeout
    Wait Until Cluster Converged    ${NODE}    expected=${NEVER}    timeout=2 s    poll=0.5 s

A Wait Without Overrides Uses The Table
    Wait Until Cluster Converged    ${NODE}    expected=${NEVER}

A Newer Wait Gives Up At Its Own Timeout
    Decommissioned Node Should Report Itself Out Of The Cluster    ${NODE}    timeout=1 s    poll=0.25 s

A Stays Keyword Polls At Its Own Interval
    Node Should Stay Syncing For    ${NODE}    duration=1 s    poll=0.4 s

A Negative Timeout Is Refused
    Wait Until Node Is Active Everywhere    ${NODE}    timeout=-1 s

A Zero Poll Is Refused
    Wait Until Tribe Converged    poll=0
"""


def _table(tmp_path: Path, membership_s: float) -> Path:
    data = yaml.safe_load(DEFAULT_TIMEOUTS_FILE.read_text())
    data["TIMEOUTS"]["sim"]["membership_converged"] = membership_s
    path = tmp_path / "timeouts.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _after_s(message: str) -> float:
    found = re.search(r"\bafter (\d+\.\d) s", message)
    assert found, message
    return float(found.group(1))


def _polls(message: str) -> int:
    found = re.search(r"; (\d+) polls\]", message)
    assert found, message
    return int(found.group(1))


@pytest.mark.slow
def test_call_overrides_beat_the_table_and_the_message_says_so(
    run_robot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = _table(tmp_path, TABLE_MEMBERSHIP_S)
    monkeypatch.setenv("TRIBES_QA_TIMEOUTS", str(table))
    # The table's own entry would take 30 s: run that test only in the second run below.
    result = run_robot(
        SUITE,
        name="overrides",
        exclude=[],
        test=[
            "One Node Is Up",
            "A Wait Gives Up At Its Own Timeout",
            "A Newer Wait Gives Up At Its Own Timeout",
            "A Stays Keyword Polls At Its Own Interval",
            "A Negative Timeout Is Refused",
            "A Zero Poll Is Refused",
        ],
    )
    tests = {test.name: test for test in result.suite.all_tests}
    assert tests["One Node Is Up"].status == "PASS", tests["One Node Is Up"].message

    own = tests["A Wait Gives Up At Its Own Timeout"]
    assert own.status == "FAIL"
    assert "membership not converged" in own.message, own.message
    assert "timeout 2 s from timeout=, poll 0.5 s from poll=" in own.message, own.message
    # Gave up at its own deadline (2 s), far from the table's 30 s; polled every 0.5 s
    # (the table's 0.1 s would have made about 20 polls).
    assert 2.0 <= _after_s(own.message) < TABLE_MEMBERSHIP_S / 2, own.message
    assert 3 <= _polls(own.message) <= 6, own.message

    newer = tests["A Newer Wait Gives Up At Its Own Timeout"]
    # The init node is active, never decommissioned: the wait runs out at the call's 1 s
    # (the table's membership_converged is 30 s here) and says which timeout it used.
    assert newer.status == "FAIL"
    assert "is decommissioned but" in newer.message, newer.message
    assert "[timeout 1 s from timeout=, poll 0.25 s from poll=; " in newer.message, newer.message
    assert 1.0 <= _after_s(newer.message) < TABLE_MEMBERSHIP_S / 2, newer.message

    stays = tests["A Stays Keyword Polls At Its Own Interval"]
    # The init node is active, not syncing: the stays check fails at its first poll, and its
    # message names the window and the poll the call gave.
    assert stays.status == "FAIL"
    assert "duration 1 s from duration=, poll 0.4 s from poll=" in stays.message, stays.message

    negative = tests["A Negative Timeout Is Refused"]
    assert negative.status == "FAIL"
    assert negative.message == (
        "Wait Until Node Is Active Everywhere: timeout= must be >= 0 seconds, got -1"
    )
    zero = tests["A Zero Poll Is Refused"]
    assert zero.status == "FAIL"
    assert zero.message == "Wait Until Tribe Converged: poll= must be > 0 seconds, got 0"


@pytest.mark.slow
def test_without_overrides_the_message_names_the_table_entry_and_file(
    run_robot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = _table(tmp_path, 1.5)
    monkeypatch.setenv("TRIBES_QA_TIMEOUTS", str(table))
    result = run_robot(
        SUITE, name="table", test=["One Node Is Up", "A Wait Without Overrides Uses The Table"]
    )
    tests = {test.name: test for test in result.suite.all_tests}
    assert tests["One Node Is Up"].status == "PASS", tests["One Node Is Up"].message
    waited = tests["A Wait Without Overrides Uses The Table"]
    assert waited.status == "FAIL"
    assert (
        f"timeout 1.5 s from membership_converged (sim) of {table}, "
        f"poll 0.1 s from poll_interval (sim) of {table}"
    ) in waited.message, waited.message


# ----------------------------------------------------------------------------- the resolution


def _default_table() -> TimeoutTable:
    return TimeoutTable(load_timeouts("sim", DEFAULT_TIMEOUTS_FILE), "sim", DEFAULT_TIMEOUTS_FILE)


def test_the_table_entry_is_used_when_the_call_gives_nothing() -> None:
    table = _default_table()
    timing = table.timing("node_active", keyword="K")
    assert (timing.timeout_s, timing.interval_s) == (
        table.values.node_active,
        table.values.poll_interval,
    )
    assert timing.origin == (
        f"timeout {table.values.node_active:g} s from node_active (sim) of variables/timeouts.yaml, "
        f"poll {table.values.poll_interval:g} s from poll_interval (sim) of variables/timeouts.yaml"
    )


def test_each_call_value_overrides_only_its_own_entry() -> None:
    table = _default_table()
    only_poll = table.timing("rollout", poll=timedelta(seconds=3), keyword="K")
    assert (only_poll.timeout_s, only_poll.interval_s) == (table.values.rollout, 3.0)
    assert only_poll.poll_note == "poll 3 s from poll="
    window = table.timing("stays_stale", timedelta(minutes=2), keyword="K", timeout_arg="duration")
    assert window.timeout_s == 120.0
    assert window.timeout_note == "duration 120 s from duration="
    assert table.timing("rollout", timedelta(0), keyword="K").timeout_s == 0.0


@pytest.mark.parametrize(
    ("timeout", "poll", "message"),
    [
        (timedelta(seconds=-1), None, "K: timeout= must be >= 0 seconds, got -1"),
        (None, timedelta(0), "K: poll= must be > 0 seconds, got 0"),
        (None, timedelta(seconds=-2), "K: poll= must be > 0 seconds, got -2"),
    ],
)
def test_impossible_values_name_the_keyword_and_argument(
    timeout: timedelta | None, poll: timedelta | None, message: str
) -> None:
    with pytest.raises(TribesFailure) as caught:
        _default_table().timing("rollout", timeout, poll, keyword="K")
    assert str(caught.value) == message
