"""The four listeners of a simulated node: admin API, plugin API, sync endpoint, SSH.

``NodeServers`` binds them (same ports across restarts) and owns their lifecycle; the request
handlers live in the mixins it combines (``admin_api``, ``plugin_api``, ``sync_endpoint``).
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from tribes_sim.node.admin_api import AdminApiMixin
from tribes_sim.node.core import SimNode
from tribes_sim.node.nodeview import NodeView
from tribes_sim.node.plugin_api import PluginApiMixin
from tribes_sim.node.ports import OTHER_PROVIDER_PORTS, PROVIDER_PORTS, bind_in_range, bind_socket
from tribes_sim.node.spec import NodeSpec
from tribes_sim.node.ssh_server import SimSshServer, start_ssh_server
from tribes_sim.node.sync_endpoint import SyncEndpointMixin
from tribes_sim.seeded import next_epoch, stream
from tribes_sim.settings import SimConfig
from tribes_sim.ssh_keys import generate_ssh_keypair, public_key_fingerprint

SSH_USER = "tribes"
#: Who may log in over SSH (same keys): the service account and root, as on a Guix node.
SSH_USERS = (SSH_USER, "root")
LISTENERS = ("admin", "plugin", "sync", "ssh")


class NodeServers(AdminApiMixin, PluginApiMixin, SyncEndpointMixin):
    """Binds a node's listeners (same ports across restarts) and routes requests to it."""

    def __init__(self, spec: NodeSpec, config: SimConfig, ssh: SimSshServer | None = None) -> None:
        self.spec = spec
        self.config = config
        self.node: SimNode | None = None
        self.runners: list[web.AppRunner] = []
        # An SSH server kept across a graceful restart (the node's sshd is not the service).
        self.ssh: SimSshServer | None = ssh
        self.ports: dict[str, int] = {}
        self.host_key_fingerprint = ""

    @property
    def admin_url(self) -> str:
        """The canonical admin URL: what Legion records and NIP-98 ``u`` tags must name."""
        return f"http://127.0.0.1:{self.ports['admin']}"

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> dict[str, Any]:
        spec = self.spec
        ports_file = spec.directory / "ports.json"
        spec.directory.mkdir(parents=True, exist_ok=True)
        saved = json.loads(ports_file.read_text()) if ports_file.exists() else {}
        node = SimNode(spec, self.config)
        self.node = node
        low, high = PROVIDER_PORTS.get(spec.provider, OTHER_PROVIDER_PORTS)
        # Seeded: the same start offsets in the provider's range on every replay (tribes_sim.seeded)
        rng = stream(self.config.seed, "ports", spec.name, next_epoch(spec.directory / "boots"))
        sockets = {}
        for listener in ("admin", "plugin", "sync"):
            wanted = saved.get(listener) or spec.ports.get(listener)
            if listener == "sync" and saved and self.config.has_fault("restart-moves-transport"):
                wanted = None  # the deliberate bug: a restart binds a fresh sync port
            sockets[listener] = (
                bind_socket("127.0.0.1", wanted)
                if wanted
                else bind_in_range("127.0.0.1", low, high, rng)
            )
            self.ports[listener] = sockets[listener].getsockname()[1]
        node.transport_address = f"http://127.0.0.1:{self.ports['sync']}"
        for listener, app in (
            ("admin", self._admin_app()),
            ("plugin", self._plugin_app()),
            ("sync", self._sync_app()),
        ):
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            await web.SockSite(runner, sockets[listener]).start()
            self.runners.append(runner)
        await self._start_ssh(saved, low, high, rng)
        # Atomic: the runner reads this file while a node restarts and must never see it empty.
        partial = ports_file.with_suffix(".json.partial")
        partial.write_text(json.dumps(self.ports))
        os.replace(partial, ports_file)
        await node.start()
        return self.describe()

    async def _start_ssh(
        self, saved: dict[str, int], low: int, high: int, rng: random.Random
    ) -> None:
        assert self.node is not None
        host_key = self.spec.directory / "ssh" / "host_ed25519"
        if not host_key.exists():
            host_key.parent.mkdir(parents=True, exist_ok=True)
            generate_ssh_keypair(host_key, comment=f"host@{self.spec.name}")
        self.host_key_fingerprint = public_key_fingerprint(Path(str(host_key) + ".pub").read_text())
        if self.ssh is not None:  # kept from before a graceful restart: same port, same sessions
            self.ports["ssh"] = self.ssh.port
            return
        view = NodeView(self.spec.directory, self.node.tree.root)
        env = {
            "TRIBES_ROOT": str(self.node.tree.root),
            "TRIBES_LOCAL_PORT": str(self.ports["plugin"]),
            "TRIBES_NODE": self.spec.name,
            "TRIBES_SIM_LEGION": self.spec.legion_url,
            # herd first, then the venv's bin (fault templates call tribes-sim-legion on a node).
            "PATH": os.pathsep.join(
                [
                    str(view.guix_bin),
                    os.path.dirname(sys.executable),
                    os.environ.get("PATH", "/usr/bin:/bin"),
                ]
            ),
        }
        for attempt in range(20):
            port = saved.get("ssh") if attempt == 0 and saved.get("ssh") else None
            if port is None:
                probe = bind_in_range("127.0.0.1", low, high, rng)
                port = probe.getsockname()[1]
                probe.close()
            try:
                self.ssh = await start_ssh_server(
                    "127.0.0.1",
                    port,
                    host_key_path=host_key,
                    authorized_keys=self.spec.ssh_authorized_keys,
                    users=SSH_USERS,
                    env=env,
                    cwd=self.node.tree.root,
                    view=view,
                )
                self.ports["ssh"] = self.ssh.port
                return
            except OSError:
                continue
        raise OSError(f"{self.spec.name}: could not bind an SSH port")

    def describe(self) -> dict[str, Any]:
        assert self.node is not None
        return {
            "name": self.spec.name,
            "node_id": self.node.node_id,
            "pubkey": self.node.pubkey,
            "provider": self.spec.provider,
            "region": self.node.region,
            "ports": dict(self.ports),
            "admin_url": self.admin_url,
            "transport_address": self.node.transport_address,
            "ssh": {"host": "127.0.0.1", "port": self.ports.get("ssh"), "user": SSH_USER},
            "host_key_fingerprint": self.host_key_fingerprint,
            "root": str(self.node.tree.root),
            "ready": self.node.ready,
        }

    async def stop(self, *, keep_ssh: bool = False) -> SimSshServer | None:
        """Close listeners and the node. Used for graceful stops and for in-process crashes.

        ``keep_ssh``: leave the SSH server running and return it (a graceful restart)."""
        kept = None
        if self.node is not None:
            # Pending long polls (up to sync_long_poll_s) would hold up the runners' cleanup.
            await self.node.begin_close()
        if self.ssh is not None and keep_ssh:
            kept, self.ssh = self.ssh, None
        if self.ssh is not None:
            await self.ssh.close()
            self.ssh = None
        for runner in self.runners:
            await runner.cleanup()
        self.runners.clear()
        if self.node is not None:
            await self.node.close()
            self.node = None
        return kept
