"""Artifacts: snapshot capture (unit, fake nodes) and the keywords + failure listener (Robot)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tribesqa.clients.keys import AdminKey
from tribesqa.clients.management_client import ManagementError
from tribesqa.contract import find_secret_material
from tribesqa.keywords.artifact_keywords import is_test_step
from tribesqa.reporting.snapshot import (
    REDACTED,
    SecretScrubber,
    artifact_dir,
    capture_snapshot,
    probe_node,
    safe_name,
)

ADMIN = AdminKey.generate()
PEM = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "QyNTUxOQAAACDc2mFQKoGaJm5oR0m6Xh0hYj3ZJ8dWb3kRkq5G7q5gEgAAAJg1c2ZbNXNm\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)


def rows(*statuses: tuple[str, str]) -> dict:
    return {
        "nodes": [
            {
                "node_id": node,
                "pubkey": "ab" * 32,
                "transport_address": f"http://127.0.0.1:2100{i}",
                "scope": "full",
                "status": status,
                "joined_at": "2025-01-01T00:00:00Z",
                "activated_at": None,
                "decommissioned_at": None,
                "updated_at": "2025-01-01T00:00:00Z",
            }
            for i, (node, status) in enumerate(statuses)
        ]
    }


# ------------------------------------------------------------------------------ unit


def test_safe_names_and_directories(tmp_path: Path) -> None:
    assert safe_name("Suites.Cluster Lifecycle") == "Suites.Cluster_Lifecycle"
    assert safe_name("../../etc/passwd") == "etc_passwd"
    assert safe_name("..") == "_"
    assert safe_name("a/b\\c:d*e") == "a_b_c_d_e"
    path = artifact_dir(tmp_path, "My Suite", "Step: fails/here", "fail ure")
    assert path == tmp_path / "artifacts" / "My_Suite" / "Step_fails_here" / "fail_ure"
    assert artifact_dir(tmp_path, "S", None) == tmp_path / "artifacts" / "S" / "_suite"


def test_scrubber_redacts_keys_values_and_known_secrets(tmp_path: Path) -> None:
    key_file = tmp_path / "ssh_client"
    key_file.write_text(PEM)
    scrubber = SecretScrubber.for_keys(ADMIN, key_file)
    body_line = PEM.splitlines()[1]
    data = {
        "logs": {
            "tribes": [
                "ok",
                f"loaded key {ADMIN.secret_hex()} from env",
                f"nsec is {ADMIN.secret_nsec()}",
                f"ssh key line {body_line}",
            ]
        },
        "ssh": {"private_key": "anything", "host_key_fingerprint": "SHA256:abc"},
        "other": [AdminKey.generate().secret_nsec()],
        "token": 1,
    }
    clean, found = scrubber.scrub(data)
    text = json.dumps(clean)
    assert ADMIN.secret_hex() not in text
    assert ADMIN.secret_nsec() not in text
    assert body_line not in text
    assert clean["ssh"] == {"host_key_fingerprint": "SHA256:abc"}
    assert "token" not in clean
    assert clean["logs"]["tribes"][1] == f"loaded key {REDACTED} from env"
    assert clean["logs"]["tribes"][2] == f"nsec is {REDACTED}"
    assert clean["logs"]["tribes"][0] == "ok"
    assert find_secret_material(clean) == []
    assert clean["other"] == [REDACTED]
    assert sorted(found) == [
        "logs.tribes[1]",
        "logs.tribes[2]",
        "logs.tribes[3]",
        "other[0]",
        "ssh.private_key",
        "token",
    ]
    assert clean["_redacted"] == found


class FakeClient:
    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[str] = []
        self.closed = False

    def call(self, method: str) -> Any:
        self.calls.append(method)
        answer = self.answers.get(method, {})
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self) -> None:
        self.closed = True


@pytest.mark.req("REF-1")
def test_probe_node_stops_calling_a_dead_node() -> None:
    dead = FakeClient(
        {"cluster_nodes.list": ManagementError("n", "cluster_nodes.list", "unreachable", "refused")}
    )
    document = probe_node(dead.call)
    assert dead.calls == ["cluster_nodes.list"]
    assert set(document.values()) == {"unreachable: refused"}
    assert list(document) == [
        "cluster_nodes",
        "cluster_status",
        "sync.status",
        "generation.status",
        "tribe.status",
        "diagnostics",
    ]
    refusing = FakeClient(
        {"tribe.status": ManagementError("n", "tribe.status", "tribe-unknown", "not replayed")}
    )
    document = probe_node(refusing.call)
    assert document["tribe.status"] == "error: tribe-unknown: not replayed"
    assert len(refusing.calls) == 6


@pytest.mark.req("REF-1", "REF-2", "REF-22")
def test_capture_snapshot_writes_every_file_and_never_leaks(tmp_path: Path) -> None:
    clients = {
        "hetzner-1": FakeClient(
            {
                "cluster_nodes.list": rows(("hetzner-1", "active"), ("ovh-1", "active")),
                "diagnostics": {"logs": {"tribes": [f"secret {ADMIN.secret_hex()}"]}},
            }
        ),
        "ovh-1": FakeClient(
            {"cluster_nodes.list": rows(("hetzner-1", "active"), ("ovh-1", "syncing"))}
        ),
        "scaleway-1": FakeClient(
            {"cluster_nodes.list": ManagementError("s", "x", "unreachable", "timed out")}
        ),
    }
    legion = SimpleNamespace(
        nodes=[SimpleNamespace(name=n, admin_url=f"http://127.0.0.1:1/{n}") for n in clients]
        + [SimpleNamespace(name="planned-1", admin_url=None)],
        model_dump=lambda **_: {"nodes": [], "clusterMembership": [], "graphRuns": []},
    )
    result = capture_snapshot(
        tmp_path / "snap",
        legion_snapshot=lambda: legion,
        cached_nodes={},
        client_for=lambda name, url: clients[name],
        scrubber=SecretScrubber.for_keys(ADMIN),
    )
    assert sorted(p.name for p in (tmp_path / "snap").iterdir()) == [
        "_legion.json",
        "_membership_diff.json",
        "hetzner-1.json",
        "ovh-1.json",
        "scaleway-1.json",
    ]
    assert all(c.closed for c in clients.values())
    for path in (tmp_path / "snap").iterdir():
        text = path.read_text()
        assert ADMIN.secret_hex() not in text
        assert find_secret_material(json.loads(text)) == []
    assert result.redactions == ["hetzner-1.json: diagnostics.logs.tribes[0]"]
    dead = json.loads((tmp_path / "snap" / "scaleway-1.json").read_text())
    assert dead["diagnostics"] == "unreachable: timed out"
    diff = json.loads((tmp_path / "snap" / "_membership_diff.json").read_text())
    assert diff["unreachable"] == ["scaleway-1"]
    assert {"row": "ovh-1", "node": "hetzner-1", "field": "status"} in diff["differing"] or {
        "row": "ovh-1",
        "node": "ovh-1",
        "field": "status",
    } in diff["differing"]
    assert result.links(tmp_path)["ovh-1"] == "snap/ovh-1.json"


def test_capture_falls_back_to_cached_nodes_when_legion_hangs(tmp_path: Path) -> None:
    def hung() -> Any:
        time.sleep(5)

    started = time.monotonic()
    result = capture_snapshot(
        tmp_path / "snap",
        legion_snapshot=hung,
        cached_nodes={"hetzner-1": "http://x", "gone-1": None},
        client_for=lambda name, url: FakeClient({}),
        scrubber=SecretScrubber(),
        legion_timeout_s=0.2,
    )
    assert time.monotonic() - started < 2
    assert list(result.files) == ["hetzner-1", "_membership_diff", "_legion"]
    legion = json.loads((tmp_path / "snap" / "_legion.json").read_text())
    assert "no answer within 0.2 s" in legion["error"]


def test_is_test_step() -> None:
    from robot.result import For, ForIteration, Keyword, TestCase

    test = TestCase(name="t")
    step = test.body.create_keyword(name="Step")
    assert is_test_step(step)
    assert not is_test_step(step.body.create_keyword(name="Inner"))
    loop = test.body.create_for()
    iteration = loop.body.create_iteration()
    assert isinstance(iteration, ForIteration) and isinstance(loop, For)
    assert is_test_step(iteration.body.create_keyword(name="In loop"))
    assert not is_test_step(test.setup.config(name="Setup kw"))
    assert not is_test_step(Keyword(name="orphan"))


# ------------------------------------------------------------------------------ robot


HELPERS = """
from pathlib import Path
from robot.libraries.BuiltIn import BuiltIn


