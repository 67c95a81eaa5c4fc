"""Legion's HTTP API (what ``fleet.LegionClient`` and ``tribes-sim-legion`` call)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tribes_sim.legion.core import Legion
from tribes_sim.legion.refusal import LegionRefusal


def build_app(legion: Legion, stop: asyncio.Event) -> web.Application:
    routes = web.RouteTableDef()

    def guarded(
        handler: Any,
        *,
        exclusive: bool = True,
        precheck: Callable[[web.Request], None] | None = None,
    ) -> Any:
        # Orchestration is serialized; reads and the nemesis are not: a fault must be injectable
        # and healable while a graph run waits for a join it blocks.
        async def wrapper(request: web.Request) -> web.Response:
            body: dict[str, Any] = {}
            if request.can_read_body:
                try:
                    body = await request.json()
                except ValueError:
                    return web.json_response(
                        {"error": "invalid-payload", "message": "body is not JSON"}, status=400
                    )
                if not isinstance(body, dict):
                    return web.json_response(
                        {"error": "invalid-payload", "message": "body must be an object"},
                        status=400,
                    )
            try:
                if precheck is not None:
                    precheck(request)  # a refusal that must not wait for the lock
                if exclusive:
                    async with legion.lock:
                        result = await handler(request, body)
                else:
                    result = await handler(request, body)
            except LegionRefusal as error:
                return web.json_response(
                    {"error": error.code, "message": error.message}, status=error.status
                )
            return web.json_response(result)

        return wrapper

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "nodes": len(legion.nodes)})

    async def list_nodes(request: web.Request, body: dict[str, Any]) -> Any:
        return [legion.public_record(n) for n in legion.nodes.values()]

    async def snapshot(request: web.Request, body: dict[str, Any]) -> Any:
        return legion.snapshot()

    async def init(request: web.Request, body: dict[str, Any]) -> Any:
        return await legion.provision_init(str(body.get("provider", "hetzner")))

    async def plan(request: web.Request, body: dict[str, Any]) -> Any:
        count = body.get("count", 1)
        if not isinstance(count, int):
            raise LegionRefusal(400, "invalid-params", "plan: field 'count' must be an integer")
        return legion.plan_join(str(body.get("provider", "")), count)

    async def materialize(request: web.Request, body: dict[str, Any]) -> Any:
        return await legion.materialize(body.get("interrupt_after"))

    async def node_op(request: web.Request, body: dict[str, Any]) -> Any:
        name, op = request.match_info["name"], request.match_info["op"]
        if op == "decommission":
            return await legion.decommission(name)
        if op == "reactivate":
            return await legion.reactivate(name)
        if op == "replace":
            return await legion.replace(
                name, str(body.get("provider", legion.record(name)["provider"]))
            )
        raise LegionRefusal(404, "unknown-operation", f"unknown node operation {op!r}")

    async def destroy(request: web.Request, body: dict[str, Any]) -> Any:
        return await legion.destroy(request.match_info["name"])

    async def destroy_all(request: web.Request, body: dict[str, Any]) -> Any:
        return await legion.destroy_all()

    async def nemesis(request: web.Request, body: dict[str, Any]) -> Any:
        return await legion.nemesis(request.match_info["action"], body)

    async def shutdown(request: web.Request) -> web.Response:
        stop.set()
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/nodes", guarded(list_nodes, exclusive=False))
    app.router.add_get("/snapshot", guarded(snapshot, exclusive=False))
    app.router.add_post("/nodes/init", guarded(init))
    app.router.add_post("/nodes/plan", guarded(plan))
    app.router.add_post("/graph-runs", guarded(materialize))

    def refuse_during_graph_run(request: web.Request) -> None:
        name, op = request.match_info["name"], request.match_info["op"]
        if op in ("decommission", "reactivate"):
            legion.refuse_during_graph_run(op, name)

    app.router.add_post("/nodes/{name}/{op}", guarded(node_op, precheck=refuse_during_graph_run))
    app.router.add_delete("/nodes/{name}", guarded(destroy))
    app.router.add_delete("/nodes", guarded(destroy_all))
    app.router.add_post("/nemesis/{action}", guarded(nemesis, exclusive=False))
    app.router.add_post("/shutdown", shutdown)
    del routes
    return app
