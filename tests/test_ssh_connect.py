"""How the runner opens SSH connections to real nodes: settings, routes, passphrases, host keys."""

from __future__ import annotations

import logging
from pathlib import Path

import paramiko
import pytest

from tribesqa.clients.ssh_connect import (
    HostKeyCheck,
    SshCommandError,
    SshEndpointInfo,
    SshOptions,
    expand_tokens,
    key_fingerprint,
    options_from_settings,
    parse_jump,
    resolve_route,
)
from tribesqa.config import SshSettings, TargetFile
from tribesqa.contract import ContractError, parse_payload

SECRET = "correct horse battery staple"


@pytest.fixture(scope="module")
def host_key() -> paramiko.PKey:
    return paramiko.ECDSAKey.generate()


def _endpoint(fingerprint: str | None = None) -> SshEndpointInfo:
    return SshEndpointInfo("10.0.0.5", 2222, "root", fingerprint)


def _target(ssh: dict) -> dict:
    return {
        "TARGET": {
            "name": "t",
            "kind": "real",
            "admin_key": {"env": "X"},
            "ssh": ssh,
            "real": {"legion": {"command": ["legion"]}},
        }
    }


@pytest.mark.req("SSHR-3")
@pytest.mark.parametrize(
    ("ssh", "words"),
    [
        ({"proxy_command": "nc %h %p", "proxy_jump": "bastion"}, "proxy_command or proxy_jump"),
        ({"proxy_jump": "a,b"}, "only one jump host"),
        ({"host_key_policy": "yes"}, "host_key_policy"),
        ({"key_passphrase_env": "A", "key_passphrase_file": "/f"}, "key_passphrase_env or"),
        ({"prompt": "$ "}, "prompt"),
    ],
)
def test_bad_ssh_settings_are_named_by_config_validate(ssh: dict, words: str) -> None:
    with pytest.raises(ContractError) as caught:
        parse_payload(TargetFile, _target(ssh), source="fleet.yaml")
    assert words in str(caught.value) and "ssh" in str(caught.value)


def test_ssh_settings_default_to_root_and_strict_host_keys() -> None:
    settings = SshSettings()
    assert (settings.user, settings.host_key_policy, settings.allow_agent) == (
        "root",
        "strict",
        False,
    )


def test_the_passphrase_comes_from_the_environment_or_a_file_and_is_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QA_PASS", SECRET)
    options = options_from_settings(SshSettings(key_passphrase_env="QA_PASS"), None)
    assert options.passphrase == SECRET
    assert SECRET not in repr(options) and SECRET not in str(options)
    file = tmp_path / "pass"
    file.write_text(SECRET + "\n")
    from_file = options_from_settings(SshSettings(key_passphrase_file=str(file)), None)
    assert from_file.passphrase == SECRET


def test_a_missing_passphrase_source_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QA_PASS", raising=False)
    with pytest.raises(SshCommandError, match="environment variable QA_PASS is not set"):
        options_from_settings(SshSettings(key_passphrase_env="QA_PASS"), None)
    with pytest.raises(SshCommandError, match="key_passphrase_file: cannot read /nonexistent/p"):
        options_from_settings(SshSettings(key_passphrase_file="/nonexistent/p"), None)


def test_settings_become_options_with_placeholders_filled(tmp_path: Path) -> None:
    settings = SshSettings(
        timeout_s=7,
        proxy_command="tailscale nc %h %p",
        known_hosts_file="{tmp}/kh",
        config_file="{tmp}/cfg",
        host_key_policy="accept-new",
        allow_agent=True,
    )
    options = options_from_settings(
        settings, Path("/k"), lambda text: text.replace("{tmp}", str(tmp_path))
    )
    assert options.timeout_s == 7 and options.allow_agent and options.key_file == Path("/k")
    assert options.known_hosts_file == tmp_path / "kh" and options.config_file == tmp_path / "cfg"
    assert options.host_key_policy == "accept-new"
    assert options_from_settings(SshSettings(), None).known_hosts_file is None
    route = resolve_route("n1", _endpoint(), options_from_settings(SshSettings(), None))
    assert route.known_hosts_file == Path("~/.ssh/known_hosts").expanduser()


def test_proxy_command_tokens_are_openssh_s() -> None:
    assert (
        expand_tokens("nc %h %p # %r on %n 100%%", host="h", port=22, user="u", node="n1")
        == "nc h 22 # u on n1 100%"
    )


def test_jump_specs() -> None:
    assert parse_jump("ops@bastion:2200", "root") == ("ops", "bastion", 2200)
    assert parse_jump("bastion", "root") == ("root", "bastion", 22)
    with pytest.raises(SshCommandError, match="port 'x' is not a number"):
        parse_jump("bastion:x", "root")