def art_save_secrets(path):
    ctx = BuiltIn().get_library_instance("tribesqa.library.TribesLibrary").ctx
    key = ctx.admin_key()
    ssh = Path(ctx.require_target().ssh_key_file()).read_text()
    Path(path).write_text("\\n".join([key.secret_hex(), key.secret_nsec(), *ssh.splitlines()[1:-1]]))
"""

SUITE = r"""*** Settings ***
Library    tribesqa.library.TribesLibrary
Library    ${CURDIR}/art_helpers.py
Suite Setup    Build
Suite Teardown    Close Target

*** Keywords ***
Build
    Open Target
    Provision Init Node    hetzner
    Plan Join Nodes    ovh    1
    Materialize Planned Nodes
    Art Save Secrets    ${CURDIR}/secrets.txt

Failing User Keyword
    Should Be Equal    inner    failure

*** Test Cases ***
Manual Snapshot: before/after
    ${dir}=    Capture Cluster Snapshot    before split
    ${tdir}=    Get Artifacts Directory
    Should Be Equal    ${dir}    ${tdir}/before_split
    Capture Cluster Snapshot    before split

Step Fails
    Log    a passing step
    Should Be Equal    1    2

Failure Inside A User Keyword Step
    Failing User Keyword

Teardown Fails Only
    Log    fine
    [Teardown]    Fail    teardown broke

