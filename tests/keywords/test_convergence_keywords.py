"""ConvergenceKeywords end to end: Robot suites against private simulated fleets.

Every keyword runs at least once passing (healthy cluster) and, where the simulator can break
the property, once failing: a partitioned node forced through a resync (diverged membership
and plugin state), and simulator faults (wrong sync endpoints, deleted archive rows, stale
activation times). Failure messages and the HTML diff table are read back from output.xml
and log.html. Timeouts are shortened through ``TRIBES_QA_TIMEOUTS``.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.keywords.conftest import html_messages

SIM_VARIABLES = Path(__file__).resolve().parents[2] / "variables" / "sim.yaml"

SHORT_TIMEOUTS = {
    "TIMEOUTS": {
        "sim": {
            "poll_interval": 0.1,
            "management_call": 10,
            "node_ready": 20,
            "node_active": 1.5,
            "membership_converged": 1.5,
            "rollout": 30,
            "plugin_state_converged": 1.5,
            "case_visible": 1.5,
            "stays_stale": 0.5,
            "legion_operation": 120,
            "ssh_command": 20,
        }
    }
}

HELPERS = '''
"""Test-only helpers: plugin writes and a partition, straight through the library's context."""
from robot.libraries.BuiltIn import BuiltIn


def _ctx():
    return BuiltIn().get_library_instance("tribesqa.library.TribesLibrary").ctx


def conv_create_case(node, run_id, name):
    status, body = _ctx().plugins().request(node, "POST", "cases", {"run_id": run_id, "name": name})
    assert status == 201, (status, body)
    return body["id"]


def conv_increment_case(node, case_id, by=1):
    status, body = _ctx().plugins().request(node, "POST", f"cases/{case_id}/increment", {"by": int(by)})
    assert status == 200, (status, body)


def conv_create_event(node, run_id, case_id):
    body = {"run_id": run_id, "case_id": case_id, "kind": "note", "payload": {}}
    status, answer = _ctx().plugins().request(node, "POST", "events", body)
    assert status == 201, (status, answer)
    return answer["id"]


def conv_partition(node):
    _ctx().require_target().nemesis.partition(node, [])


def conv_heal():
    _ctx().require_target().nemesis.heal_all()
