"""Legion and node-management keywords against the simulator, through a real Robot run."""

from __future__ import annotations

from pathlib import Path

from tests.keywords.conftest import ROOT, RunRobot

# Another team's node on the same fleet: joined through Legion, not through this suite.
HELPERS = """
from robot.libraries.BuiltIn import BuiltIn


def join_a_node_behind_the_suites_back(provider):
    ctx = BuiltIn().get_library_instance("tribesqa.library.TribesLibrary").ctx
    legion = ctx.require_target().legion
    planned = legion.plan_join(provider, 1)
    legion.materialize()
    return planned[0].name
"""

SUITE = """
*** Settings ***
Library           tribesqa.library.TribesLibrary
Library           ${CURDIR}/legion_helpers.py
Resource          {ROOT}/resources/cluster.resource
Suite Setup       Open Target
Suite Teardown    Close Target

*** Variables ***
${COMMIT}    e042f3265db7a40d4d558132800238c6d466e8dd

*** Test Cases ***
Roster Is Read From The Variables File
    ${names}=    Get Roster Node Names
    Should Be Equal    ${names}    ${{["hetzner-1", "scaleway-1", "ovh-1"]}}
    ${roster}=    Get Roster
    Should Be Equal    ${roster[0].role}    init

Legion Records And Node Views Agree
    ${init}=    Provision Init Node    Hetzner
    ${record}=    Get Legion Node    ${init.name}
    Should Be Equal    ${record.provider.value}    hetzner
    ${names}=    Get Legion Node Names
    Should Be Equal    ${names}    ${{["hetzner-1"]}}
    ${endpoint}=    Get Sync Endpoint Of    hetzner-1
    ${view}=    Get Cluster Nodes    hetzner-1
    Should Be Equal    ${view.nodes[0].transport_address}    ${endpoint}
    ${tribe}=    Get Tribe Status    hetzner-1
    Should Be Equal As Integers    ${tribe.version}    1
    ${plugins}=    Call Management Method    hetzner-1    plugins.list
    Should Be Empty    ${plugins}[plugins]

Rollout And Rollback Step By Step
    ${preview}=    Preview Rollout    hetzner-1    supertest    ${COMMIT}
    Should Be True    ${preview.substitutes.available}
    ${job_id}=    Start Rollout    hetzner-1    ${preview.plan_id}
    ${job}=    Get Rollout Job    hetzner-1    ${job_id}
    Should Be Equal    ${job.kind.value}    rollout
    ${done}=    Wait For Rollout    hetzner-1    ${job_id}
    Should Be Equal    ${done.state.value}    succeeded
    ${back}=    Roll Back To Generation    hetzner-1    1
    Wait For Rollout    hetzner-1    ${back}
    Generation Should Be Converged    hetzner-1    1

Refusals Are Reported With Their Contract Codes
    ${message}=    Management Call Should Be Refused    hetzner-1    rollout.start    unknown-plan
    ...    params=${{{"plan_id": "plan-nope"}}}
    Should Contain    ${message}    plan-nope
    ${preview}=    Preview Rollout    hetzner-1    not-a-plugin    abc1234
    Management Call Should Be Refused    hetzner-1    rollout.start    substitutes-missing
    ...    params=${{{"plan_id": $preview.plan_id}}}
    Run Keyword And Expect Error    *node hetzner-1 / cluster_status succeeded but should have been refused*
    ...    Management Call Should Be Refused    hetzner-1    cluster_status    unsafe-operation
    # The pure preview check names the node, the plugin and what the preview lacks.
    Run Keyword And Expect Error
    ...    node hetzner-1: rollout preview of not-a-plugin@abc1234: *substitutes missing*
    ...    Preview Should Install Plugin    hetzner-1    ${preview}    not-a-plugin    abc1234

A Changed Transport Address Is Named
    ${address}=    Get Transport Address Of Node    hetzner-1
    Should Start With    ${address}    http://127.0.0.1:
    Transport Address Of Node Should Be    hetzner-1    ${address}
    Run Keyword And Expect Error
    ...    node hetzner-1: transport address changed across restart: http://127.0.0.1:1 -> ${address}
    ...    Transport Address Of Node Should Be    hetzner-1    http://127.0.0.1:1

Bad Input Fails With A Clear Message
    Run Keyword And Expect Error    node nope is not known to Legion*    Get Cluster Status    nope
    Run Keyword And Expect Error    *'count' got value 'many'*integer*    Plan Join Nodes    ovh    many
    Run Keyword And Expect Error    *'provider' got value 'azure'*Available: 'HETZNER', 'OVH' and 'SCALEWAY'*    Plan Join Nodes    azure    1

A Node The Suite Did Not Provision Is Never Decommissioned
    ${foreign}=    Join A Node Behind The Suites Back    ovh
    Run Keyword And Expect Error
    ...    will not decommission ${foreign}: not provisioned by this suite (it provisioned hetzner-1)*
    ...    Decommission Every Node Except    hetzner-1
    Wait Until Node Is Active Everywhere    ${foreign}

Destroying Everything Empties Legion
    Destroy All Nodes
    Legion Node List Should Be Empty
""".replace("{ROOT}", str(ROOT))


def test_legion_and_node_keywords(run_robot: RunRobot, tmp_path: Path) -> None:
    (tmp_path / "legion_helpers.py").write_text(HELPERS)
    result = run_robot(SUITE, name="legion_node")
    failures = {t.name: t.message for t in result.suite.all_tests if t.status != "PASS"}
    assert failures == {}, failures
    assert result.statistics.total.passed == 8
    log = (result.output_dir / "log.html").read_text()
    assert "Traceback" not in log
