"""The admin API security keywords: green on a healthy node, red (with a readable message naming
the node, the method, what was expected and what was answered) when the simulator fault that
switches off the check they prove is on."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.keywords.conftest import SIM_AS_REAL_VARIABLES, SIM_VARIABLES, RunRobot, put_venv_on_path
from tribesqa.clients.admin_probe import FLAWS

HEADER = """
*** Settings ***
Library           tribesqa.library.TribesLibrary
Suite Setup       Start
Suite Teardown    Close Target

*** Keywords ***
Start
    Open Target
    ${nodes}=    Nodes For Admin API Checks    {count}
    VAR    ${NODE}    ${nodes}[0]    scope=SUITE
    VAR    ${OTHER_NODE}    ${nodes}[-1]    scope=SUITE

*** Test Cases ***
"""

HEALTHY = (
    HEADER.replace("{count}", "2")
    + "".join(
        f"Refuses {flaw.title()}\n    Management Request Should Be Refused    ${{NODE}}    {flaw}\n\n"
        for flaw in FLAWS
    )
    + """Refuses An Unsigned Request
    Unsigned Management Request Should Be Refused    ${NODE}

Refuses A Replay
    Replayed Management Request Should Be Refused    ${NODE}

Keeps Refused Events Out Of The Replay Cache
    Refused Auth Event Should Not Enter The Replay Cache    ${NODE}

Refuses An Event Signed For Another Node
    Request Signed For Another Node Should Be Refused    ${OTHER_NODE}    ${NODE}
    Request Signed For Another Node Should Be Refused    ${NODE}    ${OTHER_NODE}    spoof_host=${TRUE}

Answers The First Failed Check
    Auth Checks Should Run In Contract Order    ${NODE}

Uses The Ready Nodes Once There Are Enough
    ${again}=    Nodes For Admin API Checks    2
    Should Be Equal    ${again}    ${{[$NODE, $OTHER_NODE]}}
    ${names}=    Get Legion Node Names
    Length Should Be    ${names}    2

An Unknown Flaw Is A Readable Error
    Run Keyword And Expect Error    *unknown flaw 'too old'; known: no authorization, *
    ...    Management Request Should Be Refused    ${NODE}    too old

The Same Node Twice Is A Readable Error
    Run Keyword And Expect Error    *${NODE} is the node the event is signed for; name two different nodes*
    ...    Request Signed For Another Node Should Be Refused    ${NODE}    ${NODE}
