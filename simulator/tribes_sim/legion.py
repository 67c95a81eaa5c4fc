"""The simulated Legion orchestrator: provisions nodes, runs join graphs, pushes membership.

One aiohttp server on loopback; its state lives in ``DIR/legion/state.json``. It spawns node
hosts (``tribes_sim.host``, forked from a pre-imported zygote so a new host costs milliseconds,
not the ~0.7 s of imports), talks to nodes through their NIP-98-protected management API with
its own key, and serves the nemesis. ``tribes-sim-legion`` is its command line (JSON out).

    python -m tribes_sim.legion --dir DIR
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tribes_sim.config import SimConfig
from tribes_sim.hlc import HybridLogicalClock
from tribes_sim.node import PROVIDER_REGIONS, backdated, set_timestamp_precision, utc_now
from tribes_sim.procs import pid_alive
from tribesqa.keys import AdminKey, write_key_file
from tribesqa.nip98 import authorization_for

log = logging.getLogger("tribes_sim.legion")
PROVIDERS = ("hetzner", "scaleway", "ovh")


class LegionError(Exception):
    """A refused or failed Legion operation (HTTP status + contract error code)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class HostProcess:
    host_id: str
    socket: Path
    pid: int
    # Set only for a host started as a fresh interpreter (fallback when the zygote is unusable).
    process: subprocess.Popen[bytes] | None = None
    nodes: list[str] = field(default_factory=list)
    session: aiohttp.ClientSession | None = None

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return pid_alive(self.pid)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    async def wait(self, timeout_s: float) -> bool:
        """Wait for the process to exit; return whether it did."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.alive():
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True


@dataclass
class PendingHost:
    """A host being spawned, and the nodes already promised a slot on it."""

    task: asyncio.Future[HostProcess]
    nodes: list[str] = field(default_factory=list)
    # Holds the spawning task: the event loop keeps only a weak reference to it.
    spawner: asyncio.Task[None] | None = None


class HostZygote:
    """``tribes_sim.host --zygote``: imports the host stack once, then forks hosts on request."""

    def __init__(self, directory: Path, config_path: Path) -> None:
        self.directory = directory
        self.config_path = config_path
        self.process: asyncio.subprocess.Process | None = None
        self.ready: asyncio.Task[bool] | None = None
        self.lock = asyncio.Lock()

    async def start(self) -> None:
        with open(self.directory / "hosts" / "zygote.log", "ab") as log_file:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tribes_sim.host",
                "--zygote",
                "--config",
                str(self.config_path),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log_file,
            )
        self.ready = asyncio.get_running_loop().create_task(self._read_ready())

    async def _read_ready(self) -> bool:
        assert self.process is not None and self.process.stdout is not None
        line = await self.process.stdout.readline()
        with contextlib.suppress(ValueError):
            return bool(line) and json.loads(line).get("ready") is True
        return False

    async def fork(self, socket_path: Path, log_path: Path) -> int | None:
        """The pid of a new host serving ``socket_path``, or None if the zygote is unusable."""
        if self.ready is None or self.process is None or self.process.returncode is not None:
            return None
        try:
            if not await asyncio.wait_for(asyncio.shield(self.ready), 20):
                return None
            async with self.lock:
                assert self.process.stdin is not None and self.process.stdout is not None
                request = {"socket": str(socket_path), "log": str(log_path)}
                self.process.stdin.write(json.dumps(request).encode() + b"\n")
                await self.process.stdin.drain()
                answer = json.loads(await asyncio.wait_for(self.process.stdout.readline(), 10))
        except (OSError, ValueError, TimeoutError) as error:
            log.warning("zygote unusable, falling back to fresh host processes: %s", error)
            return None
        pid = answer.get("pid")
        return pid if isinstance(pid, int) else None

    async def close(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        if self.process.stdin is not None:
            self.process.stdin.close()  # end of requests: the zygote exits
        try:
            await asyncio.wait_for(self.process.wait(), 5)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


class Legion:
    def __init__(self, directory: Path, config: SimConfig) -> None:
        self.directory = directory
        self.config = config
        self.state_path = directory / "legion" / "state.json"
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        (directory / "hosts").mkdir(exist_ok=True)
        (directory / "nodes").mkdir(exist_ok=True)
        self.config_path = directory / "sim-config.json"
        self.config_path.write_text(config.to_json())
        keys = json.loads((directory / "fleet-keys.json").read_text())
        self.admin_pubkey: str = keys["admin_pubkey"]
        self.ssh_client_public: str = keys["ssh_client_public"]
        legion_key_path = directory / "secrets" / "legion.key"
        if not legion_key_path.exists():
            write_key_file(legion_key_path, AdminKey.generate())
        self.key = AdminKey.from_file(legion_key_path)
        self.hlc = HybridLogicalClock("legion")
        self.state: dict[str, Any] = {
            "nodes": {},
            "membership": {},
            "legion_seq": 0,
            "graph_runs": [],
            "counters": {},
            "tribe_id": str(uuid.uuid4()),
        }
        if self.state_path.exists():
            self.state.update(json.loads(self.state_path.read_text()))
        self.hosts: dict[str, HostProcess] = {}
        self.pending_hosts: list[PendingHost] = []
        self.zygote = HostZygote(directory, self.config_path)
        self.lock = asyncio.Lock()
        # aiohttp rather than httpx: a 50-node join makes thousands of calls and aiohttp's
        # per-request overhead is several times lower. Requests are signed in ``call``.
        self.http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=10.0),
            connector=aiohttp.TCPConnector(limit=200),
        )
        self.url = ""

    async def start(self) -> None:
        """Start the zygote; it finishes its imports while Legion already serves."""
        try:
            await self.zygote.start()
        except OSError as error:
            log.warning("no zygote (%s): hosts will start as fresh processes", error)

    # -- persistence ---------------------------------------------------------------------------
    def save(self) -> None:
        temporary = self.state_path.with_suffix(".tmp")
        # Compact: with ``indent`` json falls back to its pure-Python encoder (3-4x slower), and
        # a join saves three times.
        temporary.write_text(json.dumps(self.state, sort_keys=True, separators=(",", ":")))
        os.replace(temporary, self.state_path)

    @property
    def nodes(self) -> dict[str, dict[str, Any]]:
        return self.state["nodes"]

    def record(self, name: str) -> dict[str, Any]:
        node = self.nodes.get(name)
        if node is None:
            raise LegionError(404, "unknown-node", f"Legion has no node {name!r}")
        return node

    def public_record(self, node: dict[str, Any]) -> dict[str, Any]:
        transport = node.get("transport_address")
        sync_endpoint = transport
        if transport and self.config.has_fault("wrong-transport-address"):
            host, port = transport.rsplit(":", 1)
            sync_endpoint = f"{host}:{int(port) + 1}"
        return {
            "name": node["name"],
            "provider": node["provider"],
            "region": node["region"],
            "status": node["status"],
            "admin_url": node.get("admin_url"),
            "transport_address": transport,
            "sync_endpoint": sync_endpoint,
            "ssh": node.get("ssh"),
            "pubkey": node.get("pubkey"),
            "host_key_fingerprint": node.get("host_key_fingerprint"),
        }

    def snapshot(self) -> dict[str, Any]:
        by_id = {node.get("node_id"): name for name, node in self.nodes.items()}
        membership = []
        for node_id, row in sorted(
            self.state["membership"].items(), key=lambda item: item[1]["joined_at"]
        ):
            membership.append(
                {
                    "node": by_id.get(node_id, node_id),
                    "node_id": node_id,
                    "status": row["status"],
                    "transport_address": row["transport_address"],
                    "scope": row["scope"],
                    "joined_at": row["joined_at"],
                    "activated_at": row["activated_at"],
                    "decommissioned_at": row["decommissioned_at"],
                }
            )
        return {
            "nodes": [self.public_record(node) for node in self.nodes.values()],
            "clusterMembership": membership,
            "graphRuns": list(self.state["graph_runs"]),
        }

    # -- hosts -------------------------------------------------------------------------------
    async def _spawn_host(self) -> HostProcess:
        host_id = f"host-{uuid.uuid4().hex[:8]}"
        socket_path = self.directory / "hosts" / f"{host_id}.sock"
        log_path = self.directory / "hosts" / f"{host_id}.log"
        process: subprocess.Popen[bytes] | None = None
        pid = await self.zygote.fork(socket_path, log_path)
        if pid is None:
            log_file = open(log_path, "ab")  # noqa: SIM115 - owned by the child
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tribes_sim.host",
                    "--socket",
                    str(socket_path),
                    "--config",
                    str(self.config_path),
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            log_file.close()
            pid = process.pid
        host = HostProcess(host_id, socket_path, pid, process)
        host.session = aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=str(socket_path)),
            timeout=aiohttp.ClientTimeout(total=30),
        )
        try:
            await self._wait_host_listening(host)
        except BaseException:
            await host.session.close()
            raise
        self.hosts[host_id] = host
        return host

    async def _wait_host_listening(self, host: HostProcess, timeout_s: float = 10.0) -> None:
        # Ask rather than test for the socket file: it exists a moment before listen().
        assert host.session is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            if host.socket.exists():
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with host.session.get("http://host/nodes") as response:
                        await response.read()
                        return
            if not host.alive():
                code = f" with {host.process.returncode}" if host.process is not None else ""
                raise LegionError(500, "host-failed", f"node host {host.host_id} exited{code}")
            if loop.time() >= deadline:
                host.kill()
                raise LegionError(
                    500, "host-failed", f"node host {host.host_id} did not start in {timeout_s} s"
                )
            await asyncio.sleep(0.005)

    async def _host_for_new_node(self, name: str) -> HostProcess:
        """Reserve a slot for ``name`` on a host with room, spawning one if none has any.

        The slot is taken before any await, so concurrent starts (a graph run starts all its
        nodes at once) never pack more than ``nodes_per_host`` nodes into one host.
        """
        for host in self.hosts.values():
            if host.alive() and len(host.nodes) < self.config.nodes_per_host:
                host.nodes.append(name)
                return host
        pending = next(
            (p for p in self.pending_hosts if len(p.nodes) < self.config.nodes_per_host), None
        )
        if pending is None:
            pending = PendingHost(asyncio.get_running_loop().create_future())
            self.pending_hosts.append(pending)
            pending.spawner = asyncio.get_running_loop().create_task(self._spawn_pending(pending))
        pending.nodes.append(name)
        return await asyncio.shield(pending.task)

    async def _spawn_pending(self, pending: PendingHost) -> None:
        try:
            host = await self._spawn_host()
        except asyncio.CancelledError:
            self.pending_hosts.remove(pending)
            pending.task.cancel()
            raise
        except Exception as error:
            self.pending_hosts.remove(pending)
            pending.task.set_exception(error)
            return
        # No await between these lines: later reservations see the host, not the pending one.
        self.pending_hosts.remove(pending)
        host.nodes.extend(pending.nodes)
        pending.task.set_result(host)

    async def _host_call(
        self, host: HostProcess, path: str, body: dict[str, Any] | None = None
    ) -> Any:
        assert host.session is not None
        async with host.session.post(f"http://host{path}", json=body or {}) as response:
            payload = await response.json(content_type=None)
            if response.status >= 400:
                message = payload.get("message") if isinstance(payload, dict) else str(payload)
                raise LegionError(502, "host-error", f"{host.host_id} {path}: {message}")
            return payload

    def _host_of(self, name: str) -> HostProcess | None:
        host_id = self.nodes[name].get("host")
        host = self.hosts.get(host_id) if host_id else None
        return host if host and host.alive() else None

    async def _start_node(self, node: dict[str, Any]) -> None:
        host = await self._host_for_new_node(node["name"])
        spec = {
            "name": node["name"],
            "provider": node["provider"],
            "directory": str(self.directory / "nodes" / node["name"]),
            "allowlist": [self.admin_pubkey, self.key.pubkey_hex],
            "ssh_authorized_keys": [self.ssh_client_public],
            "legion_url": self.url,
            "role": node.get("role", "join"),
        }
        try:
            described = await self._host_call(host, "/nodes", spec)
        except BaseException:
            if node["name"] in host.nodes:
                host.nodes.remove(node["name"])
            raise
        node.update(
            host=host.host_id,
            node_id=described["node_id"],
            pubkey=described["pubkey"],
            admin_url=described["admin_url"],
            transport_address=described["transport_address"],
            ssh=described["ssh"],
            host_key_fingerprint=described["host_key_fingerprint"],
            root=described["root"],
            down=False,
        )
        await self._wait_healthy(node)

    async def _wait_healthy(self, node: dict[str, Any], timeout_s: float = 15.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        last = "no answer"
        while True:  # the last look at or after the deadline
            try:
                async with self.http.get(f"{node['admin_url']}/healthz") as response:
                    await response.read()
                    if response.status == 200:
                        return
                    last = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError) as error:
                last = f"{type(error).__name__}"
            if loop.time() >= deadline:
                break
            await asyncio.sleep(0.01)
        raise LegionError(
            504, "node-not-ready", f"{node['name']} not healthy after {timeout_s} s ({last})"
        )

    async def _stop_node(self, name: str, *, crash: bool = False) -> None:
        node = self.nodes[name]
        host = self._host_of(name)
        if host is None:
            node["down"] = True
            return
        if crash and host.nodes == [name]:
            host.kill()  # a real kill -9: nothing is flushed
            await host.wait(10)
            await self._forget_host(host)
        else:
            await self._host_call(host, f"/nodes/{name}/{'crash' if crash else 'stop'}")
            host.nodes.remove(name)
            if not host.nodes:
                await self._shutdown_host(host)
        node["down"] = True

    async def _forget_host(self, host: HostProcess) -> None:
        if host.session:
            await host.session.close()
        self.hosts.pop(host.host_id, None)

    async def _shutdown_host(self, host: HostProcess) -> None:
        with contextlib.suppress(Exception):
            await self._host_call(host, "/shutdown")
        if not await host.wait(10):
            host.kill()
            await host.wait(5)
        await self._forget_host(host)

    # -- management calls to nodes --------------------------------------------------------------
    async def call(
        self, node: dict[str, Any], method: str, params: dict[str, Any] | None = None
    ) -> Any:
        body = json.dumps({"method": method, "params": params or {}}).encode()
        return await self._call_encoded(node, method, body)

    async def _call_encoded(self, node: dict[str, Any], method: str, body: bytes) -> Any:
        """POST an already-encoded management envelope (a push encodes once for every node)."""
        url = f"{node['admin_url']}/api/admin/management"
        for _attempt in range(50):
            headers = {
                "Authorization": authorization_for(self.key, url, "POST", body),
                "Content-Type": "application/json",
            }
            try:
                async with self.http.post(url, data=body, headers=headers) as response:
                    status = response.status
                    raw = await response.read()
            except (aiohttp.ClientError, TimeoutError) as error:
                raise LegionError(
                    502, "node-unreachable", f"{node['name']} {method}: {error!r}"
                ) from None
            if status == 503:
                await asyncio.sleep(0.05)
                continue
            try:
                payload = json.loads(raw)
            except ValueError:
                raise LegionError(
                    502, "invalid-payload", f"{node['name']} {method}: HTTP {status} {raw[:200]!r}"
                ) from None
            if not isinstance(payload, dict) or not payload.get("ok"):
                payload = payload if isinstance(payload, dict) else {}
                raise LegionError(
                    502,
                    payload.get("error", "node-error"),
                    f"{node['name']} {method}: {payload.get('message')}",
                )
            return payload["result"]
        raise LegionError(504, "not-ready", f"{node['name']} {method}: still not ready")

    def running_nodes(self) -> list[dict[str, Any]]:
        return [
            n
            for n in self.nodes.values()
            if n["status"] in ("ready", "decommissioned", "provisioning")
            and not n.get("down")
            and n.get("admin_url")
        ]

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
        raise LegionError(
            504,
            "join-timeout",
            f"{node['name']} not active on every node after {self.config.legion_wait_active_s} s: {shown}",
        )

    # -- operations -----------------------------------------------------------------------------
    def _new_record(self, provider: str, role: str) -> dict[str, Any]:
        if provider not in PROVIDERS:
            raise LegionError(
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
            raise LegionError(409, "unsafe-operation", "an init node already exists in this fleet")
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
            raise LegionError(
                409, "unsafe-operation", "plan a join only after the init node is ready"
            )
        if count < 1 or count > 100:
            raise LegionError(400, "invalid-params", f"count must be 1..100, not {count}")
        planned = [self._new_record(provider, "join") for _ in range(count)]
        self.save()
        return [self.public_record(node) for node in planned]

    async def materialize(self, interrupt_after: int | None = None) -> dict[str, Any]:
        planned = [n for n in self.nodes.values() if n["status"] == "planned"]
        if not planned:
            raise LegionError(409, "nothing-planned", "no planned nodes to materialize")
        run = {
            "id": f"graph-{uuid.uuid4().hex[:8]}",
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
            for index, node in enumerate(planned):
                if interrupt_after is not None and index >= interrupt_after:
                    for rest in planned[index:]:
                        await self._stop_node(rest["name"])
                        rest.update(status="planned", down=True)
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
        except LegionError as error:
            run["state"] = "failed"
            run["error"] = error.message
            self.save()
            raise
        self.save()
        return run

    def _refuse_if_graph_running(self, operation: str) -> None:
        if any(run["state"] == "running" for run in self.state["graph_runs"]):
            raise LegionError(
                409, "unsafe-operation", f"{operation} refused: a graph run is in progress"
            )

    async def decommission(self, name: str) -> dict[str, Any]:
        node = self.record(name)
        self._refuse_if_graph_running(f"decommission {name}")
        if node["status"] != "ready":
            raise LegionError(
                409, "unsafe-operation", f"decommission {name} refused: node is {node['status']}"
            )
        others = [n for n in self.nodes.values() if n["status"] == "ready" and n["name"] != name]
        if not others:
            raise LegionError(
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
        self._refuse_if_graph_running(f"reactivate {name}")
        if node["status"] != "decommissioned":
            raise LegionError(
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
        if node["status"] == "ready":
            await self.decommission(name)
        elif node["status"] != "decommissioned":
            raise LegionError(
                409, "unsafe-operation", f"replace {name} refused: node is {node['status']}"
            )
        replacement = self._new_record(provider, "join")
        self.save()
        run = await self.materialize()
        if run["state"] != "succeeded":
            raise LegionError(502, "replace-failed", run["error"] or "graph run failed")
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

    async def _restart(self, node: dict[str, Any]) -> None:
        host = self._host_of(node["name"])
        if host is not None and node["name"] in host.nodes and not node.get("down"):
            await self._host_call(host, f"/nodes/{node['name']}/restart")
        else:
            if host is not None and node["name"] in host.nodes:
                host.nodes.remove(node["name"])
            await self._start_node(node)
        node["down"] = False
        await self._wait_healthy(node)

    # -- nemesis ---------------------------------------------------------------------------------
    async def nemesis(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        if action == "heal":
            for node in self.running_nodes():
                host = self._host_of(node["name"])
                if host:
                    await self._host_call(host, f"/nodes/{node['name']}/heal")
            return {"healed": [n["name"] for n in self.running_nodes()]}
        name = body.get("node")
        if not isinstance(name, str):
            raise LegionError(400, "invalid-params", f"nemesis {action}: field 'node' is required")
        node = self.record(name)
        if action == "crash":
            await self._stop_node(name, crash=True)
            return {"node": name, "crashed": True}
        if action == "restart":
            await self._restart(node)
            return {"node": name, "restarted": True}
        host = self._host_of(name)
        if host is None or node.get("down"):
            raise LegionError(409, "node-down", f"nemesis {action}: {name} is not running")
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
        raise LegionError(404, "unknown-action", f"unknown nemesis action {action!r}")

    async def close(self) -> None:
        await asyncio.gather(
            *(self._shutdown_host(host) for host in list(self.hosts.values())),
            return_exceptions=True,
        )
        await self.zygote.close()
        await self.http.close()


def build_app(legion: Legion, stop: asyncio.Event) -> web.Application:
    routes = web.RouteTableDef()

    def guarded(handler: Any, *, exclusive: bool = True) -> Any:
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
                if exclusive:
                    async with legion.lock:
                        result = await handler(request, body)
                else:
                    result = await handler(request, body)
            except LegionError as error:
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
            raise LegionError(400, "invalid-params", "plan: field 'count' must be an integer")
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
        raise LegionError(404, "unknown-operation", f"unknown node operation {op!r}")

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
    app.router.add_post("/nodes/{name}/{op}", guarded(node_op))
    app.router.add_delete("/nodes/{name}", guarded(destroy))
    app.router.add_delete("/nodes", guarded(destroy_all))
    app.router.add_post("/nemesis/{action}", guarded(nemesis, exclusive=False))
    app.router.add_post("/shutdown", shutdown)
    del routes
    return app


async def serve(directory: Path, config: SimConfig, port: int) -> None:
    legion = Legion(directory, config)
    stop = asyncio.Event()
    runner = web.AppRunner(build_app(legion, stop), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0][1]
    legion.url = f"http://127.0.0.1:{bound}"
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    (directory / "legion.json").write_text(json.dumps({"url": legion.url, "pid": os.getpid()}))
    log.info("legion listening on %s", legion.url)
    # Only now: a tribes_sim.host process appearing still means Legion is up (tests rely on it).
    await legion.start()
    await stop.wait()
    await legion.close()
    await runner.cleanup()
    with contextlib.suppress(FileNotFoundError):
        (directory / "legion.json").unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tribes_sim.legion")
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr
    )
    logging.getLogger("aiohttp").setLevel(logging.WARNING)
    config = SimConfig.load(args.dir / "sim-config.json")
    set_timestamp_precision(config.timestamp_precision)
    asyncio.run(serve(args.dir, config, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
