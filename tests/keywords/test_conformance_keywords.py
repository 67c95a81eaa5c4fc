"""The conformance keywords (ContractKeywords, DecommissionedKeywords, Legion snapshot checks)
against the simulator: they pass on a healthy fleet, and each fails with a readable message
naming the node and the property when a simulator fault breaks what it checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.keywords.conftest import SIM_VARIABLES, RunRobot, wait_failure_report

# Waits meant to fail give up soon; the "stays" window is short but spans several polls.
TIMEOUTS = {
    "TIMEOUTS": {
        "sim": {
            "poll_interval": 0.1,
            "management_call": 10,
            "node_ready": 20,
            "node_active": 15,
            "membership_converged": 2,
            "rollout": 30,
            "plugin_state_converged": 15,
            "case_visible": 15,
            "stays_stale": 1,
            "legion_operation": 120,
            "ssh_command": 20,
        }
    }
}

SETTINGS = """
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
"""

HEALTHY = (
    SETTINGS
    + """
*** Test Cases ***
Contract Shapes And Health
    ${health}=    Health Endpoint Should Answer Ok    hetzner-1
    Should Be Equal    ${health.status}    ok
    ${sync}=    Management Method Should Answer In Contract Shape    hetzner-1    sync.status
    Should Be Equal    ${sync.mode.value}    live
    ${job}=    Management Method Should Answer In Contract Shape    hetzner-1    sync.resync    ${{{"full": True}}}
    Should Start With    ${job.job_id}    resync-
    Run Keyword And Expect Error
    ...    node hetzner-1 / cluster.explode: the contract has no result model for management method 'cluster.explode', so its shape cannot be checked (known: *
    ...    Management Method Should Answer In Contract Shape    hetzner-1    cluster.explode

Refusals Pass With Their Status And Fail Readably Otherwise
    ${message}=    Management Call Should Be Refused    hetzner-1    rollout.status    unknown-job
    ...    params=${{{"job_id": "job-that-never-was"}}}
    Should Contain    ${message}    job-that-never-was
    Management Body Should Be Refused    hetzner-1    not json    invalid-payload
    Management Body Should Be Refused    hetzner-1    {"method": "node.info", "params": 3}    invalid-params
    Run Keyword And Expect Error
    ...    node hetzner-1 / node.info succeeded but should have been refused with HTTP 400 unknown-method: got HTTP 200 ok*
    ...    Management Call Should Be Refused    hetzner-1    node.info    unknown-method
    Run Keyword And Expect Error
    ...    node hetzner-1 / rollout.status: expected HTTP 409 unknown-plan, got HTTP 409 unknown-job: *
    ...    Management Call Should Be Refused    hetzner-1    rollout.status    unknown-plan
    ...    params=${{{"job_id": "job-that-never-was"}}}
    Run Keyword And Expect Error
    ...    node hetzner-1 / node.info: 'no-such-code' is not a contract error code (known: *
    ...    Management Call Should Be Refused    hetzner-1    node.info    no-such-code

The Decommissioned Node's Own View
    Run Keyword And Expect Error
    ...    decommissioned node hetzner-1 not out of the cluster: node hetzner-1 is decommissioned but cluster_status.self_status is active; its own row in cluster_nodes.list is active; sync.status mode is live, not stopped; sync.status still lists 1 sync server(s): scaleway-1 * after * s [[]timeout 2 s from membership_converged *; * polls]
    ...    Decommissioned Node Should Report Itself Out Of The Cluster    hetzner-1
    Decommission Node    scaleway-1
    Decommissioned Node Should Report Itself Out Of The Cluster    scaleway-1
    ${before}=    Get Sync Status    scaleway-1
    Force Full Resync    hetzner-1
    Decommissioned Node Should Receive No New Writes    scaleway-1    ${before}

Legion's Snapshot
    Legion Snapshot Should Hold No Secret Material
    ${snapshot}=    Legion Snapshot Should Keep Membership Rows    hetzner-1:active    scaleway-1:decommissioned
    Length Should Be    ${snapshot.cluster_membership}    2
    Run Keyword And Expect Error
    ...    Legion's snapshot lost membership: clusterMembership row of scaleway-1 is decommissioned, expected syncing (it holds hetzner-1:active, scaleway-1:decommissioned)
    ...    Legion Snapshot Should Keep Membership Rows    scaleway-1:syncing
    Run Keyword And Expect Error    expected row 'scaleway-1:gone': give node:status with status one of syncing, active, decommissioned
    ...    Legion Snapshot Should Keep Membership Rows    scaleway-1:gone
"""
)

FAULTY = (
    SETTINGS
    + """
*** Test Cases ***
An Unknown Method Answered 500
    Management Call Should Be Refused    hetzner-1    cluster.explode    unknown-method

A Decommissioned Node That Says It Is Active
    Decommission Node    scaleway-1
    Decommissioned Node Should Report Itself Out Of The Cluster    scaleway-1

A Decommissioned Node That Still Receives
    ${before}=    Get Sync Status    scaleway-1
    Force Full Resync    hetzner-1
    Decommissioned Node Should Receive No New Writes    scaleway-1    ${before}

A Snapshot That Leaks
    Legion Snapshot Should Hold No Secret Material

A Leaking Snapshot Is Refused By The Model Too
    Legion Snapshot Should Keep Membership Rows    hetzner-1:active    scaleway-1:decommissioned
"""
)

FAULTS = [
    "unknown-method-500",
    "decommissioned-reports-active",
    "decommissioned-still-receives",
    "snapshot-leaks-secret",
]


@pytest.fixture
def timeouts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "timeouts.yaml"
    path.write_text(yaml.safe_dump(TIMEOUTS))
    monkeypatch.setenv("TRIBES_QA_TIMEOUTS", str(path))
    return path


def _failures(result: Any) -> dict[str, str]:
    return {t.name: t.message for t in result.suite.tests if t.status != "PASS"}


def test_conformance_keywords_pass_on_a_healthy_fleet(run_robot: RunRobot, timeouts: Path) -> None:
    result = run_robot(HEALTHY, name="conformance")
    assert _failures(result) == {}, result.console[-3000:]
    assert "Traceback" not in (result.output_dir / "log.html").read_text()


def test_conformance_keywords_name_the_node_and_the_property_under_faults(
    run_robot: RunRobot, timeouts: Path, tmp_path: Path
) -> None:
    variables = yaml.safe_load(SIM_VARIABLES.read_text())
    variables["TARGET"]["sim"]["faults"] = FAULTS
    faulty = tmp_path / "faulty.yaml"
    faulty.write_text(yaml.safe_dump(variables))
    result = run_robot(FAULTY, name="conformance_faults", variablefile=faulty)
    failures = _failures(result)
    assert len(failures) == 5, failures
    assert failures["An Unknown Method Answered 500"] == (
        "node hetzner-1 / cluster.explode: expected HTTP 400 unknown-method, got HTTP 500 "
        "with a body that is not a JSON envelope: '500 Internal Server Error'"
    )
    assert failures["A Decommissioned Node That Says It Is Active"].startswith(
        "decommissioned node scaleway-1 not out of the cluster: node scaleway-1 is "
        "decommissioned but cluster_status.self_status is active after "
    )
    assert failures["A Decommissioned Node That Still Receives"].startswith(
        "decommissioned node scaleway-1 not cut off from new writes: node scaleway-1 is "
        "decommissioned but received "
    )
    assert "from hetzner-1" in failures["A Decommissioned Node That Still Receives"]
    # Both fail through the one wait: the report shows the node's view, what is wrong in it
    # (expected vs actual) and links the failure snapshot, like every other wait's.
    tests = {t.name: t for t in result.suite.tests}
    own_view = wait_failure_report(
        result, tests["A Decommissioned Node That Says It Is Active"], "scaleway-1"
    )
    assert ">self_status<" in own_view and ">decommissioned<" in own_view and ">active<" in own_view
    received = wait_failure_report(
        result, tests["A Decommissioned Node That Still Receives"], "scaleway-1"
    )
    assert ">version_vector<" in received and ">hetzner-1<" in received
    assert failures["A Snapshot That Leaks"] == (
        "Legion's snapshot is not sanitized: secret material in the record of hetzner-1: "
        "nodes[0].ssh.private_key (and 1 more: record of scaleway-1: nodes[1].ssh.private_key)"
    )
    # Parsed through the contract model, the same leak is refused, the value never shown.
    assert failures["A Leaking Snapshot Is Refused By The Model Too"] == (
        "Legion (simulator) / snapshot returned a payload that does not match LegionSnapshot: "
        "nodes[0].ssh.private_key = <redacted> (snapshot is not sanitized: looks like secret "
        "material (also at nodes[1].ssh.private_key))"
    )
    for name in ("output.xml", "log.html", "report.html"):
        text = (result.output_dir / name).read_text()
        assert "PRIVATE KEY" not in text, f"the leaked key reached {name}"
        assert "Traceback" not in text
