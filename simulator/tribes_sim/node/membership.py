"""A node's view of cluster membership: its own row, the derived sync servers, activation, and
the control-plane methods only Legion calls (membership snapshots, the tribe, full resync).

Mixed into ``SimNode``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tribes_sim.node.spec import NodeRefused
from tribes_sim.node.sync_client import SyncServerState
from tribes_sim.node.timestamps import utc_now
from tribes_sim.store import LEGION_ORIGIN, SyncEvent


class NodeMembershipMixin:
    """SimNode's part: membership rows, derived sync servers, activation, Legion's control methods (uses the attributes SimNode sets up)."""

    def own_row(self) -> dict[str, Any] | None:
        return self.store.member(self.node_id)

    def _peer_addresses(
        self, keep: Callable[[dict[str, Any]], bool], *, when_decommissioned: bool = False
    ) -> dict[str, str]:
        """Transport addresses of the other members ``keep`` accepts; none once decommissioned
        (unless ``when_decommissioned``: only a fault asks for that)."""
        own = self.own_row()
        if own is None or (own["status"] == "decommissioned" and not when_decommissioned):
            return {}
        return {
            row["node_id"]: row["transport_address"]
            for row in self.store.members()
            if row["node_id"] != self.node_id and keep(row)
        }

    def derived_servers(self) -> dict[str, str]:
        """Transport addresses of the other active rows."""
        if self.config.has_fault("decommissioned-still-synced"):
            # Fault: "not syncing" is taken for "may serve": decommissioned peers stay servers.
            return self._peer_addresses(lambda row: row["status"] != "syncing")
        return self._peer_addresses(
            lambda row: row["status"] == "active",
            # Fault: a decommissioned node keeps pulling from the active nodes.
            when_decommissioned=self.config.has_fault("decommissioned-keeps-syncing"),
        )

    def reconcile_servers(self) -> None:
        if self._closed or not self.ready:
            return
        wanted = self.derived_servers()
        own = self.own_row()
        if (
            self.config.has_fault("late-peer-not-subscribed")
            and own is not None
            and own["status"] == "active"
        ):
            # Fault: once active, a node only drops servers; peers that turn active later
            # are never subscribed to (their events still arrive by their own pushes).
            wanted = {k: v for k, v in wanted.items() if k in self.servers}
        for node_id in list(self.servers):
            state = self.servers[node_id]
            if wanted.get(node_id) != state.url:
                if state.task:
                    state.task.cancel()
                del self.servers[node_id]
        for node_id, url in wanted.items():
            if node_id not in self.servers:
                state = SyncServerState(node_id=node_id, url=url)
                self.servers[node_id] = state
                state.task = self.spawn(self._subscribe(state))

    def caught_up(self) -> bool:
        return all(state.caught_up for state in self.servers.values())

    def maybe_activate(self) -> None:
        own = self.own_row()
        if self._closed or not self.ready or own is None or own["status"] != "syncing":
            return
        if self.config.has_fault("stuck-syncing"):
            return
        if not self.caught_up():
            return
        now = utc_now()
        activated_at = now
        if self.config.has_fault("stale-activated-at") and own.get("activated_at"):
            activated_at = own["activated_at"]
        row = {**own, "status": "active", "activated_at": activated_at, "updated_at": now}
        self.note(f"caught up with {len(self.servers)} server(s): marking own row active")
        self.spawn(self.write("control", "member", row))

    async def mark_syncing(self) -> None:
        own = self.own_row()
        if own is None:
            return
        for state in self.servers.values():
            state.caught_up = False
        row = {**own, "status": "syncing", "updated_at": utc_now()}
        await self.write("control", "member", row)

    # -- control plane (Legion-only methods) ------------------------------------------------------
    async def apply_membership(self, params: dict[str, Any]) -> dict[str, Any]:
        rows = params.get("rows")
        seq = params.get("seq")
        hlc = params.get("hlc")
        if not isinstance(rows, list) or not isinstance(seq, int) or not isinstance(hlc, str):
            raise NodeRefused(
                400,
                "invalid-params",
                "control.apply_membership needs rows (list), seq (int), hlc (str)",
            )
        event = SyncEvent(LEGION_ORIGIN, seq, hlc, "control", "members", {"rows": rows})
        applied = await self.ingest([event], via=LEGION_ORIGIN)
        own = self.own_row()
        if own and own["status"] == "syncing":
            for state in self.servers.values():
                state.caught_up = False
        self.maybe_activate()
        return {"applied": applied}

    async def init_tribe(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            data = {
                "tribe_id": str(params["tribe_id"]),
                "name": str(params["name"]),
                "members": sorted(str(m) for m in params["members"]),
                "version": 1,
            }
        except (KeyError, TypeError) as error:
            raise NodeRefused(
                400, "invalid-params", f"control.init_tribe: missing {error}"
            ) from None
        await self.write("control", "tribe", data)
        tribe = self.store.tribe()
        assert tribe is not None
        return tribe

    async def resync(self) -> dict[str, Any]:
        job_id = f"resync-{self.ids.token_hex('resync', 6)}"
        self.note(f"full resync {job_id}: replaying the log from zero")
        self.store.rebuild()
        await self.mark_syncing()
        for state in self.servers.values():
            if state.task:
                state.task.cancel()
        self.servers.clear()
        self.reconcile_servers()
        self.maybe_activate()
        self.store.save_job(
            {
                "job_id": job_id,
                "kind": "resync",
                "state": "succeeded",
                "stage": "done",
                "target": {},
                "error": None,
                "log": ["replayed log from zero", "subscriptions restarted"],
                "created_at": utc_now(),
            }
        )
        return {"job_id": job_id}