Expected Errors Are Not Captured
    Run Keyword And Expect Error    *    Should Be Equal    1    2
"""


@pytest.mark.req("REF-2", "REF-20")
def test_snapshot_keyword_and_failure_listener(run_robot: Any, tmp_path: Path) -> None:
    (tmp_path / "art_helpers.py").write_text(HELPERS)
    result = run_robot(SUITE, name="Artifact Suite")
    tests = {t.name: t for t in result.suite.tests}
    assert tests["Manual Snapshot: before/after"].status == "PASS", result.console[-3000:]
    root = result.output_dir / "artifacts" / "Artifact_Suite"

    manual = root / "Manual_Snapshot_before_after"
    assert sorted(p.name for p in manual.iterdir()) == ["before_split", "before_split-2"]
    first = manual / "before_split"
    assert sorted(p.name for p in first.iterdir()) == [
        "_legion.json",
        "_membership_diff.json",
        "hetzner-1.json",
        "ovh-1.json",
    ]
    node = json.loads((first / "ovh-1.json").read_text())
    assert set(node) >= {
        "cluster_nodes",
        "cluster_status",
        "sync.status",
        "generation.status",
        "tribe.status",
        "diagnostics",
    }
    assert node["cluster_status"]["node_id"] == "ovh-1"
    legion = json.loads((first / "_legion.json").read_text())
    assert {n["name"] for n in legion["nodes"]} == {"hetzner-1", "ovh-1"}
    assert "clusterMembership" in legion
    diff = json.loads((first / "_membership_diff.json").read_text())
    assert diff["differing"] == [] and diff["rows"] == ["hetzner-1", "ovh-1"]

    # One HTML block with links relative to log.html, each pointing at a file that exists.
    keyword = tests["Manual Snapshot: before/after"].body[0]
    blocks = [m.message for m in keyword.body if getattr(m, "html", False)]
    assert len(blocks) == 1
    hrefs = re.findall(r'href="([^"]+)"', blocks[0])
    assert len(hrefs) == 4
    assert all((result.output_dir / href).is_file() for href in hrefs), hrefs
    assert 'class="tribes-matrix"' in blocks[0]

    # The listener: a failing test step -> a failure snapshot, logged under that step.
    failure = root / "Step_Fails" / "failure"
    assert sorted(p.name for p in failure.iterdir()) == [
        "_legion.json",
        "_membership_diff.json",
        "hetzner-1.json",
        "ovh-1.json",
    ]
    failed_step = tests["Step Fails"].body[1]
    assert any("Failure snapshot after" in m.message for m in failed_step.body if m.html)
    assert (root / "Failure_Inside_A_User_Keyword_Step" / "failure" / "ovh-1.json").is_file()
    assert not (root / "Teardown_Fails_Only").exists()
    assert not (root / "Expected_Errors_Are_Not_Captured").exists()

    # No secret material anywhere in what was written.
    secrets = [s for s in (tmp_path / "secrets.txt").read_text().splitlines() if s]
    assert len(secrets) >= 3
    for path in (result.output_dir / "artifacts").rglob("*.json"):
        text = path.read_text()
        assert not any(secret in text for secret in secrets), path
        assert find_secret_material(json.loads(text)) == [], path


@pytest.mark.parametrize("where", ["no target"])
def test_failure_before_open_target_captures_nothing(run_robot: Any, where: str) -> None:
    suite = """*** Settings ***
Library    tribesqa.library.TribesLibrary

*** Test Cases ***
Fails Without Target
    Should Be Equal    1    2
    [Teardown]    Close Target
"""
    result = run_robot(suite, name="no-target")
    assert result.suite.tests[0].message == "1 != 2"
    assert not (result.output_dir / "artifacts").exists()
