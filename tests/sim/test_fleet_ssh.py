"""Robot Framework's SSHLibrary against a simulated node: generations and the plugin over SSH."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fleetkit import JoinedCluster
from SSHLibrary import SSHLibrary

pytestmark = pytest.mark.timeout(60)

NODE = "ovh-1"
READLINK = "readlink -f ${TRIBES_ROOT:-}/run/current-system"
CURL = "curl -fsS http://127.0.0.1:${TRIBES_LOCAL_PORT:-4000}/plugins-api/supertest/health"


@pytest.fixture
def ssh(cluster: JoinedCluster) -> Iterator[SSHLibrary]:
    record = cluster.fleet.node(NODE)
    lib = SSHLibrary(timeout="10s", prompt="$ ")
    lib.open_connection(record["ssh"]["host"], port=record["ssh"]["port"], alias=NODE)
    lib.login_with_public_key(record["ssh"]["user"], cluster.fleet.descriptor["ssh_key_file"])
    yield lib
    lib.close_all_connections()


def test_sshlibrary_sees_generations_and_the_plugin(
    cluster: JoinedCluster, ssh: SSHLibrary
) -> None:
    fleet = cluster.fleet
    stdout, rc = ssh.execute_command("echo $TRIBES_NODE $TRIBES_LOCAL_PORT", return_rc=True)
    assert rc == 0
    assert stdout.split() == [NODE, str(fleet.plugin_port(NODE))]

    running = fleet.call(NODE, "generation.status")["running"]
    stdout, rc = ssh.execute_command(READLINK, return_rc=True)
    assert rc == 0 and stdout.strip().endswith(running), (stdout, running)

    stdout, stderr, rc = ssh.execute_command(CURL, return_stderr=True, return_rc=True)
    assert rc == 22, (stdout, stderr)
    assert "404" in stderr

    fleet.install_supertest([NODE])
    upgraded = fleet.call(NODE, "generation.status")["running"]
    assert upgraded != running
    stdout, rc = ssh.execute_command(READLINK, return_rc=True)
    assert rc == 0 and stdout.strip().endswith(upgraded), (stdout, upgraded)
    stdout, rc = ssh.execute_command(CURL, return_rc=True)
    assert rc == 0, stdout
    health = json.loads(stdout)
    assert health["status"] == "ok" and health["plugin"] == "supertest"

    # The interactive shell SSHLibrary opened answers at the `$ ` prompt too.
    ssh.write("echo node=$TRIBES_NODE")
    assert f"node={NODE}" in ssh.read_until_prompt()
