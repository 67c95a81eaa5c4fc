"""The production guard in Robot, on a real-kind target (``variables/sim-as-real.yaml``: the real
strategy driving a simulated fleet that starts empty): ``${ALLOW_DESTRUCTIVE}`` read with Robot's
truth rules, refusals that name the keyword and the variable, read-only keywords unaffected,
nothing provisioned when refused; with the variable true the same keyword provisions."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.keywords.conftest import SIM_AS_REAL_VARIABLES, RunRobot, put_venv_on_path

pytestmark = pytest.mark.req("GUARD-1")

SUITE = """
*** Settings ***
Library           tribesqa.library.TribesLibrary
Suite Setup       Open Target
Suite Teardown    Close Target

*** Test Cases ***
Provision Init Node
    Provision Init Node    hetzner

Ensure Roster Nodes Exist
    Ensure Roster Nodes Exist

Nodes For Admin API Checks
    Nodes For Admin API Checks    2

Partition Node From Peers
    Partition Node From Peers    hetzner-1

Call Management Method
    Call Management Method    hetzner-1    sync.resync

Destroy All Nodes
    Destroy All Nodes

Read Only Keywords Still Run
    Get Legion State Snapshot
    Legion Node List Should Be Empty
    Heal All Partitions
    Registered Heals Should Be Empty
"""

REFUSED = {
    "Provision Init Node": "provision an init node on hetzner",
    "Ensure Roster Nodes Exist": "provision the missing roster node(s) hetzner-1, scaleway-1, ovh-1",
    "Nodes For Admin API Checks": "provision 2 node(s) to probe",
    "Partition Node From Peers": "partition hetzner-1 from its peers",
    "Call Management Method": "call sync.resync on hetzner-1",
    "Destroy All Nodes": "destroy every node Legion lists",
}

ALLOWED_SUITE = """
*** Settings ***
Library           tribesqa.library.TribesLibrary
Suite Setup       Open Target
Suite Teardown    Close Target

*** Test Cases ***
A Destructive Keyword Acts When Allowed
    ${init}=    Provision Init Node    hetzner
    ${names}=    Get Legion Node Names
    Should Be Equal    ${names}    ${{["${init.name}"]}}
"""


def _target(tmp_path: Path, fleets: Path, allow: Any) -> Path:
    """sim-as-real with its fleets under ``fleets``; ALLOW_DESTRUCTIVE as given (None: absent)."""
    data = yaml.safe_load(
        SIM_AS_REAL_VARIABLES.read_text().replace("{tmp}/tribes-qa-sim-as-real", str(fleets))
    )
    data.pop("ALLOW_DESTRUCTIVE")
    if allow is not None:
        data["ALLOW_DESTRUCTIVE"] = allow
    path = tmp_path / "real-kind.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def fleets() -> Path:
    # Short: the simulator's Unix sockets live in the fleet directory (108-byte path limit).
    return Path(tempfile.mkdtemp(prefix="tq-guard-"))


@pytest.mark.parametrize(
    ("allow", "shown"),
    [(None, "not set"), (False, "False"), ("no", "'no'"), ("0", "'0'")],
)
def test_destructive_keywords_are_refused_on_a_real_target(
    run_robot: RunRobot,
    tmp_path: Path,
    fleets: Path,
    monkeypatch: pytest.MonkeyPatch,
    allow: Any,
    shown: str,
) -> None:
    put_venv_on_path(monkeypatch)
    result = run_robot(SUITE, variablefile=_target(tmp_path, fleets, allow), name="refused")
    tests = {test.name: test for test in result.suite.tests}
    for name, act in REFUSED.items():
        test = tests[name]
        assert test.status == "FAIL", (name, test.message)
        assert test.message == (
            f"{name} refused: it would {act} on the real target simulator-via-real-strategy, "
            f"and ALLOW_DESTRUCTIVE is {shown}. Destructive acts on a real fleet need "
            "ALLOW_DESTRUCTIVE: true (in the target file, --variable ALLOW_DESTRUCTIVE:true, "
            "or tribes-qa run --allow-destructive)"
        )
    read_only = tests["Read Only Keywords Still Run"]
    # ... and nothing was provisioned: Legion lists no node.
    assert read_only.status == "PASS", read_only.message


@pytest.mark.parametrize("allow", [True, "yes", "1"])
def test_a_destructive_keyword_acts_on_a_real_target_when_allowed(
    run_robot: RunRobot, tmp_path: Path, fleets: Path, monkeypatch: pytest.MonkeyPatch, allow: Any
) -> None:
    put_venv_on_path(monkeypatch)
    result = run_robot(ALLOWED_SUITE, variablefile=_target(tmp_path, fleets, allow), name="allowed")
    test = result.suite.tests[0]
    assert test.status == "PASS", test.message


def test_the_command_line_variable_outranks_the_target_file(
    run_robot: RunRobot, tmp_path: Path, fleets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``tribes-qa run --allow-destructive`` passes wins over the file's false."""
    put_venv_on_path(monkeypatch)
    result = run_robot(
        ALLOWED_SUITE,
        variablefile=_target(tmp_path, fleets, False),
        name="outranks",
        variable=["ALLOW_DESTRUCTIVE:true"],
    )
    assert result.suite.tests[0].status == "PASS", result.suite.tests[0].message
