"""Legion's operations: provision the init node, plan and materialize joins (graph runs),
decommission, reactivate, replace, destroy. Mixed into ``Legion``.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from typing import Any

from tribes_sim.legion.refusal import LegionRefusal
from tribes_sim.node import PROVIDER_REGIONS, backdated, utc_now

log = logging.getLogger("tribes_sim.legion")


PROVIDERS = ("hetzner", "scaleway", "ovh")


class OperationsMixin:
    """Legion's part: the fleet operations (uses the attributes Legion sets up)."""

    def _new_record(self, provider: str, role: str) -> dict[str, Any]:
        if provider not in PROVIDERS:
            raise LegionRefusal(
                400,
                "invalid-params",
                f"provider must be one of {', '.join(PROVIDERS)}, not {provider!r}",
            )
        counters = self.state["counters"]
        counters[provider] = counters.get(provider, 0) + 1
        name = f"{provider}-{counters[provider]}"
        node = {
            "name": name,
            "provider": provider,
            "region": PROVIDER_REGIONS[provider],
            "status": "planned",
            "role": role,
        }
        self.nodes[name] = node
        return node

    async def provision_init(self, provider: str) -> dict[str, Any]:
        if any(n["status"] in ("ready", "provisioning") for n in self.nodes.values()):
            raise LegionRefusal(
                409, "unsafe-operation", "an init node already exists in this fleet"
            )
        node = self._new_record(provider, "init")
        node["status"] = "provisioning"
        self.save()
        await self._start_node(node)
        self._row(node, status="active", activated_at=utc_now())
        node["status"] = "ready"
        await self.push_membership()
        await self.call(
            node,
            "control.init_tribe",
            {
                "tribe_id": self.state["tribe_id"],
                "name": f"tribe-{self.directory.name}",
                "members": [self.admin_pubkey],
            },
        )
        self.save()
        return self.public_record(node)

    def plan_join(self, provider: str, count: int) -> list[dict[str, Any]]:
        if not any(n["status"] == "ready" for n in self.nodes.values()):
            raise LegionRefusal(
                409, "unsafe-operation", "plan a join only after the init node is ready"
            )
        if count < 1 or count > 100:
            raise LegionRefusal(400, "invalid-params", f"count must be 1..100, not {count}")
        planned = [self._new_record(provider, "join") for _ in range(count)]
        self.save()
        return [self.public_record(node) for node in planned]

    async def materialize(self, interrupt_after: int | None = None) -> dict[str, Any]:
        planned = [n for n in self.nodes.values() if n["status"] == "planned"]
        if not planned:
            raise LegionRefusal(409, "nothing-planned", "no planned nodes to materialize")
        if self.config.has_fault("graph-run-one-node"):
            # Fault: a graph run takes only the first planned node; the rest stay planned.
            planned = planned[:1]
        run = {
            "id": f"graph-{self.ids.token_hex('graph', 4)}",
            "planned": [n["name"] for n in planned],
            "state": "running",
            "materialized": [],
            "error": None,
        }
        self.state["graph_runs"].append(run)
        self.save()
        loop = asyncio.get_running_loop()
        try:
            for node in planned:
                node["status"] = "provisioning"
            results = await asyncio.gather(
                *(self._start_node(n) for n in planned), return_exceptions=True
            )
            for node, result in zip(planned, results, strict=True):
                if isinstance(result, Exception):
                    node["status"] = "failed"
                    raise result
            if self.config.has_fault("interrupt-leaves-half-member"):
                # Fault: every planned node's syncing row is pushed before the sequence starts,
                # so an interrupted run leaves rows for nodes it never materialized.
                for node in planned:
                    self._row(node, status="syncing")
                await self.push_membership()
            for index, node in enumerate(planned):
                if interrupt_after is not None and index >= interrupt_after:
                    for rest in planned[index:]:
                        await self._stop_node(rest["name"])
                        # Fault: the nodes not materialized are left provisioning.
                        left = (
                            "provisioning"
                            if self.config.has_fault("interrupted-run-leaves-provisioning")
                            else "planned"
                        )
                        rest.update(status=left, down=True)
                    run["state"] = "interrupted"
                    run["error"] = f"graph run interrupted after {index} of {len(planned)} node(s)"
                    break
                began = loop.time()
                self._row(node, status="syncing")
                await self.push_membership(joining=node)
                pushed = loop.time()
                calls = await self.wait_active_everywhere(node)
                log.info(
                    "%s joined: membership pushed in %.3f s, active everywhere %.3f s later "
                    "(%d polls)",
                    node["name"],
                    pushed - began,
                    loop.time() - pushed,
                    calls,
                )
                node["status"] = "ready"
                run["materialized"].append(node["name"])
                self.save()
            else:
                run["state"] = "succeeded"
        except LegionRefusal as error:
            run["state"] = "failed"
            run["error"] = error.message
            self.save()
            raise
        self.save()
        return run

    def refuse_during_graph_run(self, operation: str, name: str) -> None:
        """Refuse a membership change while a graph run is running (checked before the HTTP
        API queues the operation behind the run, and again once it holds the lock)."""
        if operation == "decommission" and self.config.has_fault("graph-run-allows-decommission"):
            return  # Fault: the decommission queues behind the run and then lands.
        self._refuse_if_graph_running(f"{operation} {name}")

    def _refuse_if_graph_running(self, operation: str) -> None:
        if any(run["state"] == "running" for run in self.state["graph_runs"]):
            raise LegionRefusal(
                409, "unsafe-operation", f"{operation} refused: a graph run is in progress"
            )

    async def decommission(self, name: str) -> dict[str, Any]:
        node = self.record(name)
        self.refuse_during_graph_run("decommission", name)
        if node["status"] != "ready":
            raise LegionRefusal(
                409, "unsafe-operation", f"decommission {name} refused: node is {node['status']}"
            )
        others = [n for n in self.nodes.values() if n["status"] == "ready" and n["name"] != name]
        # Fault: the last active node is decommissioned too (the cluster is left with none).
        if not others and not self.config.has_fault("last-node-decommission-accepted"):
            raise LegionRefusal(
                409, "unsafe-operation", f"decommission {name} refused: it is the last active node"
            )
        now = utc_now()
        if self.config.has_fault("backdated-decommission"):
            now = backdated(now, 60)
        self._row(node, status="decommissioned", decommissioned_at=now)
        node["status"] = "decommissioned"
        await self.push_membership()
        return self.public_record(node)

    async def reactivate(self, name: str) -> dict[str, Any]:
        node = self.record(name)
        self.refuse_during_graph_run("reactivate", name)
        if node["status"] != "decommissioned":
            raise LegionRefusal(
                409, "unsafe-operation", f"reactivate {name} refused: node is {node['status']}"
            )
        if node.get("down"):
            await self._restart(node)
        node["status"] = "provisioning"
        self._row(node, status="syncing", decommissioned_at=None)
        await self.push_membership(joining=node)
        await self.wait_active_everywhere(node)
        node["status"] = "ready"
        self.save()
        return self.public_record(node)

    async def replace(self, name: str, provider: str) -> dict[str, Any]:
        node = self.record(name)
        if node["status"] == "ready" and self.config.has_fault("replace-skips-decommission"):
            # Fault: Legion retires its record of the replaced node but never writes the
            # decommissioned row, so every node keeps it active.
            node["status"] = "decommissioned"
        elif node["status"] == "ready":
            await self.decommission(name)
        elif node["status"] != "decommissioned":
            raise LegionRefusal(
                409, "unsafe-operation", f"replace {name} refused: node is {node['status']}"
            )
        replacement = self._new_record(provider, "join")
        self.save()
        run = await self.materialize()
        if run["state"] != "succeeded":
            raise LegionRefusal(502, "replace-failed", run["error"] or "graph run failed")
        return self.public_record(self.nodes[replacement["name"]])

    async def destroy(self, name: str) -> dict[str, Any]:
        node = self.record(name)
        if node["status"] == "ready" and node.get("node_id") in self.state["membership"]:
            others = [
                n for n in self.nodes.values() if n["status"] == "ready" and n["name"] != name
            ]
            if others:
                await self.decommission(name)
        if node.get("admin_url"):
            await self._stop_node(name)
        self.nodes.pop(name)
        shutil.rmtree(self.directory / "nodes" / name, ignore_errors=True)
        self.save()
        return {"destroyed": name}

    async def destroy_all(self) -> dict[str, Any]:
        names = list(self.nodes)
        await asyncio.gather(*(self._shutdown_host(host) for host in list(self.hosts.values())))
        for name in names:
            shutil.rmtree(self.directory / "nodes" / name, ignore_errors=True)
        self.state.update(nodes={}, membership={}, graph_runs=[], legion_seq=0)
        self.save()
        return {"destroyed": names}
