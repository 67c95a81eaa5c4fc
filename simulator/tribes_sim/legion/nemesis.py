"""The nemesis: crash, restart, partition, heal, publish outages and clock skew on nodes.

Mixed into ``Legion``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tribes_sim.legion.refusal import LegionRefusal


class LegionNemesisMixin:
    """Legion's part: the nemesis (uses the attributes Legion sets up)."""

    async def nemesis(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        if action == "heal":
            for node in self.running_nodes():
                host = self._host_of(node["name"])
                if host:
                    await self._host_call(host, f"/nodes/{node['name']}/heal")
            return {"healed": [n["name"] for n in self.running_nodes()]}
        name = body.get("node")
        if not isinstance(name, str):
            raise LegionRefusal(
                400, "invalid-params", f"nemesis {action}: field 'node' is required"
            )
        node = self.record(name)
        if action in ("crash", "restart", "stop"):
            # One life-cycle change of a node at a time: a restart that arrives while a stop still
            # shuts the node's host down (a `herd stop` runs in the background) waits for it.
            async with self._lifecycle_lock(name):
                return await self._change_lifecycle(action, name, node)
        host = self._host_of(name)
        if host is None or node.get("down"):
            raise LegionRefusal(409, "node-down", f"nemesis {action}: {name} is not running")
        if action == "partition":
            peers = body.get("peers") or [
                n["name"] for n in self.running_nodes() if n["name"] != name
            ]
            peer_nodes = [self.record(p) for p in peers]
            await self._host_call(
                host, f"/nodes/{name}/partition", {"peers": [p["node_id"] for p in peer_nodes]}
            )
            for peer in peer_nodes:
                peer_host = self._host_of(peer["name"])
                if peer_host:
                    await self._host_call(
                        peer_host, f"/nodes/{peer['name']}/partition", {"peers": [node["node_id"]]}
                    )
            return {"node": name, "partitioned_from": peers}
        if action == "outage":
            await self._host_call(
                host, f"/nodes/{name}/outage", {"active": bool(body.get("active", True))}
            )
            return {"node": name, "outage": bool(body.get("active", True))}
        if action == "clock-skew":
            await self._host_call(
                host, f"/nodes/{name}/clock-skew", {"seconds": float(body.get("seconds", 0))}
            )
            return {"node": name, "skew_s": float(body.get("seconds", 0))}
        raise LegionRefusal(404, "unknown-action", f"unknown nemesis action {action!r}")

    def _lifecycle_lock(self, name: str) -> asyncio.Lock:
        locks: dict[str, asyncio.Lock] = self.__dict__.setdefault("_lifecycle_locks", {})
        return locks.setdefault(name, asyncio.Lock())

    async def _change_lifecycle(
        self, action: str, name: str, node: dict[str, Any]
    ) -> dict[str, Any]:
        if action == "crash":
            await self._stop_node(name, crash=True)
            return {"node": name, "crashed": True}
        if action == "restart":
            await self._restart(node)
            return {"node": name, "restarted": True}
        # graceful (a node's `herd stop tribes`); `restart` starts it again
        await self._stop_node(name, crash=False)
        return {"node": name, "stopped": True}
