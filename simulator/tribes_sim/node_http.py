"""The four listeners of a simulated node: admin API, plugin API, sync endpoint, SSH."""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from tribes_sim.config import SimConfig
from tribes_sim.node import (
    OTHER_PROVIDER_PORTS,
    PLUGIN_CATALOGUE,
    PROVIDER_PORTS,
    NodeRefused,
    NodeSpec,
    SimNode,
    bind_in_range,
    bind_socket,
    utc_now,
)
from tribes_sim.ssh import (
    SimSshServer,
    generate_ssh_keypair,
    public_key_fingerprint,
    start_ssh_server,
)
from tribes_sim.store import SUPERTEST_MIGRATIONS, SyncEvent
from tribesqa.nip98 import Nip98Error

SSH_USER = "tribes"
LISTENERS = ("admin", "plugin", "sync", "ssh")


def _json(status: int, body: dict[str, Any]) -> web.Response:
    return web.json_response(body, status=status)


class NodeServers:
    """Binds a node's listeners (same ports across restarts) and routes requests to it."""

    def __init__(self, spec: NodeSpec, config: SimConfig) -> None:
        self.spec = spec
        self.config = config
        self.node: SimNode | None = None
        self.runners: list[web.AppRunner] = []
        self.ssh: SimSshServer | None = None
        self.ports: dict[str, int] = {}
        self.host_key_fingerprint = ""

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> dict[str, Any]:
        spec = self.spec
        ports_file = spec.directory / "ports.json"
        spec.directory.mkdir(parents=True, exist_ok=True)
        saved = json.loads(ports_file.read_text()) if ports_file.exists() else {}
        node = SimNode(spec, self.config)
        self.node = node
        low, high = PROVIDER_PORTS.get(spec.provider, OTHER_PROVIDER_PORTS)
        rng = random.Random(secrets.randbits(64))
        sockets = {}
        for listener in ("admin", "plugin", "sync"):
            wanted = saved.get(listener) or spec.ports.get(listener)
            sockets[listener] = (
                bind_socket("127.0.0.1", wanted)
                if wanted
                else bind_in_range("127.0.0.1", low, high, rng)
            )
            self.ports[listener] = sockets[listener].getsockname()[1]
        node.transport_address = f"http://127.0.0.1:{self.ports['sync']}"
        for listener, app in (
            ("admin", self._admin_app()),
            ("plugin", self._plugin_app()),
            ("sync", self._sync_app()),
        ):
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            await web.SockSite(runner, sockets[listener]).start()
            self.runners.append(runner)
        await self._start_ssh(saved, low, high, rng)
        # Atomic: the runner reads this file while a node restarts and must never see it empty.
        partial = ports_file.with_suffix(".json.partial")
        partial.write_text(json.dumps(self.ports))
        os.replace(partial, ports_file)
        await node.start()
        return self.describe()

    async def _start_ssh(
        self, saved: dict[str, int], low: int, high: int, rng: random.Random
    ) -> None:
        assert self.node is not None
        host_key = self.spec.directory / "ssh" / "host_ed25519"
        if not host_key.exists():
            host_key.parent.mkdir(parents=True, exist_ok=True)
            generate_ssh_keypair(host_key, comment=f"host@{self.spec.name}")
        self.host_key_fingerprint = public_key_fingerprint(Path(str(host_key) + ".pub").read_text())
        env = {
            "TRIBES_ROOT": str(self.node.tree.root),
            "TRIBES_LOCAL_PORT": str(self.ports["plugin"]),
            "TRIBES_NODE": self.spec.name,
            "TRIBES_SIM_LEGION": self.spec.legion_url,
            # The venv's bin first, so fault templates can call tribes-sim-legion as on a node.
            "PATH": os.path.dirname(sys.executable)
            + os.pathsep
            + os.environ.get("PATH", "/usr/bin:/bin"),
        }
        for attempt in range(20):
            port = saved.get("ssh") if attempt == 0 and saved.get("ssh") else None
            if port is None:
                probe = bind_in_range("127.0.0.1", low, high, rng)
                port = probe.getsockname()[1]
                probe.close()
            try:
                self.ssh = await start_ssh_server(
                    "127.0.0.1",
                    port,
                    host_key_path=host_key,
                    authorized_keys=self.spec.ssh_authorized_keys,
                    user=SSH_USER,
                    env=env,
                    cwd=self.node.tree.root,
                )
                self.ports["ssh"] = self.ssh.port
                return
            except OSError:
                continue
        raise OSError(f"{self.spec.name}: could not bind an SSH port")

    def describe(self) -> dict[str, Any]:
        assert self.node is not None
        return {
            "name": self.spec.name,
            "node_id": self.node.node_id,
            "pubkey": self.node.pubkey,
            "provider": self.spec.provider,
            "region": self.node.region,
            "ports": dict(self.ports),
            "admin_url": f"http://127.0.0.1:{self.ports['admin']}",
            "transport_address": self.node.transport_address,
            "ssh": {"host": "127.0.0.1", "port": self.ports.get("ssh"), "user": SSH_USER},
            "host_key_fingerprint": self.host_key_fingerprint,
            "root": str(self.node.tree.root),
            "ready": self.node.ready,
        }

    async def stop(self) -> None:
        """Close listeners and the node. Used for graceful stops and for in-process crashes."""
        if self.node is not None:
            # Pending long polls (up to sync_long_poll_s) would hold up the runners' cleanup.
            await self.node.begin_close()
        if self.ssh is not None:
            await self.ssh.close()
            self.ssh = None
        for runner in self.runners:
            await runner.cleanup()
        self.runners.clear()
        if self.node is not None:
            await self.node.close()
            self.node = None

    # -- admin API ----------------------------------------------------------------------------
    def _admin_app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_post("/api/admin/management", self._management)
        return app

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
        return _json(200, {"status": "ok"})

    async def _management(self, request: web.Request) -> web.Response:
        node = self._live()
        body = await request.read()
        try:
            node.verifier.verify(
                request.headers.get("Authorization"), str(request.url), request.method, body
            )
        except Nip98Error as error:
            return _json(401, {"ok": False, "error": error.code, "message": str(error)})
        try:
            envelope = json.loads(body)
        except ValueError:
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
        if not isinstance(params, dict):
            return _json(
                400,
                {"ok": False, "error": "invalid-params", "message": "'params' must be an object"},
            )
        method = envelope["method"]
        handler = self._methods().get(method)
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
            return await node.resync()

        return {
            "node.info": sync_call(node.node_info),
            "cluster_nodes.list": sync_call(lambda: {"nodes": node.store.members()}),
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

    # -- plugin API (supertest) ---------------------------------------------------------------
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
            if node is None or not node.plugin_served():
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
        return _json(200, {"tables": node.store.plugin_tables_present(), "migrations": applied})

    async def _plugin_create_case(self, node: SimNode, request: web.Request) -> web.Response:
        body = await self._read_object(request, {"run_id": str, "name": str})
        case_id = f"case-{secrets.token_hex(8)}"
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
        event_id = f"event-{secrets.token_hex(8)}"
        data = {
            "id": event_id,
            "run_id": body["run_id"],
            "case_id": body["case_id"],
            "kind": body["kind"],
            "payload": payload,
            "created_at": utc_now(),
        }
        await node.write("supertest", "event", data)
        return _json(201, {**data, "origin_node": node.node_id})

    async def _plugin_state(self, node: SimNode, request: web.Request) -> web.Response:
        return _json(200, node.store.plugin_state(request.query.get("run_id")))

    # -- sync endpoint ------------------------------------------------------------------------
    def _sync_app(self) -> web.Application:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_get("/sync/events", self._sync_events)
        app.router.add_post("/sync/publish", self._sync_publish)
        app.router.add_get("/sync/health", self._sync_health)
        return app

    def _sync_peer(self, request: web.Request) -> tuple[SimNode, str]:
        node = self._live()
        peer = request.headers.get("X-Tribes-Node", "")
        if peer in node.blocked_peers:
            # A partition drops traffic: close the connection without an answer.
            if request.transport is not None:
                request.transport.close()
            raise web.HTTPServiceUnavailable()
        if not node.peer_allowed(peer):
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
        node, peer = self._sync_peer(request)
        body = await request.json()
        events = [SyncEvent.from_wire(raw) for raw in body.get("events", [])]
        applied = await node.ingest(events, via=peer)
        # The publisher backfills from this vector when the push left a gap.
        return _json(200, {"applied": applied, "version_vector": node.store.version_vector})
