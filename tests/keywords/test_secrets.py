"""Secrets never reach Robot's outputs: not output.xml, log.html, report.html, nor artifacts.

A suite provisions a node and makes management, plugin and SSH calls (and injects a fault over
SSH on the real strategy), then FAILS one test on purpose so failure capture runs too, all at
``--loglevel TRACE`` (Robot then logs every keyword's arguments and return value). The fleet
directory is kept (``keep_fleet_dirs``) in a short temporary directory, so the test can read the fleet's
admin key, Legion's key and the SSH client private key afterwards and look for them in every
file under the output directory, including the compressed messages inside log.html and
report.html.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import tempfile
import zlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.keywords.conftest import (
    SIM_AS_REAL_VARIABLES,
    SIM_VARIABLES,
    put_venv_on_path,
)
from tribesqa.clients.keys import AdminKey

SUITE = """
*** Settings ***
Library           tribesqa.library.TribesLibrary
Suite Setup       Open Target
Suite Teardown    Close Target

*** Test Cases ***
Management, Plugin And SSH Calls
    ${init}=    Provision Init Node    hetzner
    VAR    ${NODE}    ${init.name}    scope=SUITE
    Get Node Info    ${NODE}
    Get Cluster Status    ${NODE}
    Get Node Diagnostics    ${NODE}
    Unsigned Management Request Should Be Refused    ${NODE}
    Replayed Management Request Should Be Refused    ${NODE}
    Roll Out Plugin To Nodes    supertest    e042f3265db7a40d4d558132800238c6d466e8dd    ${NODE}
    Plugin API Should Be Healthy    ${NODE}
    Plugin Tables Should Exist    ${NODE}
    ${run}=    New Run Id
    ${case}=    Create Case    ${NODE}    ${run}    secrets stay secret
    Increment Case    ${NODE}    ${case.id}    2
    Plugin State Should Hold    ${NODE}    ${run}    cases=1    counter=2
    Get Generation Links Over SSH    ${NODE}
    Generation Links Should Match API    ${NODE}
    Start Publish Outage    ${NODE}
    Stop Publish Outage    ${NODE}
    Get Legion State Snapshot

A Failing Test Runs Failure Capture
    Create Case    ${NODE}    ${EMPTY}    no run id
"""

_STRINGS_RE = re.compile(
    r'window\.output\["strings"\]\s*=\s*window\.output\["strings"\]\.concat\((\[.*?\])\);', re.S
)


def _readable(path: Path) -> str:
    """A file's text plus, for Robot's HTML outputs, every decompressed model string."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    if path.suffix != ".html":
        return text
    decoded = []
    for block in _STRINGS_RE.findall(text):
        # Robot's JS writer escapes ``</`` as ``\x3c/``, which JSON does not know.
        for item in json.loads(block.replace("\\x3c", "\\u003c")):
            if item.startswith("*"):
                decoded.append(item[1:])
            else:
                decoded.append(zlib.decompress(base64.b64decode(item)).decode("utf-8", "replace"))
    return text + "\n" + "\n".join(decoded)


def _secrets(fleet_dir: Path) -> dict[str, str]:
    """Every secret of the fleet, by label: keys as hex (both cases) and nsec, SSH key lines."""
    found: dict[str, str] = {}
    secrets_dir = fleet_dir / "secrets"
    for name in ("admin.key", "legion.key"):
        key = AdminKey.from_file(secrets_dir / name)
        found[f"{name} hex"] = key.secret_hex()
        found[f"{name} HEX"] = key.secret_hex().upper()
        found[f"{name} nsec"] = key.secret_nsec()
    private = (secrets_dir / "ssh_client").read_text().splitlines()
    body = [line.strip() for line in private if line.strip() and not line.startswith("-----")]
    assert len(body) >= 3, "the SSH client key has no body to look for"
    for number, line in enumerate(body):
        if len(line) >= 16:  # the short last line could match by chance
            found[f"ssh_client line {number + 1}"] = line
    return found


def _variables_for(kind: str, tmp_path: Path, fleets: Path) -> Path:
    target = tmp_path / f"{kind}-target.yaml"
    if kind == "sim":
        data = yaml.safe_load(SIM_VARIABLES.read_text())
        data["TARGET"]["sim"].update(keep_fleet_dirs=True, fleets_dir=str(fleets))
        target.write_text(yaml.safe_dump(data))
    else:
        text = SIM_AS_REAL_VARIABLES.read_text()
        assert "{tmp}/tribes-qa-sim-as-real" in text
        # Keep the fleet directory after the run: the scan needs the keys it looks for.
        text = text.replace("down, --remove,", "down,")
        target.write_text(text.replace("{tmp}/tribes-qa-sim-as-real", str(fleets)))
    return target


