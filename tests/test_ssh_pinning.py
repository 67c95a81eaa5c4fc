"""SSH sessions are pinned to the host key Legion recorded for the node."""

from __future__ import annotations

from pathlib import Path

import pytest

from tribes_sim.fleet import start_fleet, stop_fleet
from tribesqa.clients.ssh_client import SshCommandError, SshEndpointInfo, SshSessions


@pytest.fixture(scope="module")
def one_node_fleet(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    directory = tmp_path_factory.mktemp("pinning") / "fleet"
    descriptor = start_fleet(directory, nodes=1)
    try:
        yield descriptor
    finally:
        stop_fleet(directory)


def _endpoint(node: dict, fingerprint: str | None) -> SshEndpointInfo:
    return SshEndpointInfo(node["ssh"]["host"], node["ssh"]["port"], "tribes", fingerprint)


def test_recorded_host_key_is_accepted(one_node_fleet: dict) -> None:
    node = one_node_fleet["nodes"][0]
    sessions = SshSessions(Path(one_node_fleet["ssh_key_file"]), 10.0)
    try:
        result = sessions.run(
            node["name"],
            _endpoint(node, node["host_key_fingerprint"]),
            "echo $TRIBES_NODE",
            purpose="probe",
        )
    finally:
        sessions.close()
    assert result.stdout.strip() == node["name"]


def test_other_host_key_is_refused(one_node_fleet: dict) -> None:
    node = one_node_fleet["nodes"][0]
    sessions = SshSessions(Path(one_node_fleet["ssh_key_file"]), 10.0)
    forged = "SHA256:" + "A" * 43
    try:
        with pytest.raises(SshCommandError, match=r"not the one Legion recorded") as caught:
            sessions.run(node["name"], _endpoint(node, forged), "echo hi", purpose="probe")
    finally:
        sessions.close()
    assert node["name"] in str(caught.value)


def test_commands_share_one_connection_and_keep_streams_apart(one_node_fleet: dict) -> None:
    node = one_node_fleet["nodes"][0]
    endpoint = _endpoint(node, node["host_key_fingerprint"])
    sessions = SshSessions(Path(one_node_fleet["ssh_key_file"]), 10.0)
    try:
        first = sessions.run(node["name"], endpoint, "echo out; echo err >&2; exit 4", purpose="p")
        transport = sessions._clients[node["name"]].get_transport()
        second = sessions.run(node["name"], endpoint, "cat", purpose="stdin is empty")
        assert sessions._clients[node["name"]].get_transport() is transport
        assert sessions.connected_nodes() == [node["name"]]
    finally:
        sessions.close()
    assert (first.stdout, first.stderr, first.rc) == ("out\n", "err\n", 4)
    assert (second.stdout, second.rc) == ("", 0)
    # Robot logs the repr of an assigned result: sizes only, never the output.
    assert (
        repr(first) == f"CommandResult(node={node['name']}, rc=4, stdout=4 chars, stderr=4 chars)"
    )


def test_a_command_that_outlives_its_timeout_fails_naming_node_and_purpose(
    one_node_fleet: dict,
) -> None:
    node = one_node_fleet["nodes"][0]
    endpoint = _endpoint(node, node["host_key_fingerprint"])
    sessions = SshSessions(Path(one_node_fleet["ssh_key_file"]), 10.0)
    try:
        with pytest.raises(SshCommandError) as caught:
            sessions.run(node["name"], endpoint, "sleep 5", purpose="slow probe", timeout_s=0.5)
        # The next command gets a fresh connection and runs.
        after = sessions.run(node["name"], endpoint, "echo ok", purpose="probe")
    finally:
        sessions.close()
    assert (
        str(caught.value) == f"node {node['name']}: slow probe: SSH command timed out after 0.5 s"
    )
    assert after.stdout == "ok\n"


def test_a_refused_connection_names_the_node_and_the_address(one_node_fleet: dict) -> None:
    node = one_node_fleet["nodes"][0]
    sessions = SshSessions(Path(one_node_fleet["ssh_key_file"]), 5.0)
    closed = SshEndpointInfo("127.0.0.1", 1, "tribes", None)
    with pytest.raises(
        SshCommandError, match=r"SSH login as tribes@127\.0\.0\.1:1 failed"
    ) as caught:
        sessions.run(node["name"], closed, "true", purpose="probe")
    assert str(caught.value).startswith(f"node {node['name']}: ")
