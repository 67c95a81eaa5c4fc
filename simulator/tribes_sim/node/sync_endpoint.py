"""A node's sync endpoint: peers long-poll ``/sync/events`` and push to ``/sync/publish``.

Mixed into ``NodeServers``.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from tribes_sim.node.core import SimNode
from tribes_sim.node.replies import json_reply as _json
from tribes_sim.store import SyncEvent


class SyncEndpointMixin:
    """NodeServers's part: the sync listener's routes (uses the attributes NodeServers sets up)."""

    def _sync_app(self) -> web.Application:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_get("/sync/events", self._sync_events)
        app.router.add_post("/sync/publish", self._sync_publish)
        app.router.add_get("/sync/health", self._sync_health)
        return app

    def _sync_peer(self, request: web.Request, *, publish: bool = False) -> tuple[SimNode, str]:
        node = self._live()
        peer = request.headers.get("X-Tribes-Node", "")
        leaks = publish and node.config.has_fault("partition-leaks-publishes")
        if peer in node.blocked_peers and not leaks:
            # A partition drops traffic: close the connection without an answer.
            if request.transport is not None:
                request.transport.close()
            raise web.HTTPServiceUnavailable()
        if not node.peer_allowed(peer) and not (leaks and node.store.member(peer)):
            raise web.HTTPForbidden(
                text=json.dumps(
                    {"error": "not-a-member", "message": f"{peer!r} is not an active member"}
                ),
                content_type="application/json",
            )
        return node, peer

    async def _sync_health(self, request: web.Request) -> web.Response:
        node = self._live()
        return _json(200, {"status": "ok", "node_id": node.node_id})

    async def _sync_events(self, request: web.Request) -> web.Response:
        node, _peer = self._sync_peer(request)
        try:
            vector = {str(k): int(v) for k, v in json.loads(request.query.get("vv", "{}")).items()}
            wait_s = min(float(request.query.get("wait", "0")), 30.0)
        except (ValueError, AttributeError):
            return _json(
                400, {"error": "invalid-params", "message": "vv must be a JSON object of ints"}
            )
        try:
            body = await node.events_for(vector, wait_s)
        except asyncio.CancelledError:
            raise
        return _json(200, body)

    async def _sync_publish(self, request: web.Request) -> web.Response:
        node, peer = self._sync_peer(request, publish=True)
        body = await request.json()
        events = [SyncEvent.from_wire(raw) for raw in body.get("events", [])]
        applied = await node.ingest(events, via=peer)
        # The publisher backfills from this vector when the push left a gap.
        return _json(200, {"applied": applied, "version_vector": node.store.version_vector})
