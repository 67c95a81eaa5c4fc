"""The destructive guard of the fleet gate: destructive checks run only with ALLOW_DESTRUCTIVE."""

from __future__ import annotations

import pytest

from tests.keywords.conftest import RunRobot

SUITE = """
*** Settings ***
Library    tribesqa.library.TribesLibrary

*** Test Cases ***
Guarded
    Skip Unless Destructive Checks Are Allowed    {allowed}
    Log    destructive step ran
"""


@pytest.mark.req("GATE-5")
@pytest.mark.parametrize("allowed", ["${FALSE}", "false", "no", "0"])
def test_destructive_checks_are_skipped_unless_allowed(run_robot: RunRobot, allowed: str) -> None:
    result = run_robot(SUITE.format(allowed=allowed), name="guard-off")
    test = result.suite.tests[0]
    assert test.status == "SKIP", test.message
    assert "ALLOW_DESTRUCTIVE is off" in test.message
    assert test.body[1].status == "NOT RUN", "the step after the guard ran"


@pytest.mark.req("GATE-5")
@pytest.mark.parametrize("allowed", ["${TRUE}", "true", "yes", "1"])
def test_destructive_checks_run_when_allowed(run_robot: RunRobot, allowed: str) -> None:
    result = run_robot(SUITE.format(allowed=allowed), name="guard-on")
    test = result.suite.tests[0]
    assert test.status == "PASS", test.message
    assert test.body[1].status == "PASS"
