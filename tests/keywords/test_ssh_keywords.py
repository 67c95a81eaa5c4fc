"""`Run Command On Node`: ad-hoc commands over SSH, on the simulator and through sim-as-real."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.keywords.conftest import SIM_AS_REAL_VARIABLES, SIM_VARIABLES, RunRobot, put_venv_on_path
from tests.keywords.test_secrets import _readable

HELPERS = """
from robot.libraries.BuiltIn import BuiltIn


def _ctx():
    return BuiltIn().get_library_instance("tribesqa.library.TribesLibrary").ctx


def ssh_connections_held():
    return _ctx().ssh().connected_nodes()


def ssh_key_file_copied_onto(node):
    # A node's session sees only that node (its own mount namespace): put a copy of the
    # runner's key in the node's directory, which the session sees at its real path.
    import shutil
    from pathlib import Path

    ctx = _ctx()
    where = ctx.ssh().run(node, ctx.ssh_endpoint(node), "echo $TRIBES_ROOT", purpose="where")
    copy = Path(where.stdout.strip()).parent / "client-key-copy"
    shutil.copy(ctx.require_target().ssh_key_file(), copy)
    return str(copy)
"""

SUITE = r"""
*** Settings ***
Library           tribesqa.library.TribesLibrary
Library           ${CURDIR}/ssh_helpers.py
Suite Setup       Open Target
Suite Teardown    Close Target

*** Test Cases ***
The Running Generation Link Read Over SSH Matches The API
    ${init}=    Provision Init Node    hetzner
    VAR    ${NODE}=    ${init.name}    scope=SUITE
    ${result}=    Run Command On Node    ${NODE}
    ...    p=$(readlink -f $TRIBES_ROOT/run/current-system) && echo \${p#$TRIBES_ROOT}
    Should Be Equal As Integers    ${result.rc}    0
    ${status}=    Get Generation Status    ${NODE}
    Should Be Equal    ${result.stdout}    ${status.running}\n
    Should Be Equal    ${result.stderr}    ${EMPTY}
    Should Be Equal    ${result.node}    ${NODE}
    Generation Links Should Match API    ${NODE}

Stdout Stderr And Exit Status Come Back Apart
    ${result}=    Run Command On Node    ${NODE}    echo out; echo err >&2; exit 3
    Should Be Equal    ${result.stdout}    out\n
    Should Be Equal    ${result.stderr}    err\n
    Should Be Equal As Integers    ${result.rc}    3

The Node Database Is Readable With Sqlite3
    ${result}=    Run Command On Node    ${NODE}    sqlite3 "$TRIBES_ROOT/../node.db" .tables
    Should Be Equal As Integers    ${result.rc}    0    ${result.stderr}
    Should Contain    ${result.stdout}    cluster_nodes

Every Command Goes Over The One Connection Of Its Node
    FOR    ${i}    IN RANGE    3
        Run Command On Node    ${NODE}    true
    END
    ${held}=    SSH Connections Held
    Should Be Equal    ${held}    ${{["${NODE}"]}}

Key Material Printed By A Command Is Never Logged
    ${key_file}=    SSH Key File Copied Onto    ${NODE}
    ${result}=    Run Command On Node    ${NODE}    cat ${key_file}
    Should Contain    ${result.stdout}    BEGIN OPENSSH PRIVATE KEY

An Unknown Node Is Named
    Run Keyword And Expect Error    node nope is not known to Legion*
    ...    Run Command On Node    nope    true

A Node That Is Down Is Named In The Failure
    Crash Node    ${NODE}
    Run Keyword And Expect Error    node ${NODE}: SSH login as *@127.0.0.1:* failed: *
    ...    Run Command On Node    ${NODE}    true
    Restart Node    ${NODE}
    ${result}=    Run Command On Node    ${NODE}    echo back
    Should Be Equal    ${result.stdout}    back\n

Destroying The Node Leaves Legion Empty
    Destroy All Nodes
    Legion Node List Should Be Empty
"""

# The fixed opening of every OpenSSH private key body ("openssh-key-v1\0" in base64).
OPENSSH_KEY_BODY = "b3BlbnNzaC1rZXktdjEAAAAA"


def _check(result: object) -> None:
    failures = {t.name: t.message for t in result.suite.all_tests if t.status != "PASS"}  # type: ignore[attr-defined]
    assert failures == {}, failures
    assert result.statistics.total.passed == 8  # type: ignore[attr-defined]
    out = result.output_dir  # type: ignore[attr-defined]
    # log.html keeps long messages zlib-compressed: read them decompressed, and output.xml too.
    log = _readable(out / "log.html")
    assert "Traceback" not in log
    for path in (out / "log.html", out / "output.xml"):
        assert OPENSSH_KEY_BODY not in _readable(path), path.name
    assert "&lt;redacted&gt;" in log or "<redacted>" in log
    # Every command is an operation in the run history (its exit status, never its output);
    # the generation links read over SSH are an observation.
    [history] = (out / "artifacts").glob("*/history.jsonl")
    assert OPENSSH_KEY_BODY not in history.read_text()
    records = [json.loads(line) for line in history.read_text().splitlines()]
    commands = [(r["type"], r["value"]) for r in records if r["what"] == "ssh.command"]
    assert ("ok", {"rc": 3}) in commands
    assert ("invoke", {"command": "echo out; echo err >&2; exit 3"}) in commands
    assert any(kind == "fail" and "SSH login" in value["error"] for kind, value in commands)
    [links] = [r["value"] for r in records if r["what"] == "ssh.generation_links"]
    assert set(links) == {"selected", "running"}


@pytest.mark.slow
def test_run_command_on_node_on_the_simulator(run_robot: RunRobot, tmp_path: Path) -> None:
    (tmp_path / "ssh_helpers.py").write_text(HELPERS)
    _check(run_robot(SUITE, variablefile=SIM_VARIABLES, name="ssh-sim"))


@pytest.mark.slow
def test_run_command_on_node_through_the_real_strategy(
    run_robot: RunRobot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_venv_on_path(monkeypatch)
    (tmp_path / "ssh_helpers.py").write_text(HELPERS)
    _check(run_robot(SUITE, variablefile=SIM_AS_REAL_VARIABLES, name="ssh-real"))