def test_the_openssh_config_file_routes_a_node_by_name_or_address(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(
        "Host node-5\n  HostName 100.64.0.5\n  Port 2200\n  ProxyCommand tailscale nc %h %p\n"
        "  UserKnownHostsFile ~/tailnet_hosts\n  IdentityFile /keys/tailnet\n"
        "Host 10.0.0.*\n  ProxyJump ops@bastion\n"
        "Host *\n  ServerAliveInterval 30\n"
    )
    options = SshOptions(config_file=config)
    by_name = resolve_route("node-5", _endpoint(), options)
    assert (by_name.host, by_name.port) == ("100.64.0.5", 2200)
    assert by_name.proxy_command == "tailscale nc 100.64.0.5 2200"
    assert by_name.key_files == ("/keys/tailnet",)
    assert by_name.known_hosts_file == Path("~/tailnet_hosts").expanduser()
    by_address = resolve_route("node-198", _endpoint(), options)
    assert (by_address.host, by_address.port, by_address.proxy_jump) == (
        "10.0.0.5",
        2222,
        "ops@bastion",
    )
    # The target's own settings win over the file.
    mine = SshOptions(config_file=config, key_file=Path("/mine"), proxy_command="nc %h %p", port=22)
    route = resolve_route("node-5", _endpoint(), mine)
    assert route.key_files == ("/mine",) and route.proxy_command == "nc 100.64.0.5 22"
    assert route.port == 22


def _check(policy: str, endpoint: SshEndpointInfo, known_hosts: Path | None) -> HostKeyCheck:
    options = SshOptions(known_hosts_file=known_hosts, host_key_policy=policy)
    return HostKeyCheck("node-198", endpoint, options)


@pytest.mark.req("SSHR-2")
def test_legion_s_fingerprint_pins_the_key(host_key: paramiko.PKey) -> None:
    print_ = key_fingerprint(host_key)
    _check("strict", _endpoint(print_), None).missing_host_key(None, "[10.0.0.5]:2222", host_key)
    with pytest.raises(SshCommandError, match="not the one Legion recorded") as caught:
        _check("accept-new", _endpoint("SHA256:other"), None).missing_host_key(
            None, "[10.0.0.5]:2222", host_key
        )
    assert "node node-198" in str(caught.value) and print_ in str(caught.value)


@pytest.mark.req("SSHR-2")
def test_an_unknown_key_is_refused_naming_node_and_fingerprint(
    host_key: paramiko.PKey, tmp_path: Path
) -> None:
    with pytest.raises(SshCommandError) as caught:
        _check("strict", _endpoint(), tmp_path / "none").missing_host_key(
            None, "[10.0.0.5]:2222", host_key
        )
    message = str(caught.value)
    assert message.startswith("node node-198: unknown SSH host key " + key_fingerprint(host_key))
    assert "host_key_policy: accept-new" in message


@pytest.mark.req("SSHR-2")
def test_known_hosts_accepts_its_key_and_refuses_a_changed_one(
    host_key: paramiko.PKey, tmp_path: Path
) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(f"[10.0.0.5]:2222 {host_key.get_name()} {host_key.get_base64()}\n")
    _check("strict", _endpoint(), known).missing_host_key(None, "[10.0.0.5]:2222", host_key)
    other = paramiko.ECDSAKey.generate()
    with pytest.raises(SshCommandError, match="differs from the one in") as caught:
        _check("accept-new", _endpoint(), known).missing_host_key(None, "[10.0.0.5]:2222", other)
    assert key_fingerprint(other) in str(caught.value)


def test_accept_new_records_a_new_key(
    host_key: paramiko.PKey, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    known = tmp_path / "ssh" / "known_hosts"
    with caplog.at_level(logging.INFO):
        _check("accept-new", _endpoint(), known).missing_host_key(None, "[10.0.0.5]:2222", host_key)
    assert known.read_text() == (f"[10.0.0.5]:2222 {host_key.get_name()} {host_key.get_base64()}\n")
    assert key_fingerprint(host_key) in caplog.text
    # From now on the strict policy knows it.
    _check("strict", _endpoint(), known).missing_host_key(None, "[10.0.0.5]:2222", host_key)


@pytest.mark.req("SSHR-3")
def test_timeout_s_bounds_a_node_that_never_answers(tmp_path: Path) -> None:
    import socket
    import time

    from tribesqa.clients.ssh_client import SshSessions

    key = tmp_path / "key"
    paramiko.ECDSAKey.generate().write_private_key_file(str(key))
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the TCP connection, never sends an SSH banner
    port = silent.getsockname()[1]
    sessions = SshSessions(options=SshOptions(key_file=key, timeout_s=0.5))
    started = time.monotonic()
    try:
        with pytest.raises(SshCommandError) as caught:
            sessions.run("node-5", SshEndpointInfo("127.0.0.1", port, "root"), "true", purpose="p")
    finally:
        sessions.close()
        silent.close()
    assert time.monotonic() - started < 5
    assert str(caught.value).startswith(f"node node-5: SSH login as root@127.0.0.1:{port} failed")


def test_the_doctor_accepts_an_agent_instead_of_a_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from tribesqa.running.doctor import DoctorReport, _check_ssh_key

    monkeypatch.setenv("SSH_AUTH_SOCK", str(tmp_path / "agent.sock"))
    report = DoctorReport(tmp_path / "t.yaml")
    target = SimpleNamespace(
        ssh_key_file=lambda: None, config=SimpleNamespace(ssh=SshSettings(allow_agent=True))
    )
    assert _check_ssh_key(report, target) is None  # type: ignore[arg-type]
    assert [(c.ok, c.detail) for c in report.target_checks] == [
        (True, "no key file: ssh-agent's keys (SSH_AUTH_SOCK set)")
    ]
    without = DoctorReport(tmp_path / "t.yaml")
    target.config.ssh = SshSettings()
    _check_ssh_key(without, target)  # type: ignore[arg-type]
    assert without.target_checks[0].ok is False
