"""`Node Should Be Cut From The Sync Mesh` against the simulator: it passes once a partition took
effect, and when ``sync.status`` hides the partition (fault ``stale-connected-status``) it fails
through the one wait, naming each node still linked and the server, with the table, the
mismatches and the failure snapshot linked, like every other wait."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.keywords.conftest import SIM_VARIABLES, RunRobot, wait_failure_report

SUITE = """
*** Settings ***
Library           tribesqa.library.TribesLibrary
Suite Setup       Two Nodes
Suite Teardown    Close Target

*** Keywords ***
Two Nodes
    Open Target
    Provision Init Node    hetzner
    Plan Join Nodes    scaleway    1
    Materialize Planned Nodes
    Wait Until Node Is Active Everywhere    scaleway-1

*** Test Cases ***
A Partitioned Node Is Cut From The Mesh
    Partition Node From Peers    scaleway-1
    Node Should Be Cut From The Sync Mesh    scaleway-1    timeout=3 s    poll=0.2 s
"""


def _failures(result: Any) -> dict[str, str]:
    return {t.name: t.message for t in result.suite.tests if t.status != "PASS"}


@pytest.mark.req("GATE-7")
def test_a_partition_that_took_effect_passes(run_robot: RunRobot) -> None:
    result = run_robot(SUITE, name="cut")
    assert _failures(result) == {}, result.console[-3000:]
    messages = [
        m.message
        for m in result.suite.tests[0].body[1].body
        if getattr(m, "type", None) == "MESSAGE"
    ]
    assert any(
        m.startswith("node scaleway-1 cut from the sync mesh: 2 of 2 nodes see ") for m in messages
    ), messages


@pytest.mark.req("GATE-7")
def test_a_hidden_partition_fails_with_the_wait_report(run_robot: RunRobot, tmp_path: Path) -> None:
    variables = yaml.safe_load(SIM_VARIABLES.read_text())
    variables["TARGET"]["sim"]["faults"] = ["stale-connected-status"]
    faulty = tmp_path / "faulty.yaml"
    faulty.write_text(yaml.safe_dump(variables))
    result = run_robot(SUITE, name="cut_faulty", variablefile=faulty)
    message = _failures(result)["A Partitioned Node Is Cut From The Mesh"]
    assert re.fullmatch(
        r"node scaleway-1 not cut from the sync mesh \(the partition did not take effect\): "
        r"scaleway-1 still reports its sync server\(s\) hetzner-1 \(http://127\.0\.0\.1:\d+\) "
        r"connected; hetzner-1 still reports scaleway-1 as a connected sync server: scaleway-1 "
        r"\(http://127\.0\.0\.1:\d+\) after \d+\.\d s; 0 of 2 nodes see scaleway-1 cut off "
        r"\[timeout 3 s from timeout=, poll 0\.2 s from poll=; \d+ polls\]",
        message,
    ), message
    report = wait_failure_report(result, result.suite.tests[0], "scaleway-1")
    assert "link with scaleway-1" in report and "connected: hetzner-1" in report
