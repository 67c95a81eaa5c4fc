"""Node host processes as Legion sees them, and the zygote that forks them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tribes_sim.procs import pid_alive

log = logging.getLogger("tribes_sim.legion")


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
