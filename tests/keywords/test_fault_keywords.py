"""FaultKeywords against the simulator, through the simulator strategy (nemesis over Legion HTTP)
and the real strategy (command templates over SSH and locally, ``variables/sim-as-real.yaml``).

Each fault is observed, not just invoked: a partition disconnects both sides and holds writes
back, a crash makes the node unreachable, an outage holds the node's writes; and the heals run
at the end of a test that failed on purpose.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.keywords.conftest import (
    ROOT,
    SIM_AS_REAL_VARIABLES,
    SIM_VARIABLES,
    put_venv_on_path,
)
from tribesqa.clients.ssh_client import CommandResult, SshEndpointInfo
from tribesqa.config import FAULT_OPERATIONS, TargetKind, fill_template, validate_target_file
from tribesqa.targets.real import CommandNemesis

SUITE = """
*** Settings ***
Library           tribesqa.library.TribesLibrary
Suite Setup       Open Target
Suite Teardown    Close Target

*** Variables ***
${A}    hetzner-1
${B}    scaleway-1

*** Test Cases ***
A Two Node Cluster With The Plugin
    Provision Init Node    hetzner
    Plan Join Nodes    scaleway    1
    Materialize Planned Nodes
    Roll Out Plugin To Nodes    supertest    e042f3265db7a40d4d558132800238c6d466e8dd

A Partition Cuts Both Directions Until Healed
    ${run}=    New Run Id
    Partition Node From Peers    ${B}
    ${heals}=    Get Registered Heals
    Should Be Equal    ${heals}    ${{["heal partition of scaleway-1 from every other node"]}}
    ${on_b}=    Get Sync Status    ${B}
    Should Not Be True    ${on_b.servers[0].connected}
    ${on_a}=    Get Sync Status    ${A}
    Should Not Be True    ${on_a.servers[0].connected}
    Create Case    ${A}    ${run}    written on A while cut off
    Create Case    ${B}    ${run}    written on B while cut off
    Sleep    1s
    Plugin State Should Hold    ${B}    ${run}    cases=1
    Plugin State Should Hold    ${A}    ${run}    cases=1
    Heal All Partitions
    Registered Heals Should Be Empty
    Wait Until Keyword Succeeds    20s    0.2s    Plugin State Should Hold    ${B}    ${run}    cases=2
    Wait Until Keyword Succeeds    20s    0.2s    Plugin State Should Hold    ${A}    ${run}    cases=2

A Publish Outage Left In Place Is Healed When The Failing Test Ends
    ${run}=    New Run Id
    VAR    ${OUTAGE_RUN}    ${run}    scope=SUITE
    Start Publish Outage    ${B}
    Create Case    ${B}    ${run}    held by the outage
    Sleep    1s
    Plugin State Should Hold    ${A}    ${run}    cases=0
    Fail    deliberate failure with the outage still on

The Outage Heal Ran And The Held Write Arrived
    Registered Heals Should Be Empty
    Wait Until Keyword Succeeds    20s    0.2s    Plugin State Should Hold    ${A}    ${OUTAGE_RUN}    cases=1

Stop Publish Outage Retires Its Heal
    Start Publish Outage    ${B}
    Stop Publish Outage    ${B}
    Registered Heals Should Be Empty

A Crashed Node Is Restarted When The Failing Test Ends
    Crash Node    ${B}
    Run Keyword And Expect Error    *unreachable*    Get Cluster Status    ${B}
    Fail    deliberate failure with the node down

The Crashed Node Is Back And Active
    Registered Heals Should Be Empty
    Wait Until Keyword Succeeds    20s    0.2s    Node Sees Itself Active    ${B}

Restart Node Brings A Crashed Node Back And Retires The Heal
    Crash Node    ${B}
    Restart Node    ${B}
    Registered Heals Should Be Empty
    ${diagnostics}=    Get Node Diagnostics    ${B}
    Should Be True    ${diagnostics.local_control}[ready]
    Restart Node    ${B}
    Wait Until Keyword Succeeds    20s    0.2s    Node Sees Itself Active    ${B}

*** Keywords ***
Node Sees Itself Active
    [Arguments]    ${node}
    ${status}=    Get Cluster Status    ${node}
    Should Be Equal    ${status.self_status}    active
