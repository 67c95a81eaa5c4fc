"""The supertest plugin's HTTP API on a node (served only while the plugin runs).

Mixed into ``NodeServers``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from tribes_sim.node.core import SimNode
from tribes_sim.node.replies import json_reply as _json
from tribes_sim.node.spec import PLUGIN_CATALOGUE
from tribes_sim.node.timestamps import utc_now
from tribes_sim.store import SUPERTEST_MIGRATIONS


class PluginApiMixin:
    """NodeServers's part: the plugin listener's routes (uses the attributes NodeServers sets up)."""

    def _plugin_app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024)
        base = "/plugins-api/supertest"
        app.router.add_get(f"{base}/health", self._plugin(self._plugin_health))
        app.router.add_get(f"{base}/schema", self._plugin(self._plugin_schema))
        app.router.add_post(f"{base}/cases", self._plugin(self._plugin_create_case))
        app.router.add_post(
            f"{base}/cases/{{case_id}}/increment", self._plugin(self._plugin_increment)
        )
        app.router.add_post(f"{base}/events", self._plugin(self._plugin_create_event))
        app.router.add_get(f"{base}/state", self._plugin(self._plugin_state))
        return app

    def _plugin(
        self, handler: Callable[[SimNode, web.Request], Awaitable[web.Response]]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def guarded(request: web.Request) -> web.Response:
            node = self.node
            gone = _json(
                404, {"error": "not-found", "message": "plugin supertest is not installed"}
            )
            # Fault: the health route answers although the plugin is not installed.
            unguarded = (
                node is not None
                and handler == self._plugin_health
                and node.config.has_fault("plugin-health-before-install")
            )
            if (node is None or not node.plugin_served()) and not unguarded:
                return gone
            try:
                return await handler(node, request)
            except sqlite3.OperationalError:
                # The tables went away while the request ran (a rollback's down migration).
                if node.store.plugin_tables_present():
                    raise
                return gone

        return guarded

    @staticmethod
    async def _read_object(request: web.Request, required: dict[str, type]) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(
                text=json.dumps({"error": "invalid-payload", "message": "body is not JSON"}),
                content_type="application/json",
            ) from None
        if not isinstance(body, dict):
            body = {}
        for name, kind in required.items():
            if not isinstance(body.get(name), kind) or isinstance(body.get(name), bool):
                raise web.HTTPBadRequest(
                    text=json.dumps(
                        {
                            "error": "invalid-params",
                            "message": f"field {name!r} must be {kind.__name__}",
                        }
                    ),
                    content_type="application/json",
                )
        return body

    async def _plugin_health(self, node: SimNode, request: web.Request) -> web.Response:
        return _json(
            200, {"status": "ok", "plugin": "supertest", "version": PLUGIN_CATALOGUE["supertest"]}
        )

    async def _plugin_schema(self, node: SimNode, request: web.Request) -> web.Response:
        applied = [m for m in node.store.applied_migrations() if m in SUPERTEST_MIGRATIONS]
        tables = node.store.plugin_tables_present()
        if node.config.has_fault("plugin-schema-incomplete"):
            tables = [t for t in tables if t != "supertest_events"]  # Fault: a table unlisted.
        return _json(200, {"tables": tables, "migrations": applied})

    async def _plugin_create_case(self, node: SimNode, request: web.Request) -> web.Response:
        body = await self._read_object(request, {"run_id": str, "name": str})
        case_id = f"case-{node.ids.token_hex('case', 8)}"
        await node.write(
            "supertest",
            "case",
            {
                "id": case_id,
                "run_id": body["run_id"],
                "name": body["name"],
                "updated_at": utc_now(),
            },
        )
        return _json(201, node.store.case(case_id) or {})

    async def _plugin_increment(self, node: SimNode, request: web.Request) -> web.Response:
        body = await self._read_object(request, {})
        by = body.get("by", 1)
        if not isinstance(by, int) or isinstance(by, bool):
            return _json(400, {"error": "invalid-params", "message": "field 'by' must be int"})
        case_id = request.match_info["case_id"]
        case = node.store.case(case_id)
        if case is None:
            return _json(404, {"error": "not-found", "message": f"no case {case_id!r}"})
        await node.write(
            "supertest",
            "increment",
            {
                "case_id": case_id,
                "run_id": case["run_id"],
                "by": by,
                "counter_after": case["counter"] + by,
                "at": utc_now(),
            },
        )
        return _json(200, node.store.case(case_id) or {})

    async def _plugin_create_event(self, node: SimNode, request: web.Request) -> web.Response:
        body = await self._read_object(request, {"run_id": str, "case_id": str, "kind": str})
        payload = body.get("payload", {})
        if not isinstance(payload, dict):
            return _json(
                400, {"error": "invalid-params", "message": "field 'payload' must be an object"}
            )
        event_id = f"event-{node.ids.token_hex('event', 8)}"
        data = {
            "id": event_id,
            "run_id": body["run_id"],
            "case_id": body["case_id"],
            "kind": body["kind"],
            "payload": payload,
            "created_at": utc_now(),
        }
        await node.write("supertest", "event", data)
        acknowledged = {**data, "id": node.acknowledged_event_id(event_id)}
        return _json(201, {**acknowledged, "origin_node": node.node_id})

    async def _plugin_state(self, node: SimNode, request: web.Request) -> web.Response:
        state = node.store.plugin_state(request.query.get("run_id"))
        return _json(200, node.plugin_state_answer(state))
