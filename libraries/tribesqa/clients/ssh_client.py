"""SSH sessions to nodes through Robot Framework's SSHLibrary, one explicit client per node.

SSHLibrary's keywords act on an implicit "current" connection; with many nodes that is how a
command silently runs on the wrong host. We hold SSHLibrary's client objects ourselves, keyed by
node name, and every call names its node.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from SSHLibrary.pythonclient import PythonSSHClient


@functools.cache
def _ssh_stack() -> tuple[Any, tuple[type[BaseException], ...]]:
    """SSHLibrary's client class and the errors of a dead session, imported on first use.

    SSHLibrary and paramiko cost about 0.16 s of CPU to import; a robot process that never opens
    an SSH session (a simulator run, one pabot process per suite) should not pay it.
    """
    from paramiko import SSHException
    from SSHLibrary.abstractclient import SSHClientException
    from SSHLibrary.pythonclient import PythonSSHClient

    # A session that died with its node (crash, restart) raises paramiko's SSHException
    # ("SSH session not active"): reconnect once, like for a closed socket.
    return PythonSSHClient, (SSHClientException, SSHException, OSError, EOFError)


def _session_errors() -> tuple[type[BaseException], ...]:
    return _ssh_stack()[1]


class SshCommandError(AssertionError):
    """An SSH command could not run or failed; names the node and the command's purpose."""


@dataclass(frozen=True)
class SshEndpointInfo:
    host: str
    port: int
    user: str
    # Legion's record of the node's host key ("SHA256:..."); when known, the connection is pinned.
    host_key_fingerprint: str | None = None


@dataclass(frozen=True)
class CommandResult:
    node: str
    purpose: str
    stdout: str
    stderr: str
    rc: int


def host_key_fingerprint(client: PythonSSHClient) -> str:
    """OpenSSH-style ``SHA256:<base64>`` fingerprint of the key the server presented."""
    key = client.client.get_transport().get_remote_server_key()
    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


class SshSessions:
    """Lazily opened, per-node SSHLibrary clients (thread-safe per node)."""

    def __init__(self, key_file: Path | None, timeout_s: float, prompt: str = "$ ") -> None:
        self.key_file = key_file
        self.timeout_s = timeout_s
        self.prompt = prompt
        self._clients: dict[str, PythonSSHClient] = {}
        self._endpoints: dict[str, SshEndpointInfo] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, node: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(node, threading.Lock())

    def _client(self, node: str, endpoint: SshEndpointInfo) -> PythonSSHClient:
        client = self._clients.get(node)
        if client is not None and self._endpoints.get(node) == endpoint:
            return client
        if client is not None:
            self._close_one(node)
        if self.key_file is None:
            raise SshCommandError(f"node {node}: no SSH key configured for this target")
        client_class, _ = _ssh_stack()
        client = client_class(
            endpoint.host,
            alias=node,
            port=endpoint.port,
            timeout=self.timeout_s,
            prompt=self.prompt,
        )
        try:
            client.login_with_public_key(
                endpoint.user, str(self.key_file), None, keep_alive_interval="0s"
            )
        except _session_errors() as error:
            raise SshCommandError(
                f"node {node}: SSH login as {endpoint.user}@{endpoint.host}:{endpoint.port} failed: {error}"
            ) from None
        if endpoint.host_key_fingerprint:
            presented = host_key_fingerprint(client)
            if presented != endpoint.host_key_fingerprint:
                with contextlib.suppress(Exception):
                    client.close()
                raise SshCommandError(
                    f"node {node}: SSH host key {presented} at {endpoint.host}:{endpoint.port} is not "
                    f"the one Legion recorded ({endpoint.host_key_fingerprint}): refusing to run commands"
                )
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
        """Run ``command`` on ``node``; reconnects once if the session went away (node restart)."""
        with self._lock(node):
            for attempt in range(2):
                client = self._client(node, endpoint)
                try:
                    stdout, stderr, rc = client.execute_command(
                        command, timeout=timeout_s or self.timeout_s
                    )
                    return CommandResult(node, purpose, stdout, stderr, int(rc))
                except _session_errors() as error:
                    self._close_one(node)
                    # A command that timed out may have run: running it again could apply a
                    # write twice. Only a session that went away before the command is retried.
                    timed_out = "timed out" in str(error).lower()
                    if attempt == 1 or timed_out:
                        raise SshCommandError(
                            f"node {node}: {purpose}: SSH command failed: {error}"
                        ) from None
        raise AssertionError("unreachable")

    def _close_one(self, node: str) -> None:
        client = self._clients.pop(node, None)
        self._endpoints.pop(node, None)
        if client is not None:
            # Closing a dead session must not hide the real failure.
            with contextlib.suppress(Exception):
                client.close()

    def close(self) -> None:
        for node in list(self._clients):
            self._close_one(node)