"""

EXPECTED = {
    "A Two Node Cluster With The Plugin": "PASS",
    "A Partition Cuts Both Directions Until Healed": "PASS",
    "A Publish Outage Left In Place Is Healed When The Failing Test Ends": "FAIL",
    "The Outage Heal Ran And The Held Write Arrived": "PASS",
    "Stop Publish Outage Retires Its Heal": "PASS",
    "A Crashed Node Is Restarted When The Failing Test Ends": "FAIL",
    "The Crashed Node Is Back And Active": "PASS",
    "Restart Node Brings A Crashed Node Back And Retires The Heal": "PASS",
}


def _check(result: Any) -> None:
    got = {test.name: test.status for test in result.suite.all_tests}
    messages = {test.name: test.message for test in result.suite.all_tests}
    wrong = {
        name: (got.get(name), messages.get(name))
        for name in EXPECTED
        if got.get(name) != EXPECTED[name]
    }
    assert not wrong, wrong
    for name, status in EXPECTED.items():
        if status == "FAIL":
            assert messages[name].startswith("deliberate failure"), messages[name]


@pytest.mark.slow
def test_fault_keywords_through_the_simulator_nemesis(run_robot: Any) -> None:
    _check(run_robot(SUITE, variablefile=SIM_VARIABLES, name="faults-sim"))


@pytest.mark.slow
def test_fault_keywords_through_command_templates(
    run_robot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_venv_on_path(monkeypatch)
    _check(run_robot(SUITE, variablefile=SIM_AS_REAL_VARIABLES, name="faults-real"))


# -- the real-fleet example: valid, and its fault templates run as a shell runs them ---------------

FAKE_NFT = """#!/bin/sh
echo "nft $*" >> "$NFT_LOG"
case "$1 $2" in
  "add table") touch "$NFT_STATE" ;;
  "list table") test -e "$NFT_STATE" ;;
  "delete table") test -e "$NFT_STATE" && rm "$NFT_STATE" ;;
esac
"""


def test_the_fleet_example_is_a_valid_real_target() -> None:
    parsed = validate_target_file(ROOT / "variables" / "fleet.example.yaml")
    target = parsed.TARGET
    assert target is not None and target.real is not None and target.admin_key is not None
    assert target.kind is TargetKind.REAL
    assert target.timeouts_profile == "real"
    assert target.plugin_transport.value == "ssh"
    assert target.admin_key.env == "TRIBES_ADMIN_KEY" and target.admin_key.file is None
    assert target.ssh.key_env and not target.ssh.key_file
    assert target.real.legion.command == ["legion", "--json"]
    # recover is optional (default: restart); a real node's sshd survives a crash.
    assert set(target.real.faults) == FAULT_OPERATIONS - {"recover"}
    assert target.real.provision_missing_roster_nodes is False
    assert parsed.ALLOW_DESTRUCTIVE is False and parsed.ITERATIONS
    assert parsed.ROSTER and all(entry.role and entry.notes for entry in parsed.ROSTER)


def test_the_fleet_example_partition_and_heal_templates_run(tmp_path: Path) -> None:
    faults = validate_target_file(ROOT / "variables" / "fleet.example.yaml").TARGET.real.faults  # type: ignore[union-attr]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nft").write_text(FAKE_NFT)
    (bin_dir / "nft").chmod(0o755)
    log, state = tmp_path / "nft.log", tmp_path / "nft.state"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin",
        "NFT_LOG": str(log),
        "NFT_STATE": str(state),
    }

    def run(operation: str, **values: str) -> None:
        command = fill_template(faults[operation].command, node="n1", **values)
        done = subprocess.run(
            ["/bin/sh", "-c", command], env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, (operation, done.stderr)

    run("heal")  # nothing to heal: must still succeed
    run("partition", peers="n2,n3", peer_addresses="10.0.0.2:7000 10.0.0.3:7001")
    assert state.exists()
    run("heal")
    assert not state.exists()
    lines = log.read_text().splitlines()
    assert "nft add rule inet tribes_nemesis output ip daddr 10.0.0.2 tcp dport 7000 drop" in lines
    assert "nft add rule inet tribes_nemesis input ip saddr 10.0.0.3 drop" in lines
    assert lines.count("nft delete table inet tribes_nemesis") == 1


class RecordingSessions:
    def __init__(self) -> None:
        self.ran: list[tuple[str, str]] = []

    def run(self, node: str, endpoint: Any, command: str, **_: Any) -> CommandResult:
        self.ran.append((node, command))
        return CommandResult(node, "fault", "", "", 0)


def test_command_nemesis_heals_over_ssh_on_every_node_and_partitions_by_address() -> None:
    settings = validate_target_file(ROOT / "variables" / "fleet.example.yaml").TARGET.real  # type: ignore[union-attr]
    assert settings is not None
    sessions = RecordingSessions()
    nemesis = CommandNemesis(
        settings,
        {},
        lambda: sessions,  # type: ignore[arg-type,return-value]
        lambda node: SshEndpointInfo("127.0.0.1", 22, "root"),
        lambda: ["n1", "n2", "n3"],
        lambda node: {"n2": "10.0.0.2:7000", "n3": "10.0.0.3:7001"}[node],
        5,
    )
    nemesis.partition("n1", [])
    assert sessions.ran[0][0] == "n1"
    assert "for peer in 10.0.0.2:7000 10.0.0.3:7001; do" in sessions.ran[0][1]
    sessions.ran.clear()
    nemesis.heal_all()
    assert [node for node, _ in sessions.ran] == ["n1", "n2", "n3"]
    sessions.ran.clear()
    nemesis.crash("n2")
    nemesis.restart("n2")
    assert sessions.ran[0][0] == "n2" and "herd status tribes" in sessions.ran[0][1]
    assert sessions.ran[1] == ("n2", "herd restart tribes")
    sessions.ran.clear()
    nemesis.recover("n2")  # no recover template: the restart template
    assert sessions.ran == [("n2", "herd restart tribes")]