def _processes_mentioning(marker: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if marker in cmdline and "tribes_sim" in cmdline:
                found.append(f"{proc.name}: {cmdline[:120]}")
    return found


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sim", "sim-as-real"])
def test_no_secret_reaches_the_robot_outputs(
    kind: str, run_robot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Short: the simulator's Unix sockets live in the fleet directory (108-byte path limit).
    fleets = Path(tempfile.mkdtemp(prefix="tq-secrets-"))
    if kind == "sim-as-real":
        put_venv_on_path(monkeypatch)
    variables = _variables_for(kind, tmp_path, fleets)
    try:
        result = run_robot(SUITE, variablefile=variables, name=kind, loglevel="TRACE")
        tests = {test.name: test for test in result.suite.all_tests}
        calls = tests["Management, Plugin And SSH Calls"]
        assert calls.status == "PASS", calls.message
        assert tests["A Failing Test Runs Failure Capture"].status == "FAIL"
        assert "argument run_id must be a non-empty string" in (
            tests["A Failing Test Runs Failure Capture"].message
        )

        fleet_dirs = [d for d in fleets.iterdir() if (d / "secrets").is_dir()]
        assert len(fleet_dirs) == 1, fleet_dirs
        secrets = _secrets(fleet_dirs[0])

        files = [p for p in result.output_dir.rglob("*") if p.is_file()]
        names = {p.name for p in files}
        # The run history is scanned too: it records every management and plugin call.
        assert {"output.xml", "log.html", "report.html", "history.jsonl"} <= names, names
        leaks = [
            f"{label} in {path.relative_to(result.output_dir)}"
            for path in files
            for label, secret in secrets.items()
            if secret in _readable(path)
        ]
        assert not leaks, leaks
        # TRACE really logged the keywords' arguments: the scan looked at a detailed log.
        assert "secrets stay secret" in _readable(result.output_dir / "log.html")

        assert not (fleet_dirs[0] / "legion.json").exists(), "Close Target left the fleet running"
        assert not _processes_mentioning(str(fleet_dirs[0]))
    finally:
        shutil.rmtree(fleets, ignore_errors=True)  # throwaway keys, but keys all the same


def test_the_scan_finds_a_secret_hidden_in_log_html(tmp_path: Path) -> None:
    """The scanner itself must be able to fail: a compressed log.html string is decoded."""
    secret = "ab" * 32
    packed = base64.b64encode(zlib.compress(f"Arguments: [ {secret} ]".encode())).decode()
    html = tmp_path / "log.html"
    html.write_text(
        'window.output["strings"] = window.output["strings"].concat('
        + json.dumps(["*plain", packed])
        + ");"
    )
    assert secret not in html.read_text()
    assert secret in _readable(html)


# ------------------------------------------------------------- QA's own key, as a Secret

REQUESTS_SUITE = """
*** Settings ***
Library           RequestsLibrary
Library           tribesqa.library.TribesLibrary
Suite Setup       Open Target
Suite Teardown    Close Target

*** Test Cases ***
QA Signs Its Own Requests With A Secret Admin Key
    ${init}=    Provision Init Node    hetzner
    ${admin_url}=    Get Admin URL Of Node    ${init.name}
    VAR    ${ADMIN_URL}    ${admin_url}    scope=SUITE
    VAR    &{BODY}    method=cluster_status    params=&{EMPTY}    scope=SUITE
    VAR    ${key: Secret}    %{TRIBES_ADMIN_KEY}
    ${auth}=    Get NIP-98 Auth    ${key}
    Log    ${auth}
    Create Custom Session    n1    ${ADMIN_URL}    ${auth}
    ${response}=    POST On Session    n1    /api/admin/management    json=${BODY}
    Should Be True    ${response.json()}[ok]
    Should Be Equal    ${response.json()}[result][self_status]    active
    # The query string is part of the signed URL: the node verifies the URL it was sent.
    ${response}=    POST On Session    n1    /api/admin/management    json=${BODY}
    ...    params=probe=1&note=a b
    Should Be Equal    ${response.json()}[result][self_status]    active

The Open Target's Admin Key Signs When No Key Is Given
    ${auth}=    Get NIP-98 Auth
    # A plain session, signed per request: RequestsLibrary hands auth= to requests.
    Create Session    n2    ${ADMIN_URL}
    ${response}=    POST On Session    n2    /api/admin/management    json=${BODY}    auth=${auth}
    Should Be True    ${response.json()}[ok]

A Key Off The Allowlist Is Refused By The Node
    VAR    ${other: Secret}    %{OTHER_ADMIN_KEY}
    ${auth}=    Get NIP-98 Auth    ${other}
    Create Custom Session    n3    ${ADMIN_URL}    ${auth}
    ${response}=    POST On Session    n3    /api/admin/management    json=${BODY}
    ...    expected_status=401
    Should Be Equal    ${response.json()}[error]    forbidden-pubkey

An Unsigned Session Is Refused By The Node
    Create Session    n4    ${ADMIN_URL}
    ${response}=    POST On Session    n4    /api/admin/management    json=${BODY}
    ...    expected_status=401
    Should Be Equal    ${response.json()}[error]    auth-required

A Plain String Key Is Refused Before Anything Is Signed
    Run Keyword And Expect Error    Get NIP-98 Auth: key must be a Secret*
    ...    Get NIP-98 Auth    not-a-key
"""


@pytest.mark.slow
def test_a_secret_admin_key_signs_requests_library_calls_and_never_reaches_the_outputs(
    run_robot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """QA's key, given as a Robot ``Secret`` from the environment, signs RequestsLibrary calls
    to a simulated node (the sim target puts it on the allowlist: ``TARGET.admin_key``); at
    ``--loglevel TRACE`` neither it nor a second key appears in output.xml, log.html or
    report.html, in any form."""
    admin, other = AdminKey.generate(), AdminKey.generate()
    monkeypatch.setenv("TRIBES_ADMIN_KEY", admin.secret_hex())
    monkeypatch.setenv("OTHER_ADMIN_KEY", other.secret_nsec())
    data = yaml.safe_load(SIM_VARIABLES.read_text())
    data["TARGET"]["admin_key"] = {"env": "TRIBES_ADMIN_KEY"}
    variables = tmp_path / "own-key.yaml"
    variables.write_text(yaml.safe_dump(data))

    result = run_robot(REQUESTS_SUITE, variablefile=variables, name="requests", loglevel="TRACE")
    failed = {t.name: t.message for t in result.suite.all_tests if t.status != "PASS"}
    assert not failed, failed
    assert len(list(result.suite.all_tests)) == 5

    secrets = {
        f"{label} {form}": value
        for label, key in (("admin", admin), ("other", other))
        for form, value in (
            ("hex", key.secret_hex()),
            ("HEX", key.secret_hex().upper()),
            ("nsec", key.secret_nsec()),
        )
    }
    files = [p for p in result.output_dir.rglob("*") if p.is_file()]
    assert {"output.xml", "log.html", "report.html"} <= {p.name for p in files}
    leaks = [
        f"{label} in {path.name}"
        for path in files
        for label, secret in secrets.items()
        if secret in _readable(path)
    ]
    assert not leaks, leaks
    log = _readable(result.output_dir / "log.html")
    # TRACE logged the arguments (the Secret shows as <secret>) and the signer's public key.
    assert re.search(r"Secret\(value=(<|&lt;)secret(>|&gt;)\)", log), (
        "TRACE logged no Secret argument"
    )
    assert f"Nip98RequestsAuth(pubkey={admin.pubkey_hex})" in log


def _readme_example() -> str:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```robotframework\n(.*?)```", readme, re.S)
    found = [block for block in blocks if "Get NIP-98 Auth" in block and "*** Settings" in block]
    assert len(found) == 1, "the README shows one RequestsLibrary example suite"
    return found[0]


@pytest.mark.slow
def test_the_readme_requests_library_example_runs_against_the_simulator(
    run_robot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = AdminKey.generate()
    monkeypatch.setenv("TRIBES_ADMIN_KEY", admin.secret_nsec())
    data = yaml.safe_load(SIM_VARIABLES.read_text())
    data["TARGET"]["admin_key"] = {"env": "TRIBES_ADMIN_KEY"}
    variables = tmp_path / "own-key.yaml"
    variables.write_text(yaml.safe_dump(data))
    result = run_robot(_readme_example(), variablefile=variables, name="readme")
    tests = list(result.suite.all_tests)
    assert [t.status for t in tests] == ["PASS"], [t.message for t in tests]