"""
)

# fault -> the keyword calls it must turn red, each with what its message must say.
RED: dict[str, list[tuple[str, str]]] = {
    "auth-optional": [
        (
            "Management Request Should Be Refused    ${NODE}    no authorization",
            r"accepted a request without an Authorization header for node\.info \(HTTP 200\), "
            r"expected 401 auth-required",
        ),
        (
            "Unsigned Management Request Should Be Refused    ${NODE}",
            r"expected 401 auth-required",
        ),
        (
            "Management Request Should Be Refused    ${NODE}    malformed authorization",
            r"accepted a malformed Authorization header .* expected 401 invalid-authorization",
        ),
    ],
    "auth-signature-unchecked": [
        (
            f"Management Request Should Be Refused    ${{NODE}}    {flaw}",
            rf"accepted a NIP-98 event {words} .*expected 401 invalid-auth-event",
        )
        for flaw, words in (
            ("wrong kind", "of kind 1"),
            ("content", "with non-empty content"),
            ("bad signature", "with a bad signature"),
        )
    ]
    + [
        (
            "Auth Checks Should Run In Contract Order    ${NODE}",
            r"refused a NIP-98 event failing checks 3-8 .* with HTTP 401 stale-auth-event, "
            r"expected 401 invalid-auth-event",
        )
    ],
    "stale-auth-accepted": [
        (
            f"Management Request Should Be Refused    ${{NODE}}    {flaw}",
            rf"accepted a stale NIP-98 event \(created_at 600 s {when}\) .*expected 401 "
            r"stale-auth-event",
        )
        for flaw, when in (("created long ago", "ago"), ("created in the future", "in the future"))
    ],
    "auth-url-unchecked": [
        (
            "Management Request Should Be Refused    ${NODE}    another url",
            r"accepted a NIP-98 event signed for another URL \(http://127\.0\.0\.1:\d+/api/admin/"
            r"management/elsewhere\) for node\.info \(HTTP 200\), expected 401 auth-url-tag-mismatch",
        ),
        (
            "Request Signed For Another Node Should Be Refused    ${OTHER_NODE}    ${NODE}",
            r"accepted a NIP-98 event signed for node hetzner-1 .*expected 401 auth-url-tag-mismatch",
        ),
    ],
    "host-header-trusted": [
        (
            "Request Signed For Another Node Should Be Refused    ${OTHER_NODE}    ${NODE}    "
            "spoof_host=${TRUE}",
            r"node scaleway-1 accepted a NIP-98 event signed for node hetzner-1 "
            r"\(http://127\.0\.0\.1:(\d+)/api/admin/management\) with Host: 127\.0\.0\.1:\1 for "
            r"node\.info \(HTTP 200\), expected 401 auth-url-tag-mismatch",
        ),
        (
            "Management Request Should Be Refused    ${NODE}    arbitrary host",
            r"accepted a NIP-98 event whose u tag and Host header both name "
            r"admin\.attacker\.invalid:8443 .*expected 401 auth-url-tag-mismatch",
        ),
    ],
    "auth-method-unchecked": [
        (
            "Management Request Should Be Refused    ${NODE}    another method",
            r"accepted a POST with a NIP-98 event signed for method GET .*expected 401 "
            r"auth-method-tag-mismatch",
        )
    ],
    "auth-payload-unchecked": [
        (
            "Management Request Should Be Refused    ${NODE}    another body",
            r"accepted a NIP-98 event whose payload tag is not the sha256 of the body .*"
            r"expected 401 auth-payload-mismatch",
        )
    ],
    "allowlist-open": [
        (
            "Management Request Should Be Refused    ${NODE}    key not on the allowlist",
            r"accepted a NIP-98 event signed by a key not on the allowlist \([0-9a-f]{16}\.\.\.\) "
            r".*expected 401 forbidden-pubkey",
        )
    ],
    "replay-accepted": [
        (
            "Replayed Management Request Should Be Refused    ${NODE}",
            r"accepted a replayed NIP-98 event for node\.info \(HTTP 200\), expected 401 "
            r"replayed-auth-event",
        )
    ],
    "refused-event-cached": [
        (
            "Refused Auth Event Should Not Enter The Replay Cache    ${NODE}",
            r"refused the same event with the body it was signed for, after a refusal \(a refused "
            r"event must not enter the replay cache\) for node\.info with HTTP 401 "
            r"replayed-auth-event, expected 200",
        )
    ],
}


def _statuses(result: Any) -> dict[str, tuple[str, str]]:
    return {test.name: (test.status, test.message) for test in result.suite.all_tests}


def _variables(tmp_path: Path, source: Path, **changes: Any) -> Path:
    data = yaml.safe_load(source.read_text())
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for part in parents:
            node = node[part]
        node[last] = value
    path = tmp_path / f"variables-{len(list(tmp_path.iterdir()))}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.req("AUTH-1", "AUTH-2", "AUTH-3", "AUTH-4", "AUTH-5", "AUTH-6", "AUTH-7", "AUTH-8")
@pytest.mark.req("AUTH-9", "AUTH-10", "AUTH-11", "AUTH-12")
def test_a_healthy_node_refuses_every_bad_request(run_robot: RunRobot) -> None:
    result = run_robot(HEALTHY, name="security-healthy")
    failed = {n: m for n, (s, m) in _statuses(result).items() if s != "PASS"}
    assert not failed, failed
    assert len(_statuses(result)) == len(FLAWS) + 8


@pytest.mark.parametrize("fault", sorted(RED))
def test_each_fault_turns_its_keywords_red(run_robot: RunRobot, tmp_path: Path, fault: str) -> None:
    calls = RED[fault]
    count = "2" if any("OTHER_NODE" in call for call, _ in calls) else "1"
    suite = HEADER.replace("{count}", count) + "".join(
        f"Call {i}\n    {call}\n\n" for i, (call, _) in enumerate(calls)
    )
    variables = _variables(tmp_path, SIM_VARIABLES, TARGET__sim__faults=[fault])
    statuses = _statuses(run_robot(suite, variablefile=variables, name=f"security-{fault}"))
    for i, (call, expected) in enumerate(calls):
        status, message = statuses[f"Call {i}"]
        assert status == "FAIL", f"{fault}: {call} passed"
        assert re.search(expected, message), f"{fault}: {call}: {message}"
        assert re.match(r"node (hetzner|scaleway)-1 ", message), message
        assert "Traceback" not in message


def test_a_target_that_does_not_provision_needs_ready_nodes(
    run_robot: RunRobot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real-fleet path: nothing is provisioned; too few ready nodes is a readable failure."""
    put_venv_on_path(monkeypatch)
    variables = _variables(
        tmp_path, SIM_AS_REAL_VARIABLES, TARGET__real__provision_missing_roster_nodes=False
    )
    suite = HEADER.replace("{count}", "2") + "Nothing\n    No Operation\n"
    result = run_robot(suite, variablefile=variables, name="security-real")
    status, message = _statuses(result)["Nothing"]
    assert status == "FAIL"
    assert (
        "the admin API checks need 2 ready nodes; Legion reports 0 (none) and this target "
        "does not provision nodes" in message
    ), message
