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
