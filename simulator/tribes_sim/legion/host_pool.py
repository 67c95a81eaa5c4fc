"""Legion's node hosts: spawning them (packed ``nodes_per_host`` to a host), starting, stopping,
crashing and restarting nodes on them. Mixed into ``Legion``.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from typing import Any

import aiohttp

from tribes_sim.legion.hosts import HostProcess, PendingHost
from tribes_sim.legion.refusal import LegionRefusal


class HostPoolMixin:
    """Legion's part: node hosts and the nodes on them (uses the attributes Legion sets up)."""

    async def _spawn_host(self) -> HostProcess:
        host_id = f"host-{self.ids.token_hex('host', 4)}"
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
                raise LegionRefusal(500, "host-failed", f"node host {host.host_id} exited{code}")
            if loop.time() >= deadline:
                host.kill()
                raise LegionRefusal(
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
                raise LegionRefusal(502, "host-error", f"{host.host_id} {path}: {message}")
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
            "allowlist": [self.admin_pubkey, self.key.public_hex],
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
        raise LegionRefusal(
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
