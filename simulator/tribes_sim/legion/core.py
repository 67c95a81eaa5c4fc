"""``Legion``: the orchestrator's state (``DIR/legion/state.json``: node records, membership as
Legion last wrote it, graph runs) and its parts composed from the mixins of this package
(host pool, node calls, membership, operations, nemesis). ``server.py`` serves it over HTTP."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

import aiohttp

from tribes_sim.hlc import HybridLogicalClock
from tribes_sim.legion.host_pool import HostPoolMixin
from tribes_sim.legion.hosts import HostProcess, HostZygote, PendingHost
from tribes_sim.legion.membership import LegionMembershipMixin
from tribes_sim.legion.nemesis import LegionNemesisMixin
from tribes_sim.legion.node_calls import NodeCallsMixin
from tribes_sim.legion.operations import OperationsMixin
from tribes_sim.legion.refusal import LegionRefusal
from tribes_sim.schnorr_keys import SchnorrKey, read_key, write_key
from tribes_sim.seeded import IdSource, next_epoch
from tribes_sim.settings import SimConfig

log = logging.getLogger("tribes_sim.legion")


class Legion(
    HostPoolMixin, NodeCallsMixin, LegionMembershipMixin, OperationsMixin, LegionNemesisMixin
):
    """Legion's state and lifecycle; the operations are in the mixins it combines."""

    def __init__(self, directory: Path, config: SimConfig) -> None:
        self.directory = directory
        self.config = config
        self.state_path = directory / "legion" / "state.json"
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        (directory / "hosts").mkdir(exist_ok=True)
        (directory / "nodes").mkdir(exist_ok=True)
        self.config_path = directory / "sim-config.json"
        self.config_path.write_text(config.to_json())
        keys = json.loads((directory / "fleet-keys.json").read_text())
        self.admin_pubkey: str = keys["admin_pubkey"]
        self.ssh_client_public: str = keys["ssh_client_public"]
        legion_key_path = directory / "secrets" / "legion.key"
        if not legion_key_path.exists():
            write_key(legion_key_path, SchnorrKey.generate())
        self.key = read_key(legion_key_path)
        self.hlc = HybridLogicalClock("legion")
        # Seeded ids (the tribe, graph runs, hosts); one epoch per Legion start (tribes_sim.seeded)
        self.ids = IdSource(config.seed, "legion", next_epoch(directory / "legion" / "boots"))
        self.state: dict[str, Any] = {
            "nodes": {},
            "membership": {},
            "legion_seq": 0,
            "graph_runs": [],
            "counters": {},
            "tribe_id": self.ids.uuid4("tribe"),
        }
        if self.state_path.exists():
            self.state.update(json.loads(self.state_path.read_text()))
        self.hosts: dict[str, HostProcess] = {}
        self.pending_hosts: list[PendingHost] = []
        self.zygote = HostZygote(directory, self.config_path)
        self.lock = asyncio.Lock()
        # aiohttp rather than httpx: a 50-node join makes thousands of calls and aiohttp's
        # per-request overhead is several times lower. Requests are signed in ``call``.
        self.http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=10.0),
            connector=aiohttp.TCPConnector(limit=200),
        )
        self.url = ""

    async def start(self) -> None:
        """Start the zygote; it finishes its imports while Legion already serves."""
        try:
            await self.zygote.start()
        except OSError as error:
            log.warning("no zygote (%s): hosts will start as fresh processes", error)

    # -- persistence ---------------------------------------------------------------------------
    def save(self) -> None:
        temporary = self.state_path.with_suffix(".tmp")
        # Compact: with ``indent`` json falls back to its pure-Python encoder (3-4x slower), and
        # a join saves three times.
        temporary.write_text(json.dumps(self.state, sort_keys=True, separators=(",", ":")))
        os.replace(temporary, self.state_path)

    @property
    def nodes(self) -> dict[str, dict[str, Any]]:
        return self.state["nodes"]

    def record(self, name: str) -> dict[str, Any]:
        node = self.nodes.get(name)
        if node is None:
            raise LegionRefusal(404, "unknown-node", f"Legion has no node {name!r}")
        return node

    def public_record(self, node: dict[str, Any]) -> dict[str, Any]:
        transport = node.get("transport_address")
        sync_endpoint = transport
        if transport and self.config.has_fault("wrong-transport-address"):
            host, port = transport.rsplit(":", 1)
            sync_endpoint = f"{host}:{int(port) + 1}"
        return {
            "name": node["name"],
            "provider": node["provider"],
            "region": node["region"],
            "status": node["status"],
            "admin_url": node.get("admin_url"),
            "transport_address": transport,
            "sync_endpoint": sync_endpoint,
            "ssh": node.get("ssh"),
            "pubkey": node.get("pubkey"),
            "host_key_fingerprint": node.get("host_key_fingerprint"),
        }

    def snapshot(self) -> dict[str, Any]:
        by_id = {node.get("node_id"): name for name, node in self.nodes.items()}
        membership = []
        for node_id, row in sorted(
            self.state["membership"].items(), key=lambda item: item[1]["joined_at"]
        ):
            if row["status"] != "active" and self.config.has_fault("snapshot-drops-membership"):
                continue  # Fault: transient and archived rows are left out.
            if row["status"] == "decommissioned" and self.config.has_fault(
                "snapshot-drops-decommissioned"
            ):
                continue  # Fault: archived rows are left out, transient ones kept.
            membership.append(
                {
                    "node": by_id.get(node_id, node_id),
                    "node_id": node_id,
                    "status": row["status"],
                    "transport_address": row["transport_address"],
                    "scope": row["scope"],
                    "joined_at": row["joined_at"],
                    "activated_at": row["activated_at"],
                    "decommissioned_at": row["decommissioned_at"],
                }
            )
        records = [self.public_record(node) for node in self.nodes.values()]
        if self.config.has_fault("snapshot-leaks-secret"):
            # Fault: the runner's SSH key travels with every record that has an SSH endpoint.
            key = (self.directory / "secrets" / "ssh_client").read_text()
            for record in records:
                if isinstance(record.get("ssh"), dict):
                    record["ssh"] = {**record["ssh"], "private_key": key}
        return {
            "nodes": records,
            "clusterMembership": membership,
            "graphRuns": list(self.state["graph_runs"]),
        }

    async def close(self) -> None:
        await asyncio.gather(
            *(self._shutdown_host(host) for host in list(self.hosts.values())),
            return_exceptions=True,
        )
        await self.zygote.close()
        await self.http.close()
