"""What a node reports: cluster, sync, generation, plugin and diagnostics payloads.

Mixed into ``SimNode``.
"""

from __future__ import annotations

import collections
import hashlib
import json
from typing import Any

from tribes_sim.node.spec import NODE_VERSION, PLUGIN_CATALOGUE
from tribes_sim.store import LEGION_ORIGIN


class StatusViewsMixin:
    """SimNode's part: the status payloads of the management methods (uses the attributes SimNode sets up)."""

    def membership_digest(self) -> str:
        rows = [
            {
                k: row[k]
                for k in (
                    "node_id",
                    "status",
                    "transport_address",
                    "scope",
                    "activated_at",
                    "decommissioned_at",
                )
            }
            for row in self.store.members()
        ]
        return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()

    def cluster_status(self) -> dict[str, Any]:
        rows = self.store.members()
        counts = collections.Counter(row["status"] for row in rows)
        own = self.own_row()
        self_status = own["status"] if own else "syncing"
        if self_status == "decommissioned" and self.config.has_fault(
            "decommissioned-reports-active"
        ):
            self_status = "active"  # Fault: the node does not see its own decommission.
        servers = list(self.servers.values())
        if self_status == "syncing":
            health = "syncing"
        elif servers and not any(s.connected for s in servers):
            health = "isolated"
        elif any(not s.connected or s.failing_reason for s in servers):
            health = "degraded"
        else:
            health = "healthy"
        active = counts.get("active", 0)
        if self.config.has_fault("status-counts-peers") and self_status == "active":
            active -= 1  # Fault: "active" counts the active peers, not the active members.
        return {
            "node_id": self.node_id,
            "status": health,
            "self_status": self_status,
            "active": active,
            "syncing": counts.get("syncing", 0),
            "decommissioned": counts.get("decommissioned", 0),
            "membership_digest": self.membership_digest(),
            "control_plane_version": self.store.version_vector.get(LEGION_ORIGIN, 0),
        }

    def sync_status(self) -> dict[str, Any]:
        vector = self.store.version_vector
        known = dict(vector)
        for state in self.servers.values():
            for origin, seq in state.high_water_mark.items():
                known[origin] = max(known.get(origin, 0), seq)
        applied = sum(vector.values())
        high = sum(known.values())
        own = self.own_row()
        if not self.servers and (own is None or own["status"] == "decommissioned"):
            mode = "stopped"
        elif own is not None and own["status"] == "syncing":
            mode = "catching_up"
        else:
            mode = "live"
        if mode == "live" and self.config.has_fault("sync-mode-stuck-catching-up"):
            mode = "catching_up"
        servers = [state.describe() for state in self.servers.values()]
        if self.config.has_fault("stale-connected-status"):
            # The deliberate bug: the status keeps the last good answer of every subscription.
            servers = [{**server, "connected": True, "failing_reason": None} for server in servers]
        if self.config.has_fault("decommissioned-server-flickers"):
            servers = self.flicker_servers(servers)
        return {
            "mode": mode,
            "servers": servers,
            "high_water_mark": high,
            "applied_events": applied,
            # Fault: the hwm itself instead of what is still to apply.
            "pending_events": high
            if self.config.has_fault("sync-status-miscounted")
            else max(high - applied, 0),
            "version_vector": dict(vector),
        }

    def node_info(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "pubkey": self.pubkey,
            "provider": self.spec.provider,
            "region": self.region,
            "version": NODE_VERSION,
            "transport_address": self.transport_address,
        }

    def generation_status(self) -> dict[str, Any]:
        selected, running = self.tree.selected(), self.tree.running()
        if self.config.has_fault("selected-from-wrong-link"):
            # Fault: "selected" read from the generation link before the profile's current one.
            selected = self.tree.previous_selected() or selected
        return {
            "selected": selected,
            "running": running,
            "generations": self.store.generations(),
            "reboot_required": selected != running and not self.restarting,
        }

    def running_plugins(self) -> list[str]:
        running = self.tree.running()
        for generation in self.store.generations():
            if generation["path"] == running:
                return list(generation["plugins"])
        return []

    def plugin_served(self) -> bool:
        # A rollback drops the tables (migrate) before the restart switches the running
        # generation: in between the plugin is gone, not half there (404, never a 500).
        if self.config.has_fault("plugin-runtime-survives-rollback"):
            # Fault: the plugin runtime, once loaded, stays loaded until a reboot.
            return (
                self.ready
                and not self.restarting
                and any("supertest" in g["plugins"] for g in self.store.generations())
            )
        return (
            self.ready
            and not self.restarting
            and "supertest" in self.running_plugins()
            and bool(self.store.plugin_tables_present())
        )

    def plugins_list(self) -> dict[str, Any]:
        running = self.running_plugins()
        migrations = self.store.applied_migrations()
        return {
            "plugins": [
                {
                    "name": name,
                    "version": PLUGIN_CATALOGUE.get(name, "unknown"),
                    "migrations": [m for m in migrations if name in m],
                    "state": "running" if self.plugin_served() else "installed",
                }
                for name in running
            ]
        }

    def diagnostics(self) -> dict[str, Any]:
        selected, running = self.tree.selected(), self.tree.running()
        return {
            "local_control": {"ready": self.ready and not self.restarting},
            "migrations": {
                "log": self.store.migration_log(),
                "applied": self.store.applied_migrations(),
                # The node database's user tables: lets a runner see that a rollback's down
                # migrations really dropped the plugin tables while the plugin API 404s.
                "tables": [
                    row["name"]
                    for row in self.store.db.execute(
                        "SELECT name FROM sqlite_master WHERE type = 'table' "
                        "AND name NOT LIKE 'sqlite_%' ORDER BY name"
                    )
                ],
            },
            "services": {
                "tribes": "restarting"
                if self.restarting
                else ("running" if self.ready else "starting"),
                "tribes-local-control": "running",
                "tribes-sync": "running" if self.servers else "idle",
            },
            "generation_compare": {
                "selected": selected,
                "running": running,
                "equal": selected == running,
            },
            "logs": {"tribes": list(self.logs)[-100:]},
        }
