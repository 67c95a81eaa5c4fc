"""Who may log in to a node over SSH (public keys of its users, nothing else), and where a
logged-in client may forward a TCP connection to (loopback: a jump host for other nodes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncssh

if TYPE_CHECKING:
    from tribes_sim.node.ssh_server import SimSshServer


class SshLogin(asyncssh.SSHServer):
    """Per-connection callbacks: public keys for the one user, nothing else."""

    def __init__(self, owner: SimSshServer) -> None:
        self._owner = owner
        self._connection: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._connection = conn
        self._owner._connection_made(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._connection is not None:
            self._owner._connection_lost(self._connection)

    def begin_auth(self, username: str) -> bool:
        assert self._connection is not None
        if self._owner.login_banner:
            self._connection.send_auth_banner(self._owner.login_banner.rstrip("\n") + "\n")
        keys = self._owner._keys_for(username)
        if keys is not None:
            # Keys are set per connection so that other user names match no key at all.
            self._connection.set_authorized_keys(keys)
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return False  # only keys matched through set_authorized_keys get in

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def connection_requested(
        self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
    ) -> bool:
        """``direct-tcpip`` (a client using this node as its ProxyJump host), like sshd's
        default ``AllowTcpForwarding yes``; only to loopback, where the simulated fleet lives."""
        return dest_host in ("127.0.0.1", "localhost", "::1")
