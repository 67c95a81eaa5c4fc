"""A node's admin API: ``/healthz`` and the NIP-98-protected management endpoint.

Mixed into ``NodeServers``.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from tribes_sim.http_auth import AuthRefused
from tribes_sim.node.core import SimNode
from tribes_sim.node.replies import json_reply as _json
from tribes_sim.node.spec import NodeRefused


class AdminApiMixin:
    """NodeServers's part: the admin listener's routes (uses the attributes NodeServers sets up)."""

    def _admin_app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_post("/api/admin/management", self._management)
        app.on_response_prepare.append(self._date_by_node_clock)
        return app

    async def _date_by_node_clock(self, request: web.Request, response: web.StreamResponse) -> None:
        """The ``Date`` header by the node's own wall clock, which the nemesis can skew
        (``clock-skew``): a runner compares it with its clock, as it would a real node's."""
        node = self.node
        skew = node.hlc.skew_s if node is not None else 0.0
        if skew:
            response.headers["Date"] = email.utils.formatdate(time.time() + skew, usegmt=True)

    def _live(self) -> SimNode:
        if self.node is None:
            raise web.HTTPServiceUnavailable(
                text='{"status":"starting"}', content_type="application/json"
            )
        return self.node

    async def _healthz(self, request: web.Request) -> web.Response:
        node = self._live()
        if not node.ready or node.restarting:
            return _json(503, {"status": "starting", "reason": "repo-unavailable"})
        if node.config.has_fault("healthz-plain-text"):
            return web.Response(status=200, text="OK")  # Fault: not the NodeHealth body.
        return _json(200, {"status": "ok"})

    def _signed_url(self, request: web.Request) -> str:
        """The URL the ``u`` tag must name: this node's canonical admin URL (what Legion records
        as ``admin_url``) with the request's path and query. Never rebuilt from the ``Host``
        header, which the client chooses: that would let an event signed for another node (or
        any host) pass here. The ``host-header-trusted`` fault does exactly that.
        """
        if self.config.has_fault("host-header-trusted"):
            return str(request.url)
        return f"{self.admin_url}{request.rel_url}"

    async def _management(self, request: web.Request) -> web.Response:
        node = self._live()
        body = await request.read()
        try:
            node.caller = node.verifier.verify(
                request.headers.get("Authorization"),
                self._signed_url(request),
                request.method,
                body,
            )
        except AuthRefused as error:
            return _json(401, {"ok": False, "error": error.code, "message": str(error)})
        try:
            envelope = json.loads(body)
        except ValueError:
            if node.config.has_fault("non-json-body-500"):
                return web.Response(status=500, text="500 Internal Server Error")
            return _json(
                400, {"ok": False, "error": "invalid-payload", "message": "body is not JSON"}
            )
        if (
            not isinstance(envelope, dict)
            or not isinstance(envelope.get("method"), str)
            or not envelope["method"]
        ):
            return _json(
                400,
                {
                    "ok": False,
                    "error": "invalid-payload",
                    "message": "body needs a non-empty string 'method'",
                },
            )
        # Absent or null params mean {}; anything else that is not an object is refused.
        params = envelope.get("params")
        if params is None:
            params = {}
        if not isinstance(params, dict) and node.config.has_fault("invalid-params-accepted"):
            params = {}  # Fault: anything that is not an object is read as no params.
        if not isinstance(params, dict):
            return _json(
                400,
                {"ok": False, "error": "invalid-params", "message": "'params' must be an object"},
            )
        method = envelope["method"]
        handler = self._methods().get(method)
        if handler is None and node.config.has_fault("unknown-method-500"):
            return web.Response(status=500, text="500 Internal Server Error")
        if handler is None:
            return _json(
                400,
                {"ok": False, "error": "unknown-method", "message": f"unknown method {method!r}"},
            )
        if (not node.ready or node.restarting) and not method.startswith("control."):
            return _json(
                503,
                {"ok": False, "error": "not-ready", "message": "node is starting or restarting"},
            )
        try:
            result = await handler(params)
        except NodeRefused as refused:
            return _json(
                refused.status, {"ok": False, "error": refused.code, "message": refused.message}
            )
        return _json(200, {"ok": True, "result": result})

    def _methods(self) -> dict[str, Callable[[dict[str, Any]], Awaitable[Any]]]:
        node = self.node
        assert node is not None

        def sync_call(fn: Callable[[], Any]) -> Callable[[dict[str, Any]], Awaitable[Any]]:
            async def call(params: dict[str, Any]) -> Any:
                return fn()

            return call

        def with_params(
            fn: Callable[[dict[str, Any]], Any],
        ) -> Callable[[dict[str, Any]], Awaitable[Any]]:
            async def call(params: dict[str, Any]) -> Any:
                return fn(params)

            return call

        async def tribe_status(params: dict[str, Any]) -> Any:
            tribe = node.store.tribe()
            if tribe is None:
                raise NodeRefused(
                    409, "tribe-unknown", f"{node.name} holds no tribe yet (not replayed)"
                )
            return tribe

        async def resync(params: dict[str, Any]) -> Any:
            if params.get("full", True) is not True:
                raise NodeRefused(400, "invalid-params", "sync.resync supports only {full: true}")
            own = node.own_row()
            if (
                own is not None
                and own["status"] == "decommissioned"
                and not node.config.has_fault("resync-rejoins-decommissioned")
            ):
                raise NodeRefused(
                    409,
                    "unsafe-operation",
                    f"{node.name} is decommissioned: a resync would write its row back to "
                    "syncing and rejoin the sync mesh (ask Legion to reactivate it)",
                )
            return await node.resync()

        return {
            "node.info": sync_call(node.node_info),
            "cluster_nodes.list": sync_call(lambda: {"nodes": node.listed_members()}),
            "cluster_status": sync_call(node.cluster_status),
            "sync.status": sync_call(node.sync_status),
            "sync.resync": resync,
            "tribe.status": tribe_status,
            "generation.status": sync_call(node.generation_status),
            "rollout.preview": with_params(node.preview),
            "rollout.start": with_params(node.start_rollout),
            "rollout.status": with_params(node.job_status),
            "generation.rollback": with_params(node.start_rollback),
            "plugins.list": sync_call(node.plugins_list),
            "diagnostics": sync_call(node.diagnostics),
            "control.apply_membership": node.apply_membership,
            "control.init_tribe": node.init_tribe,
        }
