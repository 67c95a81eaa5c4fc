"""Real-fleet SSH against simulated Guix nodes: root logins, the node's own view, herd, curl,
ProxyCommand, a jump host, ssh-agent, a key passphrase, known_hosts, plain OpenSSH."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tribes_sim.fleet import start_fleet, stop_fleet
from tribes_sim.node.nodeview import namespaces_available
from tribesqa.clients.ssh_client import SshCommandError, SshEndpointInfo, SshOptions, SshSessions

pytestmark = pytest.mark.timeout(120)

PASSPHRASE = "guix-node passphrase 42"

# A ProxyCommand without nc or socat: stdin/stdout <-> TCP host:port; it leaves a marker file.
PROXY = """
import os, socket, sys, threading
host, port, marker = sys.argv[1], int(sys.argv[2]), sys.argv[3]
open(marker, "a").write(f"{host}:{port}\\n")
conn = socket.create_connection((host, port))
def up():
    while data := os.read(0, 65536):
        conn.sendall(data)
    conn.shutdown(socket.SHUT_WR)
threading.Thread(target=up, daemon=True).start()
while data := conn.recv(65536):
    os.write(1, data)
"""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    directory = tmp_path_factory.mktemp("guixssh") / "fleet"
    descriptor = start_fleet(directory, nodes=2)
    try:
        yield descriptor
    finally:
        stop_fleet(directory)


def _node(fleet: dict, index: int = 0) -> dict:
    return fleet["nodes"][index]


def _endpoint(node: dict, user: str = "root", pinned: bool = True) -> SshEndpointInfo:
    fingerprint = node["host_key_fingerprint"] if pinned else None
    return SshEndpointInfo(node["ssh"]["host"], node["ssh"]["port"], user, fingerprint)


def _run(options: SshOptions, node: dict, command: str, **endpoint: object) -> str:
    sessions = SshSessions(options.key_file, 20.0, options=options)
    try:
        result = sessions.run(node["name"], _endpoint(node, **endpoint), command, purpose="probe")
    finally:
        sessions.close()
    assert result.rc == 0, (result.stdout, result.stderr)
    return result.stdout


def _root_dir(fleet: dict, node: dict) -> Path:
    return Path(fleet["fleet_dir"]) / "nodes" / node["name"] / "root"


def _on_disk_running(fleet: dict, node: dict) -> str:
    link = _root_dir(fleet, node) / "run" / "current-system"
    target = os.readlink(link)
    return (
        target
        if target.startswith("/")
        else "/"
        + str((link.parent / target).resolve().relative_to(_root_dir(fleet, node).resolve()))
    )


@pytest.fixture
def options(fleet: dict) -> SshOptions:
    return SshOptions(key_file=Path(fleet["ssh_key_file"]), timeout_s=10)


needs_view = pytest.mark.skipif(
    not namespaces_available(), reason="no mount namespaces here: sessions see the machine"
)


@pytest.mark.req("SSHR-1")
def test_root_and_the_service_account_log_in(fleet: dict, options: SshOptions) -> None:
    node = _node(fleet)
    assert _run(options, node, "echo $USER $TRIBES_NODE") == f"root {node['name']}\n"
    assert _run(options, node, "echo $USER", user="tribes") == "tribes\n"


@needs_view
@pytest.mark.req("SSHR-4")
def test_a_session_sees_the_node_as_a_guix_node(fleet: dict, options: SshOptions) -> None:
    node = _node(fleet)
    running = _on_disk_running(fleet, node)
    out = _run(
        options,
        node,
        "readlink /run/current-system; readlink -f /var/guix/profiles/system; ls /; "
        f"test -e {fleet['fleet_dir']}/legion.json && echo legion-visible; "
        f"test -e {fleet['fleet_dir']}/nodes/{_node(fleet, 1)['name']} && echo peer-visible; "
        "echo $HOME",
    ).splitlines()
    assert out[0] == running and out[1] == running
    listing = out[2:-1]
    assert {"gnu", "run", "var", "etc", "usr", "tmp"} <= set(listing)
    assert "legion-visible" not in out and "peer-visible" not in out
    assert out[-1] == "/root"


@needs_view
@pytest.mark.req("SSHR-4")
def test_herd_drives_the_service_and_curl_reaches_the_plugin_api(
    fleet: dict, options: SshOptions
) -> None:
    node = _node(fleet, 1)
    sessions = SshSessions(options.key_file, 30.0, options=options)
    endpoint = _endpoint(node)
    try:
        status = sessions.run(node["name"], endpoint, "herd status tribes", purpose="status")
        assert status.rc == 0 and "It is running." in status.stdout
        transport = sessions._clients[node["name"]].get_transport()
        restart = sessions.run(node["name"], endpoint, "herd restart tribes", purpose="restart")
        assert restart.rc == 0, restart.stderr
        assert "Service tribes has been started." in restart.stdout
        # The node's sshd is not the service: the same connection carries on.
        after = sessions.run(node["name"], endpoint, "herd status tribes", purpose="status")
        assert sessions._clients[node["name"]].get_transport() is transport
        assert "It is running." in after.stdout
        curl = sessions.run(
            node["name"],
            endpoint,
            "curl -sS -o /dev/null -w '%{http_code}' "
            "http://127.0.0.1:${TRIBES_LOCAL_PORT:-4000}/plugins-api/supertest/health",
            purpose="curl",
        )
        assert curl.stdout in ("200", "404"), (curl.stdout, curl.stderr)  # an HTTP answer
        unknown = sessions.run(node["name"], endpoint, "herd restart nginx", purpose="unknown")
        assert unknown.rc == 2 and "service 'nginx' could not be found" in unknown.stderr
    finally:
        sessions.close()


@pytest.mark.req("SSHR-3")
def test_a_proxy_command_carries_the_connection(
    fleet: dict, options: SshOptions, tmp_path: Path
) -> None:
    (tmp_path / "proxy.py").write_text(PROXY)
    marker = tmp_path / "used"
    command = f"{sys.executable} {tmp_path / 'proxy.py'} %h %p {marker}"
    node = _node(fleet)
    assert _run(replace(options, proxy_command=command), node, "echo via") == "via\n"
    assert marker.read_text() == f"{node['ssh']['host']}:{node['ssh']['port']}\n"


@pytest.mark.req("SSHR-3")
def test_a_jump_host_carries_the_connection(fleet: dict, options: SshOptions) -> None:
    jump, target = _node(fleet, 0), _node(fleet, 1)
    known = Path(fleet["fleet_dir"]) / "jump_known_hosts"
    jump_key = Path(fleet["fleet_dir"]) / "nodes" / jump["name"] / "ssh" / "host_ed25519.pub"
    kind, body = jump_key.read_text().split()[:2]
    known.write_text(f"[{jump['ssh']['host']}]:{jump['ssh']['port']} {kind} {body}\n")
    spec = f"root@{jump['ssh']['host']}:{jump['ssh']['port']}"
    jumping = replace(options, proxy_jump=spec, known_hosts_file=known)
    assert _run(jumping, target, "echo $TRIBES_NODE") == f"{target['name']}\n"
    # The jump host's key is checked too: unknown to known_hosts, it is refused.
    known.write_text("")
    with pytest.raises(SshCommandError, match=r"jump host .*unknown SSH host key SHA256:"):
        _run(jumping, target, "true")


@pytest.mark.req("SSHR-2")
def test_known_hosts_strict_refuses_then_accept_new_records(
    fleet: dict, options: SshOptions, tmp_path: Path
) -> None:
    node = _node(fleet)
    known = tmp_path / "known_hosts"
    strict = replace(options, known_hosts_file=known)
    with pytest.raises(SshCommandError) as caught:
        _run(strict, node, "true", pinned=False)
    assert str(caught.value).startswith(
        f"node {node['name']}: unknown SSH host key {node['host_key_fingerprint']} at "
    )
    assert _run(replace(strict, host_key_policy="accept-new"), node, "echo ok", pinned=False)
    assert known.read_text().startswith(f"[{node['ssh']['host']}]:{node['ssh']['port']} ")
    assert _run(strict, node, "echo ok", pinned=False) == "ok\n"


@pytest.mark.req("SSHR-3")
def test_a_passphrase_protected_key_logs_in_and_the_passphrase_is_never_shown(
    fleet: dict, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed (needed to encrypt a key copy)")
    key = tmp_path / "encrypted"
    shutil.copy(fleet["ssh_key_file"], key)
    key.chmod(0o600)
    subprocess.run(
        ["ssh-keygen", "-q", "-p", "-N", PASSPHRASE, "-P", "", "-f", str(key)], check=True
    )
    node = _node(fleet)
    with caplog.at_level(logging.DEBUG):
        good = SshOptions(key_file=key, passphrase=PASSPHRASE, timeout_s=10)
        assert _run(good, node, "echo in") == "in\n"
        with pytest.raises(SshCommandError) as caught:
            _run(replace(good, passphrase="wrong " + PASSPHRASE), node, "true")
    assert f"node {node['name']}: SSH login as root@" in str(caught.value)
    assert PASSPHRASE not in str(caught.value) and PASSPHRASE not in caplog.text
    assert PASSPHRASE not in repr(good)


@pytest.mark.req("SSHR-3")
def test_ssh_agent_keys_log_in(
    fleet: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("ssh-agent") is None or shutil.which("ssh-add") is None:
        pytest.skip("ssh-agent/ssh-add are not installed")
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if sock.exists():
                break
            subprocess.run(["sleep", "0.05"], check=True)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", fleet["ssh_key_file"]], env=env, check=True, capture_output=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        agent_only = SshOptions(key_file=None, allow_agent=True, timeout_s=10)
        assert _run(agent_only, _node(fleet), "echo agent") == "agent\n"
        with pytest.raises(SshCommandError, match="no SSH key configured"):
            _run(replace(agent_only, allow_agent=False), _node(fleet), "true")
    finally:
        agent.terminate()
        agent.wait()


@needs_view
@pytest.mark.req("SSHR-4")
def test_plain_openssh_prints_the_running_generation(fleet: dict, tmp_path: Path) -> None:
    if shutil.which("ssh") is None:
        pytest.skip("the OpenSSH client (ssh) is not installed")
    node = _node(fleet)
    key = tmp_path / "key"
    shutil.copy(fleet["ssh_key_file"], key)
    key.chmod(0o600)
    done = subprocess.run(
        [
            "ssh",
            "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no",
            "-o", f"UserKnownHostsFile={tmp_path / 'known_hosts'}",
            "-o", "LogLevel=ERROR",
            "-i", str(key),
            "-p", str(node["ssh"]["port"]),
            f"root@{node['ssh']['host']}",
            "readlink /run/current-system",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == _on_disk_running(fleet, node) + "\n"


@pytest.mark.req("SSHR-1")
def test_a_user_without_the_key_is_refused(fleet: dict, options: SshOptions) -> None:
    with pytest.raises(SshCommandError, match=r"SSH login as nobody@127\.0\.0\.1:\d+ failed"):
        _run(options, _node(fleet), "true", user="nobody")


@needs_view
@pytest.mark.req("SSHR-4")
def test_herd_stop_stops_the_node_and_herd_start_says_it_runs(
    fleet: dict, options: SshOptions
) -> None:
    from tribes_sim.fleet import LegionClient

    node = _node(fleet, 1)
    assert "already running" in _run(options, node, "herd start tribes")
    assert "has been stopped" in _run(options, node, "herd stop tribes")
    admin = httpx_get_until_down(node["admin_url"])
    assert admin == "down"
    client = LegionClient(fleet["legion_url"])
    try:
        client.nemesis("restart", node=node["name"])
    finally:
        client.close()
    assert _run(options, node, "herd status").splitlines() == ["Started:", " + tribes"]


def httpx_get_until_down(admin_url: str) -> str:
    """Poll the node's /healthz until it stops answering (the stop runs in the background)."""
    import time

    import httpx

    from tribes_sim.loopback_tls import client_tls_context

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{admin_url}/healthz", timeout=2, verify=client_tls_context())
        except httpx.HTTPError:
            return "down"
        time.sleep(0.1)
    return "still up"
