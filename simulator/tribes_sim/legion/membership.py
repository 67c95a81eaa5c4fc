"""Legion's membership: the rows it owns, pushing snapshots to nodes, waiting for a join to be
seen active everywhere. Mixed into ``Legion``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from tribes_sim.legion.refusal import LegionRefusal
from tribes_sim.node import utc_now

log = logging.getLogger("tribes_sim.legion")


class LegionMembershipMixin:
    """Legion's part: membership rows, pushes and join waits (uses the attributes Legion sets up)."""

    async def push_membership(self, joining: dict[str, Any] | None = None) -> None:
        """Write Legion's membership snapshot to every running node (as one control event).

        A ``joining`` node gets it last: it starts pulling from its peers as soon as it has the
        rows, and a peer that has not yet learned of it refuses it (403, retried in 50 ms), which
        for a 50-node join was one wasted round trip per peer.
        """
        self.state["legion_seq"] += 1
        params = {
            "rows": [dict(row) for row in self.state["membership"].values()],
            "trusted": [
                row["pubkey"]
                for row in self.state["membership"].values()
                if row["status"] != "decommissioned"
            ],
            "seq": self.state["legion_seq"],
            "hlc": self.hlc.tick(),
        }
        self.save()
        method = "control.apply_membership"
        body = json.dumps({"method": method, "params": params}).encode()
        targets = [n for n in self.running_nodes() if joining is None or n is not joining]
        results = await asyncio.gather(
            *(self._call_encoded(node, method, body) for node in targets),
            return_exceptions=True,
        )
        if joining is not None and joining in self.running_nodes():
            results += await asyncio.gather(
                self._call_encoded(joining, method, body), return_exceptions=True
            )
        for result in results:
            if isinstance(result, Exception):
                log.warning("membership push: %s", result)

    def _row(self, node: dict[str, Any], **changes: Any) -> dict[str, Any]:
        now = utc_now()
        existing = self.state["membership"].get(node["node_id"])
        row = (
            dict(existing)
            if existing
            else {
                "node_id": node["node_id"],
                "pubkey": node["pubkey"],
                "transport_address": node["transport_address"],
                "scope": "full",
                "status": "syncing",
                "joined_at": now,
                "activated_at": None,
                "decommissioned_at": None,
            }
        )
        row.update(changes)
        row["updated_at"] = now
        row["hlc"] = self.hlc.tick()
        self.state["membership"][node["node_id"]] = row
        return row

    async def wait_active_everywhere(self, node: dict[str, Any]) -> int:
        """Return (the number of calls it took) once every member lists ``node``'s row active.

        The new node marks itself active first (when caught up) and publishes that row, so it is
        polled alone until then; after that only the observers not yet seen agreeing are polled,
        less often the more there are (each call costs a node ~1 ms of its host's loop).
        A row seen active stays active while Legion holds its lock (nothing else rewrites it).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.legion_wait_active_s
        members = self.state["membership"]
        observers = [
            n
            for n in self.running_nodes()
            if n.get("node_id") in members and members[n["node_id"]]["status"] != "decommissioned"
        ]
        pending = {o["name"]: o for o in observers}
        lagging: dict[str, str] = {}
        activated_at: str | None = None
        calls = 0
        # Ask, then check the deadline: the last look is taken at or after it, so a join that
        # completes during the final pause is never reported as a timeout.
        while True:
            asked = [pending[node["name"]]] if node["name"] in pending else list(pending.values())
            calls += len(asked)
            views = await asyncio.gather(
                *(self.call(o, "cluster_nodes.list") for o in asked), return_exceptions=True
            )
            for observer, view in zip(asked, views, strict=True):
                row = (
                    None
                    if isinstance(view, BaseException)
                    else next((r for r in view["nodes"] if r["node_id"] == node["node_id"]), None)
                )
                if row is None or row["status"] != "active":
                    lagging[observer["name"]] = f"sees {row['status'] if row else 'no row'}"
                    continue
                if activated_at is None or observer["name"] == node["name"]:
                    activated_at = row["activated_at"]
                del pending[observer["name"]]
                lagging.pop(observer["name"], None)
            if not pending:
                self.state["membership"][node["node_id"]].update(
                    status="active", activated_at=activated_at
                )
                self.save()
                return calls
            if loop.time() >= deadline:
                break
            await asyncio.sleep(0.01 if node["name"] in pending else 0.01 + 0.0005 * len(pending))
        shown = "; ".join(f"{name} {state}" for name, state in lagging.items() if name in pending)
        if node["name"] in pending:
            shown += " (the other nodes are asked once it sees itself active)"
        raise LegionRefusal(
            504,
            "join-timeout",
            f"{node['name']} not active on every node after {self.config.legion_wait_active_s} s: {shown}",
        )
