"""SSH to nodes with paramiko: one pinned connection per node, every command on an exec channel.

Each node gets at most one SSH connection (one TCP connection, one login) per library instance,
opened on first use and kept until the target closes; commands run one at a time per node, each
on its own ``exec`` channel of that connection (``/bin/sh -c`` on the node: no interactive
shell, no prompt matching, stdout and stderr apart, the real exit status). Every call names its
node: there is no "current" connection to run a command on the wrong host by accident. Any user
works, root included (nothing depends on a prompt).

How a connection is opened (ProxyCommand / ProxyJump, agent, OpenSSH config file, key
passphrase, host key policy, timeouts) is ``ssh_connect``'s job. A jump host's connection is
shared by the nodes behind it.
"""

from __future__ import annotations

import contextlib
import select
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tribesqa.clients.ssh_connect import (
    SshCommandError,
    SshEndpointInfo,
    SshOptions,
    _session_errors,
    key_fingerprint,
    open_client,
    parse_jump,
    resolve_route,
)

if TYPE_CHECKING:
    import paramiko

__all__ = [
    "CommandResult",
    "SshCommandError",
    "SshEndpointInfo",
    "SshOptions",
    "SshSessions",
    "key_fingerprint",
]

_READ_CHUNK = 65536
_IDLE_WAIT_S = 0.05


@dataclass(frozen=True, repr=False)
class CommandResult:
    """What a command on a node gave: ``stdout`` and ``stderr`` as text (UTF-8, undecodable
    bytes replaced, nothing stripped) and ``rc``, the exit status (negative: killed by a signal
    or the node gave none)."""

    node: str
    purpose: str
    stdout: str
    stderr: str
    rc: int

    def __repr__(self) -> str:
        # Robot logs an assigned value with its repr: sizes only, never the output itself
        # (it may hold what a command printed from a key file).
        return (
            f"CommandResult(node={self.node}, rc={self.rc}, stdout={len(self.stdout)} chars, "
            f"stderr={len(self.stderr)} chars)"
        )

    __str__ = __repr__


class _SessionLost(Exception):
    """The connection failed before the command was sent: reconnecting and sending it is safe."""


