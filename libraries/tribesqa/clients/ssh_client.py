"""SSH to nodes with paramiko: one pinned connection per node, every command on an exec channel.

Each node gets at most one SSH connection (one TCP connection, one login) per library instance,
opened on first use and kept until the target closes; commands run one at a time per node, each
on its own ``exec`` channel of that connection (``/bin/sh -c`` on the node: no interactive
shell, no prompt matching, stdout and stderr apart, the real exit status). Every call names its
node: there is no "current" connection to run a command on the wrong host by accident.

The host key is pinned to the fingerprint Legion recorded for the node; a node presenting
another key is refused before we authenticate. The private key file is read by paramiko and
never logged (paramiko's own logger is held at WARNING: its debug lines name key files).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import logging
import select
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import paramiko

_READ_CHUNK = 65536
_IDLE_WAIT_S = 0.05


@functools.cache
def _paramiko() -> Any:
    """paramiko, imported on first use: it costs about 0.15 s of CPU to import, which a robot
    process that never opens an SSH session (a simulator run, one pabot process per suite)
    should not pay."""
    import paramiko

    logging.getLogger("paramiko").setLevel(logging.WARNING)
    return paramiko


def _session_errors() -> tuple[type[BaseException], ...]:
    """The errors of a connection that cannot carry a command (dead, refused, reset)."""
    return (_paramiko().SSHException, OSError, EOFError)


class SshCommandError(AssertionError):
    """An SSH command could not run; names the node and the command's purpose."""


@dataclass(frozen=True)
class SshEndpointInfo:
    host: str
    port: int
    user: str
    # Legion's record of the node's host key ("SHA256:..."); when known, the connection is pinned.
    host_key_fingerprint: str | None = None


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


def key_fingerprint(key: Any) -> str:
    """OpenSSH-style ``SHA256:<base64>`` fingerprint of a paramiko public key."""
    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


class _PinnedHostKey:
    """paramiko host-key policy: accept the key Legion recorded (or any when none is recorded),
    refuse every other one before authenticating."""

    def __init__(self, node: str, endpoint: SshEndpointInfo) -> None:
        self.node = node
        self.endpoint = endpoint

    def missing_host_key(self, _client: Any, _hostname: str, key: Any) -> None:
        expected = self.endpoint.host_key_fingerprint
        presented = key_fingerprint(key)
        if expected and presented != expected:
            raise SshCommandError(
                f"node {self.node}: SSH host key {presented} at {self.endpoint.host}:"
                f"{self.endpoint.port} is not the one Legion recorded ({expected}): "
                "refusing to run commands"
            )


class _SessionLost(Exception):
    """The connection failed before the command was sent: reconnecting and sending it is safe."""


class SshSessions:
    """Lazily opened, per-node paramiko connections (one per node; thread-safe per node)."""

    def __init__(self, key_file: Path | None, timeout_s: float) -> None:
        self.key_file = key_file
        self.timeout_s = timeout_s
        self._clients: dict[str, paramiko.SSHClient] = {}
        self._endpoints: dict[str, SshEndpointInfo] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, node: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(node, threading.Lock())

    def connected_nodes(self) -> list[str]:
        """The nodes holding an open connection now (at most one each)."""
        return sorted(self._clients)

    def _connect(self, node: str, endpoint: SshEndpointInfo) -> paramiko.SSHClient:
        if self.key_file is None:
            raise SshCommandError(f"node {node}: no SSH key configured for this target")
        paramiko = _paramiko()
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(_PinnedHostKey(node, endpoint))
        where = f"{endpoint.user}@{endpoint.host}:{endpoint.port}"
        try:
            client.connect(
                endpoint.host,
                port=endpoint.port,
                username=endpoint.user,
                key_filename=str(self.key_file),
                timeout=self.timeout_s,
                banner_timeout=self.timeout_s,
                auth_timeout=self.timeout_s,
                allow_agent=False,
                look_for_keys=False,
            )
        except SshCommandError:
            client.close()
            raise
        except (*_session_errors(), ValueError) as error:
            client.close()
            reason = str(error) or type(error).__name__
            raise SshCommandError(f"node {node}: SSH login as {where} failed: {reason}") from None
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(0)
        return client

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
