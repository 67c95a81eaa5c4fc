"""The simulator strategy: each suite gets a private simulated fleet (Legion over HTTP)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from robot.api import logger

from tribes_sim.fleet import (
    LegionClient,
    LegionClientError,
    legion_info,
    start_fleet,
    stop_fleet,
)
from tribesqa.clients.keys import AdminKey, write_key_file
from tribesqa.clients.ssh_client import SshEndpointInfo, SshSessions
from tribesqa.config import (
    DEFAULT_NODE_COMMANDS,
    PluginTransportKind,
    SimSettings,
    TargetConfig,
    TimeoutProfile,
    suite_stem,
)
from tribesqa.running.fleet_dirs import remove_fleet_dir, sweep_orphan_fleets, write_owner
from tribesqa.targets.base import LegionDriver, LegionError, Nemesis, PluginTransport, Target
from tribesqa.targets.transports import HttpPluginTransport, SshPluginTransport


class SimLegion(LegionDriver):
    source = "Legion (simulator)"

    def __init__(self, client: LegionClient) -> None:
        self.client = client

    def _run(self, operation: str, **arguments: Any) -> Any:
        calls = {
            "provision_init": lambda: self.client.provision_init(arguments["provider"]),
            "plan_join": lambda: self.client.plan_join(arguments["provider"], arguments["count"]),
            "materialize": self.client.materialize,
            "materialize_interrupted": lambda: self.client.materialize(
                arguments["interrupt_after"]
            ),
            "decommission": lambda: self.client.decommission(arguments["node"]),
            "replace": lambda: self.client.replace(arguments["node"], arguments["provider"]),
            "reactivate": lambda: self.client.reactivate(arguments["node"]),
            "destroy": lambda: self.client.destroy(arguments["node"]),
            "destroy_all": self.client.destroy_all,
            "list": self.client.list_nodes,
            "snapshot": self.client.snapshot,
        }
        try:
            return calls[operation]()
        except LegionClientError as error:
            raise LegionError(error.operation, error.code, error.message) from None


class SimNemesis(Nemesis):
    def __init__(self, client: LegionClient) -> None:
        self.client = client

    def _do(self, action: str, **body: Any) -> None:
        try:
            self.client.nemesis(action, **body)
        except LegionClientError as error:
            raise LegionError(error.operation, error.code, error.message) from None

    def partition(self, node: str, peers: list[str]) -> None:
        self._do("partition", node=node, peers=peers or None)

    def heal_all(self) -> None:
        self._do("heal")

    def crash(self, node: str) -> None:
        self._do("crash", node=node)

    def restart(self, node: str) -> None:
        self._do("restart", node=node)

    def outage(self, node: str, active: bool) -> None:
        self._do("outage", node=node, active=active)


def default_fleets_dir() -> Path:
    # Fleet directories hold the fleet's secrets (admin and SSH keys), so they live outside
    # results/: artifacts are captured through the APIs instead.
    return Path(tempfile.gettempdir()) / "tribes-qa-fleets"


def safe_label(label: str) -> str:
    """A short directory name for a suite: its own name (not the parents'), at most 32 chars.

    Short on purpose: the fleet's Unix sockets live under it (108-byte path limit), and a
    suite's long name grows with every parent directory suite.
    """
    leaf = label.rsplit(".", 1)[-1]
    return re.sub(r"[^A-Za-z0-9_-]+", "_", leaf).strip("_")[:32] or "fleet"


class SimTarget(Target):
    kind = "sim"

    def __init__(self, config: TargetConfig, timeouts: TimeoutProfile, results_dir: Path) -> None:
        super().__init__(config, timeouts, results_dir)
        self.settings = config.sim or SimSettings()
        self.fleet_dir: Path | None = None
        self._client: LegionClient | None = None
        self._legion: SimLegion | None = None
        self._nemesis: SimNemesis | None = None
        self._plugins: PluginTransport | None = None
        self._ssh_sessions: Any = None
        self.attached = False  # attached to a fleet another process started: never stop it

    def open(self, label: str) -> None:
        base = Path(self.settings.fleets_dir) if self.settings.fleets_dir else default_fleets_dir()
        for swept in sweep_orphan_fleets(base):
            logger.info(f"removed the fleet of a run that died without closing it: {swept}")
        self.fleet_dir = (base / f"{safe_label(label)}-{secrets.token_hex(3)}").resolve()
        write_owner(self.fleet_dir, os.getpid(), not self.settings.keep_fleet_dirs)
        source = self.config.admin_key
        if source is not None:
            # QA's own admin key (TARGET.admin_key): the fleet keeps a key it finds in place, so
            # every node's allowlist holds this one instead of a freshly generated key.
            key = AdminKey.load(source.env or "TRIBES_ADMIN_KEY", source.file)
            write_key_file(self.fleet_dir / "secrets" / "admin.key", key)
        descriptor = start_fleet(
            self.fleet_dir,
            nodes=0,
            faults=self.settings.faults,
            nodes_per_host=self.settings.nodes_per_host,
            **self.settings.suite_settings.get(suite_stem(label), {}),
        )
        self._connect(descriptor["legion_url"])

    def _connect(self, legion_url: str) -> None:
        self._client = LegionClient(legion_url, timeout_s=self.timeouts.legion_operation)
        self._legion = SimLegion(self._client)
        self._nemesis = SimNemesis(self._client)

    # -- a fleet shared by several robot processes (the per-node gate under pabot) ------------
    def shared_handle(self) -> dict[str, Any]:
        """What another process needs to attach; from now on this process only attaches too."""
        if self.fleet_dir is None or self._client is None:
            raise AssertionError("the target is not open: nothing to share")
        write_owner(self.fleet_dir, None, not self.settings.keep_fleet_dirs)
        self.attached = True
        return {"fleet_dir": str(self.fleet_dir), "legion_url": self._client.url}

    def attach(self, handle: dict[str, Any]) -> None:
        fleet_dir = Path(str(handle.get("fleet_dir", "")))
        info = legion_info(fleet_dir) if handle.get("fleet_dir") else None
        if info is None:
            raise AssertionError(f"no simulated fleet runs in {fleet_dir} (shared handle {handle})")
        self.fleet_dir = fleet_dir
        self.attached = True
        self._connect(str(handle.get("legion_url") or info["url"]))

    def take_ownership(self) -> None:
        """The next close() stops the fleet (the last process of a shared fleet calls this)."""
        self.attached = False

    @property
    def provisions_missing_roster_nodes(self) -> bool:
        return True  # a private simulated fleet starts empty

    @property
    def guards_destructive_acts(self) -> bool:
        return False  # a private fleet, removed when it closes: nothing outlives the run

    def plugin_transport(
        self, sessions: SshSessions, endpoint_of: Callable[[str], SshEndpointInfo]
    ) -> PluginTransport:
        if self.config.plugin_transport is PluginTransportKind.SSH:
            template = DEFAULT_NODE_COMMANDS["plugin_request"]
            return SshPluginTransport(sessions, endpoint_of, template, self.timeouts.ssh_command)
        return HttpPluginTransport(self._plugin_url, self.timeouts.management_call)

    def _plugin_url(self, node: str) -> str:
        assert self.fleet_dir is not None
        ports_file = self.fleet_dir / "nodes" / node / "ports.json"
        try:
            ports = json.loads(ports_file.read_text())
        except (OSError, ValueError):
            raise AssertionError(
                f"node {node}: the simulator has no plugin port for it (not provisioned?)"
            ) from None
        return f"http://127.0.0.1:{ports['plugin']}"

    def admin_key(self) -> AdminKey:
        assert self.fleet_dir is not None
        return AdminKey.from_file(self.fleet_dir / "secrets" / "admin.key")

    def ssh_key_file(self) -> Path | None:
        return self.fleet_dir / "secrets" / "ssh_client" if self.fleet_dir else None

    def close(self) -> None:
        if self.attached:  # someone else's fleet: release our client only
            if self._client is not None:
                self._client.close()
            self._client = self._legion = self._nemesis = None
            return
        if self._client is not None:
            # stop_fleet below kills whatever destroy_all could not.
            with contextlib.suppress(LegionClientError):
                self._client.destroy_all()
            self._client.close()
            self._client = None
        if self.fleet_dir is not None:
            stop_fleet(self.fleet_dir)
            if not self.settings.keep_fleet_dirs:
                remove_fleet_dir(self.fleet_dir)
        self._legion = None
        self._nemesis = None

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "fleet_dir": str(self.fleet_dir),
            "faults": self.settings.faults,
            **({"attached": True} if self.attached else {}),
        }