class SshSessions:
    """Lazily opened, per-node paramiko connections (one per node; thread-safe per node)."""

    def __init__(
        self,
        key_file: Path | None = None,
        timeout_s: float = 30.0,
        options: SshOptions | None = None,
    ) -> None:
        """``timeout_s``: a command's default timeout; ``options``: how to connect (default: the
        key file, strict host keys, ``timeout_s`` for connecting too)."""
        self.options = options or SshOptions(key_file=key_file, timeout_s=timeout_s)
        self.key_file = self.options.key_file
        self.timeout_s = timeout_s
        self._clients: dict[str, paramiko.SSHClient] = {}
        self._endpoints: dict[str, SshEndpointInfo] = {}
        self._jumps: dict[str, paramiko.SSHClient] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._jump_guard = threading.Lock()

    def _lock(self, node: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(node, threading.Lock())

    def connected_nodes(self) -> list[str]:
        """The nodes holding an open connection now (at most one each)."""
        return sorted(self._clients)

    def _connect(self, node: str, endpoint: SshEndpointInfo) -> paramiko.SSHClient:
        route = resolve_route(node, endpoint, self.options)
        sock = None
        if route.proxy_jump:
            jump = self._jump_client(node, route.proxy_jump, endpoint.user)
            try:
                sock = jump.get_transport().open_channel(
                    "direct-tcpip",
                    (route.host, route.port),
                    ("127.0.0.1", 0),
                    timeout=self.options.timeout_s,
                )
            except (*_session_errors(), AttributeError) as error:
                self._close_jump(route.proxy_jump)
                reason = str(error) or type(error).__name__
                raise SshCommandError(
                    f"node {node}: jump host {route.proxy_jump} could not reach "
                    f"{route.host}:{route.port}: {reason}"
                ) from None
        return open_client(node, endpoint, self.options, route, sock=sock)

    def _jump_client(self, node: str, spec: str, default_user: str) -> paramiko.SSHClient:
        """The shared connection to a jump host (opened once, reused by every node behind it)."""
        with self._jump_guard:
            client = self._jumps.get(spec)
            transport = client.get_transport() if client is not None else None
            if transport is not None and transport.is_active():
                return client
            user, host, port = parse_jump(spec, default_user)
            endpoint = SshEndpointInfo(host, port, user, None)
            options = replace(self.options, proxy_jump=None, proxy_command=None)
            route = replace(
                resolve_route(host, endpoint, options), proxy_jump=None, proxy_command=None
            )
            client = open_client(f"{node} (jump host {spec})", endpoint, options, route)
            self._jumps[spec] = client
            return client

    def _close_jump(self, spec: str) -> None:
        with self._jump_guard:
            client = self._jumps.pop(spec, None)
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    def _client(self, node: str, endpoint: SshEndpointInfo) -> paramiko.SSHClient:
        client = self._clients.get(node)
        if client is not None and self._endpoints.get(node) == endpoint:
            transport = client.get_transport()
            if transport is not None and transport.is_active():
                return client
        if client is not None:
            self._close_one(node)
        client = self._connect(node, endpoint)
        self._clients[node] = client
        self._endpoints[node] = endpoint
        return client

    def run(
        self,
        node: str,
        endpoint: SshEndpointInfo,
        command: str,
        *,
        purpose: str,
        timeout_s: float | None = None,
    ) -> CommandResult:
        """Run ``command`` on ``node``; reconnects once if the connection was gone before the
        command was sent (a node restart). A command is never sent twice: one that was sent
        may have run, and running it again could apply a write twice."""
        timeout = timeout_s or self.timeout_s
        with self._lock(node):
            for attempt in range(2):
                client = self._client(node, endpoint)
                try:
                    stdout, stderr, rc = self._execute(client, command, timeout)
                except _SessionLost as lost:
                    self._close_one(node)
                    if attempt == 1:
                        raise SshCommandError(
                            f"node {node}: {purpose}: SSH connection lost: {lost}"
                        ) from None
                    continue
                except SshCommandError as error:
                    self._close_one(node)
                    raise SshCommandError(f"node {node}: {purpose}: {error}") from None
                return CommandResult(node, purpose, stdout, stderr, rc)
        raise AssertionError("unreachable")

    @staticmethod
    def _execute(client: Any, command: str, timeout_s: float) -> tuple[str, str, int]:
        transport = client.get_transport()
        try:
            if transport is None or not transport.is_active():
                raise _SessionLost("not connected")
            channel = transport.open_session(timeout=timeout_s)
            channel.exec_command(command)
        except _session_errors() as error:
            raise _SessionLost(str(error) or type(error).__name__) from None
        try:
            return _collect(channel, timeout_s)
        finally:
            with contextlib.suppress(Exception):
                channel.close()

    def _close_one(self, node: str) -> None:
        client = self._clients.pop(node, None)
        self._endpoints.pop(node, None)
        if client is not None:
            # Closing a dead connection must not hide the real failure.
            with contextlib.suppress(Exception):
                client.close()

    def close(self) -> None:
        for node in list(self._clients):
            self._close_one(node)
        for spec in list(self._jumps):
            self._close_jump(spec)


def _collect(channel: Any, timeout_s: float) -> tuple[str, str, int]:
    """Read an exec channel's stdout and stderr until its exit status, within ``timeout_s``."""
    channel.shutdown_write()  # the command gets EOF on stdin, like `ssh host cmd < /dev/null`
    out: list[bytes] = []
    err: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        # paramiko sets the exit status when it arrives, or -1 when the channel closes first.
        while not channel.exit_status_ready():
            _drain(channel, out, err)
            if time.monotonic() > deadline:
                raise SshCommandError(f"SSH command timed out after {timeout_s:g} s")
            select.select([channel], [], [], _IDLE_WAIT_S)
        _drain(channel, out, err)  # output sent before the exit status is already buffered
    except (OSError, EOFError) as error:
        raise SshCommandError(f"SSH command failed: {error or type(error).__name__}") from None
    rc = int(channel.recv_exit_status())
    transport = channel.get_transport()
    if rc == -1 and (transport is None or not transport.is_active()):
        raise SshCommandError(
            "the connection closed before the command reported its exit status (it may have run)"
        )
    return b"".join(out).decode("utf-8", "replace"), b"".join(err).decode("utf-8", "replace"), rc


def _drain(channel: Any, out: list[bytes], err: list[bytes]) -> None:
    while channel.recv_ready():
        out.append(channel.recv(_READ_CHUNK))
    while channel.recv_stderr_ready():
        err.append(channel.recv_stderr(_READ_CHUNK))
