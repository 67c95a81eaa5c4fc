"""``tribes-qa doctor --target FILE``: what is wrong with a target, before a two-hour run.

Read-only: the target file is validated, the ``setup_command`` (if any) runs first and the
``teardown_command`` after; Legion is asked ``list`` only; each node gets ``GET /healthz``, a
signed ``node.info``, SSH ``true`` and a ``GET`` of the plugin's health path (see
``doctor_checks``). Nothing is provisioned, no fault injected, no node changed. The nodes
checked: the ROSTER's, or (without a roster) every node Legion lists as ready. Node checks run
concurrently through ``fan_out``; each call is bounded by the profile's ``management_call``
timeout (SSH also by ``TARGET.ssh.timeout_s``).

A ``kind: sim`` target needs no doctor: every suite starts a private simulated fleet of its
own, so only the file is checked. Exit codes: 0 every check passed, 1 a check failed (the
table names node and check), 2 usage, 3 the file is missing or unreadable.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from tribesqa.clients.keys import AdminKey
from tribesqa.clients.ssh_client import SshEndpointInfo, SshOptions, SshSessions
from tribesqa.config import (
    ConfigFileError,
    RosterEntry,
    TargetConfig,
    TargetKind,
    TimeoutProfile,
    fill_template,
    load_timeouts,
    validate_target_file,
)
from tribesqa.contract import ContractError, LegionNodeStatus, NodeRecord
from tribesqa.fan_out import fan_out
from tribesqa.running.doctor_checks import (
    NODE_CHECKS,
    Check,
    check_healthz,
    check_legion_record,
    check_node_info,
    check_plugin_transport,
    check_ssh,
    judge_skew,
)
from tribesqa.targets.base import LegionError
from tribesqa.targets.real import CliLegion, RealTarget
from tribesqa.targets.transports import SshPluginTransport

TARGET = "target"


@dataclass
class DoctorReport:
    """Target-wide checks (config, setup, Legion, keys, teardown) and a row of checks per node."""

    file: Path
    title: str = ""
    target_checks: list[Check] = field(default_factory=list)
    nodes: dict[str, list[Check]] = field(default_factory=dict)

    def add(self, name: str, ok: bool | None, detail: str) -> Check:
        check = Check(TARGET, name, ok, detail)
        self.target_checks.append(check)
        return check

    def all_checks(self) -> list[Check]:
        return self.target_checks + [c for row in self.nodes.values() for c in row]

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.all_checks() if check.ok is False]

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0


def diagnose(file: Path) -> DoctorReport:
    """Run every check for the target file ``file``; raises ConfigFileError when unreadable."""
    report = DoctorReport(file)
    try:
        parsed = validate_target_file(file)
    except ContractError as error:
        problems = "; ".join(f"{p.path}: {p.reason}" for p in error.problems)
        report.add("config", False, f"invalid: {problems}")
        return report
    config = parsed.TARGET
    if config is None:
        report.add("config", False, "the file defines no TARGET: the doctor checks a target")
        return report
    report.title = f"target {config.name} ({config.kind.value})"
    roster_text = f"; roster of {len(parsed.ROSTER)} node(s)" if parsed.ROSTER else ""
    report.add("config", True, f"valid{roster_text}")
    if config.kind is TargetKind.SIM:
        report.add(
            "fleet",
            None,
            "kind sim: every suite starts a private simulated fleet; nothing to check before a run",
        )
        return report
    try:
        timeouts = load_timeouts(config.timeouts_profile)
    except (ConfigFileError, ContractError) as error:
        report.add("timeouts", False, str(error))
        return report
    _diagnose_real(report, config, parsed.ROSTER, timeouts)
    return report


def _diagnose_real(
    report: DoctorReport,
    config: TargetConfig,
    roster: list[RosterEntry] | None,
    timeouts: TimeoutProfile,
) -> None:
    target = RealTarget(config, timeouts, Path(tempfile.gettempdir()))
    settings = target.settings
    try:
        try:
            target.open("doctor")
        except (AssertionError, OSError, subprocess.SubprocessError) as error:
            report.add("setup", False, str(error))
            return
        if settings.setup_command:
            report.add("setup", True, "setup_command ran")
        records = _check_legion(report, target, timeouts)
        key = _check_admin_key(report, target)
        key_file = _check_ssh_key(report, target)
        names = _node_names(roster, records)
        _check_nodes(report, target, names, records, key, key_file, timeouts)
    finally:
        try:
            target.close()
        except (AssertionError, OSError, subprocess.SubprocessError) as error:
            report.add("teardown", False, str(error))
        else:
            if settings.teardown_command:
                report.add("teardown", True, "teardown_command ran")


def _check_legion(
    report: DoctorReport, target: RealTarget, timeouts: TimeoutProfile
) -> dict[str, NodeRecord] | None:
    legion = CliLegion(target.settings, target.values, timeouts.management_call)
    shown = " ".join(shlex.quote(word) for word in legion.command_for("list"))
    try:
        records = legion.list_nodes()
    except (LegionError, ContractError) as error:
        text = str(error)
        report.add("legion", False, text if "command:" in text else f"{text} (command: {shown})")
        return None
    except TypeError:
        report.add("legion", False, f"`{shown}` printed JSON that is not a list of node records")
        return None
    ready = sum(1 for r in records if r.status is LegionNodeStatus.READY)
    report.add("legion", True, f"`{shown}` listed {len(records)} node(s), {ready} ready")
    return {record.name: record for record in records}


def _check_admin_key(report: DoctorReport, target: RealTarget) -> AdminKey | None:
    source = target.config.admin_key
    assert source is not None  # a real target's file must name it (TargetConfig)
    if source.env and os.environ.get(source.env, "").strip():
        where = f"environment variable {source.env}"
    else:
        file = fill_template(source.file, **target.values) if source.file else None
        where = f"file {file}" if file else f"environment variable {source.env}"
    try:
        key = target.admin_key()
    except (ValueError, AssertionError) as error:  # KeyLoadError is a ValueError
        report.add("admin key", False, f"{error} (from {where})")
        return None
    report.add("admin key", True, f"loaded from {where}; pubkey {key.pubkey_hex[:16]}…")
    return key


def _check_ssh_key(report: DoctorReport, target: RealTarget) -> Path | None:
    path = target.ssh_key_file()
    if path is None and target.config.ssh.allow_agent:
        agent = "set" if os.environ.get("SSH_AUTH_SOCK") else "NOT set"
        report.add("ssh key", True, f"no key file: ssh-agent's keys (SSH_AUTH_SOCK {agent})")
        return None
    if path is None:
        ssh = target.config.ssh
        missing = f"environment variable {ssh.key_env} is not set" if ssh.key_env else "none set"
        report.add("ssh key", False, f"no SSH key file (TARGET.ssh key_file / key_env: {missing})")
        return None
    if not path.is_file():
        report.add("ssh key", False, f"SSH key file {path} does not exist")
        return None
    report.add("ssh key", True, f"file {path}")
    return path


def _node_names(
    roster: list[RosterEntry] | None, records: dict[str, NodeRecord] | None
) -> list[str]:
    if roster:
        return [entry.node for entry in roster]
    if records is None:
        return []
    return [name for name, r in records.items() if r.status is LegionNodeStatus.READY]


def _check_nodes(
    report: DoctorReport,
    target: RealTarget,
    names: list[str],
    records: dict[str, NodeRecord] | None,
    key: AdminKey | None,
    key_file: Path | None,
    timeouts: TimeoutProfile,
) -> None:
    config = target.config
    call_timeout = timeouts.management_call
    ssh_timeout = min(call_timeout, config.ssh.timeout_s)
    try:
        options = replace(target.ssh_options(), timeout_s=ssh_timeout)
    except AssertionError as error:  # e.g. the key passphrase's variable is not set
        report.add("ssh options", False, str(error))
        options = SshOptions(key_file=key_file, timeout_s=ssh_timeout)
    sessions = SshSessions(key_file, ssh_timeout, options=options)

    def endpoint_of(name: str) -> SshEndpointInfo:
        record = (records or {})[name]
        if record.ssh is None:
            raise AssertionError(f"node {name}: Legion reports no SSH endpoint")
        return SshEndpointInfo(
            host=record.ssh.host,
            port=config.ssh.port or record.ssh.port,
            user=config.ssh.user or record.ssh.user,
            host_key_fingerprint=record.host_key_fingerprint,
        )

    plugins = SshPluginTransport(
        sessions, endpoint_of, target.node_commands()["plugin_request"], ssh_timeout
    )

    def one_node(name: str) -> list[Check]:
        if records is None:
            return _skipped(name, NODE_CHECKS, "Legion's list is not available")
        record = records.get(name)
        listed = check_legion_record(name, record, target.provisions_missing_roster_nodes)
        if not listed.ok or record is None or record.admin_url is None:
            return [listed, *_skipped(name, NODE_CHECKS[1:], "not a ready node in Legion")]
        health, probe = check_healthz(name, record.admin_url, call_timeout)
        info = check_node_info(name, record, key, call_timeout)
        if key_file is None and not config.ssh.allow_agent:
            ssh = Check(name, "ssh", None, "skipped: no SSH key file")
        else:
            ssh = check_ssh(name, sessions, endpoint_of(name), ssh_timeout)
        skew = judge_skew(name, probe, timeouts.clock_skew)
        plugin = check_plugin_transport(name, plugins, ssh.ok)
        return [listed, health, info, ssh, skew, plugin]

    try:
        rows, errors = fan_out(names, one_node)
    finally:
        sessions.close()
    for name in names:
        if name in errors:  # a check that raised instead of answering: still a named cell
            report.nodes[name] = [Check(name, c, False, errors[name]) for c in NODE_CHECKS]
        else:
            report.nodes[name] = rows[name]


def _skipped(name: str, checks: tuple[str, ...], why: str) -> list[Check]:
    return [Check(name, check, None, f"skipped: {why}") for check in checks]
