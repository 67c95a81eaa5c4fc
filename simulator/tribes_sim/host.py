"""A node host: one process, one event loop, one or more simulated nodes.

Legion starts hosts and drives them over a Unix socket (``/nodes`` to start, stop, crash,
restart, and the nemesis hooks). The host dies with Legion (``PR_SET_PDEATHSIG``) so no node
outlives its fleet.

    python -m tribes_sim.host --socket DIR/hosts/host-1.sock --config DIR/sim-config.json

Importing a host's stack (aiohttp, asyncssh, coincurve) takes ~0.7 s of CPU, so Legion does it
once: it starts a *zygote* (``--zygote``) that imports everything, then forks one child per host
on request (a few milliseconds each). The zygote dies with Legion and its hosts die with it; a
crash is still a real ``SIGKILL`` of the host's own pid.

    python -m tribes_sim.host --zygote --config DIR/sim-config.json
    stdin:  {"socket": "DIR/hosts/host-1.sock", "log": "DIR/hosts/host-1.log"}   (one per line)
    stdout: {"ready": true} once, then {"pid": 1234} per request
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import json
import logging
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

from aiohttp import web

from tribes_sim.node import NodeSpec, set_timestamp_precision
from tribes_sim.node.servers import NodeServers
from tribes_sim.settings import SimConfig

log = logging.getLogger("tribes_sim.host")
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent (Legion) exits."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class NodeHost:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.nodes: dict[str, NodeServers] = {}
        self.specs: dict[str, NodeSpec] = {}
        self.stopping = asyncio.Event()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/nodes", self.list_nodes)
        app.router.add_post("/nodes", self.start_node)
        app.router.add_post("/nodes/{name}/{action}", self.node_action)
        app.router.add_post("/shutdown", self.shutdown)
        return app

    def _node(self, request: web.Request) -> NodeServers:
        name = request.match_info["name"]
        servers = self.nodes.get(name)
        if servers is None or servers.node is None:
            raise web.HTTPNotFound(text=f"no running node {name!r} on this host")
        return servers

    async def list_nodes(self, request: web.Request) -> web.Response:
        return web.json_response(
            [servers.describe() for servers in self.nodes.values() if servers.node is not None]
        )

    async def start_node(self, request: web.Request) -> web.Response:
        spec = NodeSpec.from_mapping(await request.json())
        if spec.name in self.nodes and self.nodes[spec.name].node is not None:
            return web.json_response(self.nodes[spec.name].describe())
        servers = NodeServers(spec, self.config)
        self.nodes[spec.name] = servers
        self.specs[spec.name] = spec
        try:
            described = await servers.start()
        except Exception as error:
            await servers.stop()
            del self.nodes[spec.name]
            return web.json_response(
                {"error": "start-failed", "message": f"{spec.name}: {error}"}, status=500
            )
        return web.json_response(described)

    async def node_action(self, request: web.Request) -> web.Response:
        action = request.match_info["action"]
        name = request.match_info["name"]
        body: dict[str, Any] = await request.json() if request.can_read_body else {}
        if action in ("stop", "crash"):
            servers = self.nodes.pop(name, None)
            if servers is not None:
                await servers.stop()
            return web.json_response({"node": name, "state": "stopped"})
        if action == "restart":
            servers = self.nodes.get(name)
            ssh = None
            if servers is not None:
                servers.node and servers.node.note("restart requested")
                # A graceful restart restarts the tribes service, not the node's sshd: SSH
                # sessions (e.g. the one running `herd restart tribes`) survive it.
                ssh = await servers.stop(keep_ssh=True)
            replacement = NodeServers(self.specs[name], self.config, ssh=ssh)
            self.nodes[name] = replacement
            return web.json_response(await replacement.start())
        servers = self._node(request)
        node = servers.node
        assert node is not None
        if action == "partition":
            node.partition(list(body.get("peers", [])))
        elif action == "heal":
            await node.heal()
        elif action == "outage":
            await node.set_outage(bool(body.get("active")))
        elif action == "clock-skew":
            node.set_clock_skew(float(body.get("seconds", 0)))
        else:
            raise web.HTTPNotFound(text=f"unknown action {action!r}")
        return web.json_response({"node": name, "action": action, "ok": True})

    async def shutdown(self, request: web.Request) -> web.Response:
        self.stopping.set()
        return web.json_response({"ok": True})

    async def close(self) -> None:
        for servers in list(self.nodes.values()):
            with contextlib.suppress(Exception):
                await servers.stop()
        self.nodes.clear()


async def serve(socket_path: Path, config: SimConfig) -> None:
    host = NodeHost(config)
    runner = web.AppRunner(host.app(), access_log=None, handle_signals=False)
    await runner.setup()
    if socket_path.exists():
        socket_path.unlink()
    # Listen under a temporary name, then rename: Legion waits for the path to exist and must
    # never connect between bind() and listen() (ECONNREFUSED on a busy machine).
    pending = socket_path.with_name(socket_path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        pending.unlink()
    await web.UnixSite(runner, str(pending)).start()
    os.replace(pending, socket_path)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, host.stopping.set)
    parent = os.getppid()

    async def watch_parent() -> None:
        while os.getppid() == parent:
            await asyncio.sleep(0.5)
        host.stopping.set()

    watcher = loop.create_task(watch_parent())
    await host.stopping.wait()
    watcher.cancel()
    await host.close()
    await runner.cleanup()
    with contextlib.suppress(FileNotFoundError):
        socket_path.unlink()


def run_host(socket_path: Path, config_path: Path) -> None:
    die_with_parent()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("aiohttp").setLevel(logging.WARNING)
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    config = SimConfig.load(config_path)
    set_timestamp_precision(config.timestamp_precision)
    asyncio.run(serve(socket_path, config))


def _fork_host(socket_path: Path, log_path: Path, config_path: Path) -> int:
    """Fork one host from the zygote; the child never returns."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        # The zygote lets the kernel reap its children; a host must see its own (SSH sessions).
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null_fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null_fd, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(null_fd)
        os.close(log_fd)
        run_host(socket_path, config_path)
        code = 0
    except BaseException:
        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def zygote(config_path: Path) -> int:
    """Serve fork requests on stdin until it closes (Legion exited or stopped us)."""
    die_with_parent()
    # Children are reaped by the kernel: Legion tracks them by pid, a zombie would look alive.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    # Keep the imported modules out of the collector so forked hosts share those pages longer.
    gc.collect()
    gc.freeze()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            pid = _fork_host(Path(request["socket"]), Path(request["log"]), config_path)
            answer: dict[str, Any] = {"pid": pid}
        except Exception as error:
            answer = {"error": f"{type(error).__name__}: {error}"}
        print(json.dumps(answer), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tribes_sim.host")
    parser.add_argument("--socket", type=Path)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--zygote", action="store_true", help="fork hosts on request (Legion)")
    args = parser.parse_args(argv)
    if args.zygote:
        return zygote(args.config)
    if args.socket is None:
        parser.error("--socket is required (unless --zygote)")
    run_host(args.socket, args.config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
