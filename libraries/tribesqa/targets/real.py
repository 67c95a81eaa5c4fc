"""The real-fleet strategy: Legion through its CLI (JSON on stdout), nodes through SSH.

``variables/sim-as-real.yaml`` points this strategy at the simulator (its ``tribes-sim-legion``
command line and the simulated nodes' SSH servers), so the code path of a real fleet runs in
``make test``.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tribesqa.clients.keys import AdminKey, KeyLoadError
from tribesqa.clients.ssh_client import SshCommandError, SshEndpointInfo, SshSessions
from tribesqa.config import (
    DEFAULT_NODE_COMMANDS,
    FaultCommand,
    RealSettings,
    TargetConfig,
    TimeoutProfile,
    fill_template,
)
from tribesqa.targets.base import LegionDriver, LegionError, Nemesis, PluginTransport, Target
from tribesqa.targets.transports import SshPluginTransport


def _fill_words(words: list[str], values: dict[str, Any]) -> list[str]:
    return [fill_template(word, **values) for word in words]


class CliLegion(LegionDriver):
    """Runs ``<command> <operation template>`` and parses its JSON output."""

    source = "Legion (CLI)"

    def __init__(self, settings: RealSettings, values: dict[str, Any], timeout_s: float) -> None:
        self.settings = settings
        self.values = values
        self.timeout_s = min(timeout_s, settings.legion.timeout_s)

    def command_for(self, operation: str, **arguments: Any) -> list[str]:
        template = self.settings.legion.operations.get(operation)
        if template is None:
            raise LegionError(
                operation,
                "not-configured",
                f"no CLI template for {operation!r} in TARGET.real.legion.operations",
            )
        words = _fill_words(self.settings.legion.command, self.values)
        tail = [fill_template(word, **self.values, **arguments) for word in shlex.split(template)]
        return words + tail

    def _run(self, operation: str, **arguments: Any) -> Any:
        argv = self.command_for(operation, **arguments)
        shown = " ".join(shlex.quote(word) for word in argv)
        try:
            completed = subprocess.run(
                argv, capture_output=True, text=True, timeout=self.timeout_s, check=False
            )
        except FileNotFoundError:
            raise LegionError(
                operation, "cli-missing", f"{argv[0]!r} not found (command: {shown})"
            ) from None
        except subprocess.TimeoutExpired:
            raise LegionError(
                operation, "cli-timeout", f"no answer after {self.timeout_s:g} s (command: {shown})"
            ) from None
        try:
            payload = json.loads(completed.stdout) if completed.stdout.strip() else None
        except ValueError:
            payload = None
        if completed.returncode != 0:
            if isinstance(payload, dict) and payload.get("error"):
                raise LegionError(operation, str(payload["error"]), str(payload.get("message", "")))
            raise LegionError(
                operation,
                f"exit-{completed.returncode}",
                f"{(completed.stderr or completed.stdout).strip()[-400:]} (command: {shown})",
            )
        if payload is None:
            raise LegionError(
                operation, "invalid-output", f"CLI printed no JSON: {completed.stdout[:200]!r}"
            )
        return payload


class CommandNemesis(Nemesis):
    """Faults as command templates: over SSH on the node (e.g. nft rules) or run locally."""

    def __init__(
        self,
        settings: RealSettings,
        values: dict[str, Any],
        sessions: Callable[[], SshSessions],
        endpoint_of: Callable[[str], SshEndpointInfo],
        node_names: Callable[[], list[str]],
        transport_of: Callable[[str], str],
        timeout_s: float,
    ) -> None:
        self.settings = settings
        self.values = values
        self.sessions = sessions
        self.endpoint_of = endpoint_of
        self.node_names = node_names
        self.transport_of = transport_of
        self.timeout_s = timeout_s

    def _fault(self, operation: str) -> FaultCommand:
        fault = self.settings.faults.get(operation)
        if fault is None:
            raise AssertionError(
                f"this target has no command for fault {operation!r} (TARGET.real.faults.{operation})"
            )
        return fault

    def _run(self, operation: str, node: str, **extra: Any) -> None:
        fault = self._fault(operation)
        command = fill_template(fault.command, **self.values, node=node, **extra)
        if fault.via == "local":
            completed = subprocess.run(
                ["/bin/sh", "-c", command],
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
                check=False,
            )
            if completed.returncode != 0:
                raise AssertionError(
                    f"node {node}: fault {operation} failed (exit {completed.returncode}): {completed.stderr.strip()[-300:]}"
                )
            return
        try:
            result = self.sessions().run(
                node,
                self.endpoint_of(node),
                command,
                purpose=f"fault {operation}",
                timeout_s=self.timeout_s,
            )
        except SshCommandError as error:
            raise AssertionError(str(error)) from None
        if result.rc != 0:
            raise AssertionError(
                f"node {node}: fault {operation} failed (exit {result.rc}): {result.stderr.strip()[-300:]}"
            )

    def partition(self, node: str, peers: list[str]) -> None:
        peers = peers or [name for name in self.node_names() if name != node]
        addresses = " ".join(self.transport_of(peer) for peer in peers)
        self._run("partition", node, peers=",".join(peers), peer_addresses=addresses)

    def heal_all(self) -> None:
        """A local heal runs once; an SSH heal runs on every node (partition rules live on
        each node, e.g. nft tables), so it must succeed where there is nothing to heal."""
        fault = self._fault("heal")
        if fault.via == "local":
            self._run("heal", node=(self.node_names() or ["-"])[0])
            return
        failures = []
        for name in self.node_names():
            try:
                self._run("heal", name)
            except AssertionError as error:
                failures.append(str(error))
        if failures:
            raise AssertionError("heal failed on some nodes: " + "; ".join(failures))

    def crash(self, node: str) -> None:
        self._run("crash", node)

    def restart(self, node: str) -> None:
        self._run("restart", node)

    def recover(self, node: str) -> None:
        """``faults.recover`` when the target has one (a crashed node whose SSH is down too),
        else ``faults.restart``."""
        self._run("recover" if "recover" in self.settings.faults else "restart", node)

    def outage(self, node: str, active: bool) -> None:
        self._run("outage_start" if active else "outage_stop", node)


class RealTarget(Target):
    kind = "real"

    def __init__(self, config: TargetConfig, timeouts: TimeoutProfile, results_dir: Path) -> None:
        super().__init__(config, timeouts, results_dir)
        assert config.real is not None
        self.settings: RealSettings = config.real
        self.values: dict[str, Any] = {}
        self._legion: CliLegion | None = None
        self._nemesis: CommandNemesis | None = None
        self.sessions_provider: Callable[[], SshSessions] | None = None
        self.endpoint_provider: Callable[[str], SshEndpointInfo] | None = None
        self.opened = False

    def open(self, label: str) -> None:
        from tribesqa.config import suite_stem
        from tribesqa.targets.sim import safe_label

        # A fresh label per open: a stale fleet from an interrupted run is never picked up again.
        self.values = {
            "label": f"{safe_label(label)}-{secrets.token_hex(3)}",
            "suite": suite_stem(label),
            "results_dir": str(self.results_dir),
            "tmp": tempfile.gettempdir(),
            "runner_pid": os.getpid(),
        }
        # Opened before the setup runs: a setup that fails half-way still gets its teardown.
        self.opened = True
        if self.settings.setup_command:
            self._local(self.settings.setup_command, "setup_command")
        self._legion = CliLegion(self.settings, self.values, self.timeouts.legion_operation)

    # -- a fleet shared by several robot processes (the per-node gate under pabot) ------------
    def shared_handle(self) -> dict[str, Any]:
        """The filled template values: another process drives the same fleet with them. From
        now on this process only attaches too (its close() runs no teardown_command)."""
        if not self.opened:
            raise AssertionError("the target is not open: nothing to share")
        self.opened = False
        return {"values": dict(self.values)}

    def attach(self, handle: dict[str, Any]) -> None:
        values = handle.get("values")
        if not isinstance(values, dict) or "label" not in values:
            raise AssertionError(f"not a shared real-target handle: {handle}")
        self.values = dict(values)
        self.opened = False
        self._legion = CliLegion(self.settings, self.values, self.timeouts.legion_operation)

    def take_ownership(self) -> None:
        """The next close() runs the teardown_command (the last process of a shared fleet)."""
        self.opened = True

    @property
    def provisions_missing_roster_nodes(self) -> bool:
        return self.settings.provision_missing_roster_nodes

    def node_commands(self) -> dict[str, str]:
        return {**DEFAULT_NODE_COMMANDS, **self.settings.node_commands}

    def bind(
        self,
        sessions: Callable[[], SshSessions],
        endpoint_of: Callable[[str], SshEndpointInfo],
        node_names: Callable[[], list[str]],
        transport_of: Callable[[str], str],
    ) -> None:
        """Give the nemesis the library's SSH sessions and node lookups (wired by the context)."""
        self._nemesis = CommandNemesis(
            self.settings,
            self.values,
            sessions,
            endpoint_of,
            node_names,
            transport_of,
            self.timeouts.ssh_command,
        )

    def _local(self, words: list[str], what: str) -> None:
        argv = _fill_words(words, self.values)
        completed = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=self.timeouts.legion_operation,
            check=False,
        )
        if completed.returncode != 0:
            raise AssertionError(
                f"target {self.config.name}: {what} failed (exit {completed.returncode}): "
                f"{(completed.stderr or completed.stdout).strip()[-400:]}"
            )

    def plugin_transport(
        self, sessions: SshSessions, endpoint_of: Callable[[str], SshEndpointInfo]
    ) -> PluginTransport:
        template = self.settings.node_commands.get(
            "plugin_request", DEFAULT_NODE_COMMANDS["plugin_request"]
        )
        return SshPluginTransport(sessions, endpoint_of, template, self.timeouts.ssh_command)

    def admin_key(self) -> AdminKey:
        source = self.config.admin_key
        assert source is not None
        file = fill_template(source.file, **self.values) if source.file else None
        env_var = source.env or "TRIBES_ADMIN_KEY"
        if source.env and os.environ.get(env_var, "").strip():
            return AdminKey.from_env(env_var)
        if file:
            return AdminKey.from_file(file)
        raise KeyLoadError(
            f"target {self.config.name}: admin key: environment variable {env_var} is not set"
        )

    def ssh_key_file(self) -> Path | None:
        ssh = self.config.ssh
        if ssh.key_env and os.environ.get(ssh.key_env):
            return Path(os.environ[ssh.key_env])
        return Path(fill_template(ssh.key_file, **self.values)) if ssh.key_file else None

    def close(self) -> None:
        if self.opened and self.settings.teardown_command:
            self.opened = False
            self._local(self.settings.teardown_command, "teardown_command")
        self.opened = False

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "legion_command": self.settings.legion.command}