'''

SETTINGS = """*** Settings ***
Library    tribesqa.library.TribesLibrary
Library    ${CURDIR}/conv_helpers.py
Suite Setup    Build Cluster
Suite Teardown    Close Target

*** Keywords ***
Build Cluster
    Open Target
    Provision Init Node    hetzner
    Plan Join Nodes    scaleway    1
    Plan Join Nodes    ovh    1
    Materialize Planned Nodes
"""


def _timeouts_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: dict[str, Any]) -> Path:
    path = tmp_path / "timeouts.yaml"
    path.write_text(yaml.safe_dump(table))
    (tmp_path / "conv_helpers.py").write_text(HELPERS)
    monkeypatch.setenv("TRIBES_QA_TIMEOUTS", str(path))
    return path


@pytest.fixture
def short_timeouts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Waits that are meant to fail give up after 1.5 s."""
    return _timeouts_table(tmp_path, monkeypatch, SHORT_TIMEOUTS)


@pytest.fixture
def roomy_timeouts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Waits that are meant to pass get room for a loaded machine (they return when met)."""
    sim = {**SHORT_TIMEOUTS["TIMEOUTS"]["sim"]}
    for wait in ("node_active", "membership_converged", "plugin_state_converged", "case_visible"):
        sim[wait] = 15
    return _timeouts_table(tmp_path, monkeypatch, {"TIMEOUTS": {"sim": sim}})


def waited_s(message: str) -> float:
    """The ``after N.N s`` figure of a wait's failure message."""
    found = re.search(r" after (\d+\.\d) s", message)
    assert found, message
    return float(found.group(1))


def faulty_variables(tmp_path: Path, faults: list[str]) -> Path:
    data = yaml.safe_load(SIM_VARIABLES.read_text())
    data["TARGET"]["sim"]["faults"] = faults
    path = tmp_path / "faulty.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def by_name(result: Any) -> dict[str, Any]:
    return {test.name: test for test in result.suite.tests}


def log_html_strings(path: Path) -> list[str]:
    """The texts Robot embedded in log.html (decompressed)."""
    text = path.read_text(encoding="utf-8")
    chunks = re.findall(
        r'window\.output\["strings"\] = window\.output\["strings"\]\.concat\((\[.*?\])\);\n',
        text,
        re.S,
    )
    strings: list[str] = []
    for chunk in chunks:
        strings += json.loads(re.sub(r"\\x([0-9a-fA-F]{2})", r"\\u00\1", chunk))
    return [
        s[1:] if s.startswith("*") else zlib.decompress(base64.b64decode(s)).decode("utf-8")
        for s in strings
    ]


# ------------------------------------------------------------------------------- healthy


HEALTHY = (
    SETTINGS
    + r"""
*** Test Cases ***
Every Keyword Passes On A Healthy Cluster
    ${rows}=    Wait Until Cluster Converged
    Length Should Be    ${rows}    3
    &{expected}=    Create Dictionary    hetzner-1=active    scaleway-1=active    ovh-1=active
    Membership Should Match    ${expected}
    # A table written as text: Robot converts it (the argument is typed dict | list).
    Membership Should Match    {"hetzner-1": "active", "scaleway-1": "active", "ovh-1": "active"}
    Wait Until Cluster Converged    hetzner-1    ovh-1
    Wait Until Node Is Active Everywhere    ovh-1
    Cluster Status Should Be Healthy On Nodes
    Derived Sync Servers Should Match Membership
    Cluster Status Should Agree With Membership    hetzner-1    scaleway-1
    Wait Until Tribe Converged
    Sync Endpoints Should Match Transport Addresses
    Derived Sync Servers Should Match Membership
    Cluster Status Should Agree With Membership    hetzner-1    ovh-1    timeout=15 s    poll=0.2 s
    Roll Out Plugin To Nodes    supertest    abc1234
    ${case}=    Conv Create Case    hetzner-1    run-1    first
    Conv Increment Case    hetzner-1    ${case}    2
    ${event}=    Conv Create Event    scaleway-1    run-1    ${case}
    ${seen}=    Wait Until Case Is Visible On Node    ovh-1    run-1    ${case}    counter=2
    Should Be Equal As Integers    ${seen.counter}    2
    ${ev}=    Wait Until Event Is Visible On Node    hetzner-1    run-1    ${event}
    Should Be Equal    ${ev.case_id}    ${case}
    ${state}=    Wait Until Plugin State Converged    run-1    expected_cases=1    expected_events=1
    Length Should Be    ${state}[cases]    1
    Wait Until Plugin State Converged    run-1    hetzner-1    ovh-1
    Node Should Stay Stale For    ovh-1    run-1    case-never-written    duration=0.3
    ${before}=    Get Current Time UTC
    Decommission Node    ovh-1
    Node Should Be Archived As Decommissioned    ovh-1    since=${before}
    &{archived}=    Create Dictionary    status=decommissioned
    &{after}=    Create Dictionary    hetzner-1=active    scaleway-1=active    ovh-1=${archived}
    Wait Until Cluster Converged    expected=${after}
    ${before}=    Get Current Time UTC
    Reactivate Node    ovh-1
    Activation Should Be Fresh    ovh-1    ${before}
    Wait Until Cluster Converged    expected=${expected}
"""
)


def test_every_convergence_keyword_passes_on_a_healthy_cluster(
    run_robot: Any, roomy_timeouts: Path
) -> None:
    result = run_robot(HEALTHY, name="healthy")
    test = by_name(result)["Every Keyword Passes On A Healthy Cluster"]
    assert test.status == "PASS", test.message + result.console[-2000:]
    assert not list((result.output_dir / "artifacts").rglob("*.json")), "no failure, no capture"


# ------------------------------------------------------------------------------- diverged


DIVERGED = (
    SETTINGS
    + r"""    Roll Out Plugin To Nodes    supertest    abc1234
    Conv Partition    ovh-1
    Force Full Resync    ovh-1
    ${case}=    Conv Create Case    hetzner-1    run-9    written-while-split
    Set Suite Variable    ${CASE}    ${case}
    # Setup, not under test: the 1.5 s waits of this suite are for the checks meant to fail.
    Wait Until Keyword Succeeds    30 s    0.1 s
    ...    Wait Until Case Is Visible On Node    scaleway-1    run-9    ${case}

*** Test Cases ***
Membership Diverged
    Wait Until Cluster Converged

Node Not Active Everywhere
    Wait Until Node Is Active Everywhere    ovh-1

Cluster Not Healthy
    Cluster Status Should Be Healthy On Nodes

Expected Table Not Met
    &{expected}=    Create Dictionary    hetzner-1=active    scaleway-1=active    ovh-1=decommissioned
    Membership Should Match    ${expected}    hetzner-1    scaleway-1

Partitioned Node Stays Stale
    Node Should Stay Stale For    ovh-1    run-9    ${CASE}

Stale Check Catches A Visible Case
    Node Should Stay Stale For    scaleway-1    run-9    ${CASE}

Case Not Visible On Partitioned Node
    Wait Until Case Is Visible On Node    ovh-1    run-9    ${CASE}

Plugin State Diverged
    Wait Until Plugin State Converged    run-9

Decommissioned Member Is Terminal
    Decommission Node    ovh-1
    Wait Until Cluster Converged    hetzner-1    scaleway-1    ovh-1
"""
)


@pytest.mark.slow  # eight waits, most of them timing out (~13 s)
def test_a_diverged_cluster_fails_each_wait_with_a_message_and_a_marked_table(
    run_robot: Any, short_timeouts: Path
) -> None:
    result = run_robot(DIVERGED, name="diverged")
    tests = by_name(result)
    assert set(tests) >= {"Membership Diverged", "Plugin State Diverged"}, result.console[-3000:]
    statuses = {name: test.status for name, test in tests.items()}
    assert statuses == {
        "Membership Diverged": "FAIL",
        "Node Not Active Everywhere": "FAIL",
        "Cluster Not Healthy": "FAIL",
        "Expected Table Not Met": "FAIL",
        "Partitioned Node Stays Stale": "PASS",
        "Stale Check Catches A Visible Case": "FAIL",
        "Case Not Visible On Partitioned Node": "FAIL",
        "Plugin State Diverged": "FAIL",
        "Decommissioned Member Is Terminal": "FAIL",
    }, {n: t.message for n, t in tests.items()}

    membership = tests["Membership Diverged"].message
    assert membership.startswith(
        "membership not converged: node ovh-1 still syncing on ovh-1 after "
    )
    assert waited_s(membership) >= 1.5  # the final attempt is taken at the deadline
    assert "2 of 3 nodes agree" in membership
    assert "ovh-1 differs on ovh-1.status (syncing vs active)" in membership

    not_active = tests["Node Not Active Everywhere"].message
    assert not_active.startswith(
        "node ovh-1 not active everywhere: node ovh-1 still syncing on ovh-1 after "
    )
    assert waited_s(not_active) >= 1.5
    assert tests["Cluster Not Healthy"].message.startswith("cluster_status not healthy: ")
    assert "ovh-1 (syncing)" in tests["Cluster Not Healthy"].message
    expected = tests["Expected Table Not Met"].message
    assert expected.startswith("membership differs: expected table not met: ")
    assert "hetzner-1 sees ovh-1.status = active (expected decommissioned)" in expected
    assert " after " not in expected  # a one-look check does not claim to have waited

    stale = tests["Stale Check Catches A Visible Case"].message
    assert re.match(
        r"case case-\w+ appeared on scaleway-1 after \d+\.\d s \(expected it to stay", stale
    )
    invisible = tests["Case Not Visible On Partitioned Node"].message
    assert re.fullmatch(
        r"run run-9: case case-\w+ not visible on ovh-1 after \d+\.\d s "
        r"\[timeout 1\.5 s from case_visible \(sim\) of \S+timeouts\.yaml, "
        r"poll 0\.1 s from poll_interval \(sim\) of \S+timeouts\.yaml; \d+ polls\]",
        invisible,
    )
    assert waited_s(invisible) >= 1.5
    plugin = tests["Plugin State Diverged"].message
    assert re.match(
        r"plugin state of run run-9 not converged: ovh-1 lacks row case:case-\w+ after \d+\.\d s; 2 of 3 nodes agree",
        plugin,
    )
    assert waited_s(plugin) >= 1.5

    # One HTML report per failure, the differing cell marked: ovh-1's own (syncing) row.
    report = [m for m in html_messages(tests["Membership Diverged"]) if "tribes-failure" in m]
    assert len(report) == 1
    marked = re.findall(r'<td class="tribes-diff"[^>]*>(.*?)</td>', report[0], re.S)
    assert len(marked) == 1 and "syncing" in marked[0]
    assert "<summary>timeline:" in report[0]
    assert 'href="artifacts/Diverged/Membership_Diverged/failure/ovh-1.json"' in report[0]
    snapshot = result.output_dir / "artifacts/Diverged/Membership_Diverged/failure"
    assert sorted(p.name for p in snapshot.iterdir()) == [
        "_legion.json",
        "_membership_diff.json",
        "hetzner-1.json",
        "ovh-1.json",
        "scaleway-1.json",
    ]
    # ... and log.html carries the same table (what QA opens).
    logged = [s for s in log_html_strings(result.output_dir / "log.html") if "tribes-diff" in s]
    assert any("membership not converged: node ovh-1 still syncing" in s for s in logged)
    terminal = tests["Decommissioned Member Is Terminal"]
    # Failing fast shows in the message: a terminal verdict, not "not converged ... after 1.5 s"
    # (tests/test_waiting.py pins the timing with a fake clock).
    assert terminal.message.startswith(
        "membership not converged: node ovh-1 unexpectedly decommissioned on "
    ), terminal.message

    plugin_report = html_messages(tests["Plugin State Diverged"])
    assert any('class="tribes-diff"' in m and "missing" in m for m in plugin_report)


# ------------------------------------------------------------------------------- faults


FAULTS = (
    SETTINGS
    + r"""
*** Test Cases ***
Sync Endpoints Are Wrong
    Sync Endpoints Should Match Transport Addresses

Archive Row Deleted
    ${before}=    Get Current Time UTC
    Decommission Node    ovh-1
    Node Should Be Archived As Decommissioned    ovh-1    since=${before}

Reactivation Keeps Stale Activation
    ${before}=    Get Current Time UTC
    Reactivate Node    ovh-1
    Activation Should Be Fresh    ovh-1    ${before}
"""
)


def test_simulator_faults_are_caught(run_robot: Any, short_timeouts: Path, tmp_path: Path) -> None:
    variables = faulty_variables(
        tmp_path, ["wrong-transport-address", "decommission-deletes-row", "stale-activated-at"]
    )
    result = run_robot(FAULTS, name="faults", variablefile=variables)
    tests = by_name(result)
    assert {t.status for t in tests.values()} == {"FAIL"}, result.console[-3000:]

    endpoints = tests["Sync Endpoints Are Wrong"].message
    assert endpoints.startswith("sync endpoints do not match transport addresses: hetzner-1: ")
    for node in ("hetzner-1", "scaleway-1", "ovh-1"):
        assert re.search(
            # Legion's wrong port is usually closed (ConnectError), but another fleet's node
            # may listen there: the mismatch is the verdict, the reachability is extra.
            rf"{node}: Legion says http://127\.0\.0\.1:(\d+), peers report http://127\.0\.0\.1:\d+ \(every node\)",
            endpoints,
        ), endpoints
    report = html_messages(tests["Sync Endpoints Are Wrong"])
    assert any('class="tribes-diff"' in m for m in report)

    archive = tests["Archive Row Deleted"].message
    assert archive.startswith("node ovh-1 not archived as decommissioned: row missing on ")
    assert waited_s(archive) >= 1.5 and "hetzner-1" in archive and "scaleway-1" in archive

    stale = tests["Reactivation Keeps Stale Activation"].message
    assert stale.startswith("activation of ovh-1 is not fresh (before ")
    assert "ovh-1 has activated_at" in stale


def test_argument_mistakes_fail_clearly(run_robot: Any, short_timeouts: Path) -> None:
    suite = (
        SETTINGS
        + r"""
*** Test Cases ***
Naive Time
    Activation Should Be Fresh    hetzner-1    2025-01-01 10:00:00

Unknown Expected Field
    &{row}=    Create Dictionary    colour=red
    &{expected}=    Create Dictionary    hetzner-1=${row}
    Wait Until Cluster Converged    expected=${expected}
"""
    )
    tests = by_name(run_robot(suite, name="arguments"))
    assert "has no timezone" in tests["Naive Time"].message
    assert "unknown field(s) colour" in tests["Unknown Expected Field"].message


SKEW = (
    SETTINGS
    + r"""
*** Test Cases ***
Node Clock Within The Allowance
    ${now}=    Get Current Time UTC
    ${ahead}=    Evaluate    $now + datetime.timedelta(seconds=1800)
    Activation Should Be Fresh    ovh-1    ${ahead}

Node Clock Beyond The Allowance
    ${now}=    Get Current Time UTC
    ${ahead}=    Evaluate    $now + datetime.timedelta(seconds=7200)
    Activation Should Be Fresh    ovh-1    ${ahead}
"""
)


def test_clock_skew_allowance_applies_to_node_timestamps(
    run_robot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A runner clock an hour behind the nodes' is what a 3600 s allowance forgives.
    sim = {**SHORT_TIMEOUTS["TIMEOUTS"]["sim"], "clock_skew": 3600}
    _timeouts_table(tmp_path, monkeypatch, {"TIMEOUTS": {"sim": sim}})
    result = run_robot(SKEW, name="skew")
    tests = by_name(result)
    assert tests["Node Clock Within The Allowance"].status == "PASS", result.console[-3000:]
    beyond = tests["Node Clock Beyond The Allowance"]
    assert beyond.status == "FAIL"
    assert beyond.message.startswith("activation of ovh-1 is not fresh (before "), beyond.message
    assert "allowing 3600 s of clock skew" in beyond.message


# ------------------------------------------------------- node timestamps at their precision

WHOLE_SECONDS = (
    SETTINGS
    + r"""
*** Test Cases ***
Decommission And Reactivation Stamped In Whole Seconds
    FOR    ${round}    IN RANGE    3
        ${before}=    Get Current Time UTC
        Decommission Node    ovh-1
        Node Should Be Archived As Decommissioned    ovh-1    since=${before}
        ${before}=    Get Current Time UTC
        Reactivate Node    ovh-1
        Activation Should Be Fresh    ovh-1    ${before}
    END
"""
)

BACKDATED = (
    SETTINGS
    + r"""
*** Test Cases ***
Backdated Decommission
    ${before}=    Get Current Time UTC
    Decommission Node    scaleway-1
    Node Should Be Archived As Decommissioned    scaleway-1    since=${before}
"""
)


def test_whole_second_node_stamps_pass_and_a_backdated_one_fails_at_once(
    run_robot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nodes and Legion stamp whole seconds: a decommission or activation in the runner's second
    # stamps a time before the runner's reading. It must count as "since" / "fresh" (it did fail
    # the matrix about one run in three at millisecond stamps, nearly always at whole seconds).
    monkeypatch.setenv("TRIBES_SIM_OVERRIDES", json.dumps({"timestamp_precision": "seconds"}))
    sim = {**SHORT_TIMEOUTS["TIMEOUTS"]["sim"], "node_active": 30, "membership_converged": 60}
    _timeouts_table(tmp_path, monkeypatch, {"TIMEOUTS": {"sim": sim}})
    variables = faulty_variables(tmp_path, ["backdated-decommission"])
    healthy = run_robot(WHOLE_SECONDS, name="seconds")
    test = by_name(healthy)["Decommission And Reactivation Stamped In Whole Seconds"]
    assert test.status == "PASS", test.message

    # Settled only when the row is certainly newer than the step's start: at millisecond stamps
    # (a whole-second stamp in the step's own second may be older, so it only lags).
    monkeypatch.delenv("TRIBES_SIM_OVERRIDES")
    backdated = run_robot(BACKDATED, name="backdated", variablefile=variables)
    failed = by_name(backdated)["Backdated Decommission"]
    assert failed.status == "FAIL"
    assert failed.message.startswith("node scaleway-1 not archived as decommissioned: "), (
        failed.message
    )
    assert "(settled: the row was written during the step)" in failed.message
    # Settled evidence fails at that poll, not at the 60 s deadline.
    assert waited_s(failed.message) < 60
    assert any('class="tribes-matrix"' in m for m in html_messages(failed))
