"""The simulated node's SSH server (asyncssh), sharing the node host's asyncio loop.

A node answers SSH like a small real host so the "real" target strategy and Robot Framework's
SSHLibrary can drive it unchanged:

* public-key authentication only, for the given users (a node's service account and root) and
  only the given ``authorized_keys`` lines;
* ``exec`` requests run ``/bin/sh -c <command>`` as a real subprocess (stdout and stderr kept
  apart, exit status or signal reported), inside the node's view of the filesystem when a
  ``NodeView`` is given (``/run/current-system``, ``/gnu``, ``herd``: see ``nodeview``);
* ``shell`` requests with a pty (what SSHLibrary's ``Login``/``Login With Public Key`` open)
  run an interactive shell on a real pseudo-terminal, so echo and the prompt behave like a real
  host. The prompt is ``<user>@<node>$ `` (``tribes@hetzner-1$ ``); configure SSHLibrary with
  ``prompt=$ `` or, stricter, ``prompt=REGEXP:[\\w.-]+@[\\w.-]+\\$ ``. ``exit`` ends the session.
  A shell without a pty reads commands from stdin without a prompt, like ``ssh -T``;
* every session's children run in their own session/process group and are SIGKILLed when the
  command or shell ends, the client disconnects or the server closes: no orphans survive a node.

Children get a minimal clean environment: ``PATH`` (the server's), ``HOME`` = ``cwd``,
``LANG=C.UTF-8``, ``USER``, ``LOGNAME``, ``SHELL``, ``PS1``, an empty ``HISTFILE`` (nothing is
written into the node directory) and ``TERM`` when a pty was requested, then the node's ``env``
(``TRIBES_ROOT``, ``TRIBES_NODE``, ...), which wins on conflicts.

This module is the listener (connections, sessions, closing); who may log in is ``ssh_login``'s
job, starting and supervising a session's child ``ssh_children``'s, killing a session's
processes ``ssh_sessions``'.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import asyncssh

from tribes_sim.node.nodeview import NodeView
from tribes_sim.node.ssh_children import (
    child_environment,
    shell_prompt,
    spawn_on_pipes,
    spawn_on_pty,
    supervise,
)
from tribes_sim.node.ssh_login import SshLogin
from tribes_sim.node.ssh_sessions import (
    CLOSE_TIMEOUT_S,
    exit_quietly,
    interactive_shell_argv,
    kill_session,
    output_drained,
)
from tribes_sim.ssh_keys import generate_ssh_keypair, public_key_fingerprint

__all__ = [
    "SimSshServer",
    "generate_ssh_keypair",
    "public_key_fingerprint",
    "shell_prompt",
    "start_ssh_server",
]

log = logging.getLogger(__name__)


class SimSshServer:
    """One node's SSH listener plus the sessions it runs; create it with `start_ssh_server`."""

    def __init__(
        self,
        *,
        users: tuple[str, ...],
        authorized_keys: asyncssh.SSHAuthorizedKeys | None,
        env: Mapping[str, str],
        cwd: Path,
        login_banner: str | None,
        view: NodeView | None = None,
    ) -> None:
        self.users = users
        self.user = users[0]
        self.cwd = cwd
        self.view = view
        self.login_banner = login_banner
        #: The exact prompt interactive shells print (see the module docstring).
        self.prompt = shell_prompt(self.user, env.get("TRIBES_NODE", "sim"))
        self._authorized_keys = authorized_keys
        self._env = dict(env)
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._connections: set[asyncssh.SSHServerConnection] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        # Leader pid of each running session (== its session id and process group id).
        self._session_leaders: set[int] = set()
        self._closing = False
        self._closed = asyncio.Event()

    @property
    def port(self) -> int:
        """The TCP port actually bound."""
        assert self._acceptor is not None
        return self._acceptor.get_port()

    @property
    def active_sessions(self) -> int:
        """How many exec/shell sessions currently have a running child."""
        return len(self._session_leaders)

    @property
    def active_connections(self) -> int:
        """How many SSH connections are open."""
        return len(self._connections)

    async def _listen(self, host: str, port: int, host_key: asyncssh.SSHKey) -> None:
        self._acceptor = await asyncssh.listen(
            host,
            port,
            server_factory=lambda: SshLogin(self),
            server_host_keys=[host_key],
            process_factory=self._run_session,
            # Bytes end to end: the server only forwards what the child reads and writes.
            encoding=None,
            # The pty's line discipline echoes and edits input like a real host; asyncssh's line
            # editor (only active with an encoding, but say so) must not do it a second time.
            line_editor=False,
            password_auth=False,
            kbdint_auth=False,
            agent_forwarding=False,
            x11_forwarding=False,
            # Never read an sshd_config of the machine running the simulator.
            config=None,
        )

    async def close(self) -> None:
        """Stop listening, kill every session's processes and close all connections."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        try:
            if self._acceptor is not None:
                self._acceptor.close()
            for leader in list(self._session_leaders):
                kill_session(leader, whole_session=True)
            connections = list(self._connections)
            for connection in connections:
                connection.close()
            pending = [*self._handlers, *(c.wait_closed() for c in connections)]
            if pending:
                _done, not_done = await asyncio.wait(
                    [asyncio.ensure_future(p) for p in pending], timeout=CLOSE_TIMEOUT_S
                )
                for leftover in not_done:
                    leftover.cancel()
            if self._acceptor is not None:
                await self._acceptor.wait_closed()
        finally:
            if self.view is not None:
                self.view.close()
            self._closed.set()

    async def wait_closed(self) -> None:
        """Return once `close` has finished."""
        await self._closed.wait()

    async def __aenter__(self) -> SimSshServer:
        return self

    async def __aexit__(self, *_exc_info: object) -> None:
        await self.close()

    # --- authentication support (called by SshLogin) ---------------------------------

    def _connection_made(self, connection: asyncssh.SSHServerConnection) -> None:
        self._connections.add(connection)
        if self._closing:
            connection.close()

    def _connection_lost(self, connection: asyncssh.SSHServerConnection) -> None:
        self._connections.discard(connection)

    def _keys_for(self, username: str) -> asyncssh.SSHAuthorizedKeys | None:
        return self._authorized_keys if username in self.users else None

    # --- sessions ---------------------------------------------------------------------------

    async def _run_session(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        """Serve one exec or shell channel: spawn the child, wire it up, report its exit."""
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            await self._serve(process)
        except Exception:
            log.exception("ssh session failed")
            exit_quietly(process, 255)
        finally:
            # Also runs asyncssh's clean-up of the redirections (closing pipes and transports).
            with contextlib.suppress(Exception):
                await asyncio.wait_for(process.wait_closed(), CLOSE_TIMEOUT_S)
            if task is not None:
                self._handlers.discard(task)

    async def _serve(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        if self._closing:
            exit_quietly(process, 255)
            return
        if process.subsystem is not None:
            process.stderr.write(f"subsystem {process.subsystem} not supported\n".encode())
            exit_quietly(process, 1)
            return
        term_type = process.term_type
        on_pty = term_type is not None
        if process.command is not None:
            argv = ["/bin/sh", "-c", process.command]
        elif on_pty:
            argv = list(interactive_shell_argv())
        else:
            argv = [interactive_shell_argv()[0]]  # like `ssh -T`: commands from stdin, no prompt
        home = self.view.home if self.view is not None else self.cwd
        user = process.get_extra_info("username") or self.user
        env = child_environment(self._env, home, term_type, user)
        if self.view is not None:
            argv = self.view.wrap(argv)

        if process.command is None and self.login_banner:
            # The message of the day a real host prints above the first prompt.
            banner = self.login_banner.rstrip("\n") + "\n"
            process.stdout.write(banner.replace("\n", "\r\n" if on_pty else "\n").encode())

        try:
            if on_pty:
                child = await spawn_on_pty(process, argv, env, self.cwd)
            else:
                child = await spawn_on_pipes(process, argv, env, self.cwd)
        except OSError as exc:
            process.stderr.write(f"{argv[0]}: {exc}\n".encode())
            exit_quietly(process, 127)
            return

        self._session_leaders.add(child.pid)
        try:
            returncode = await supervise(process, child, job_control=on_pty)
        finally:
            self._session_leaders.discard(child.pid)
            if child.stdin is not None:
                child.stdin.close()

        # Let output still in flight (e.g. in the pty buffer) reach the client before the exit
        # status closes the channel. Bounded by the channel: a client that leaves stops it.
        if await output_drained(process):
            with contextlib.suppress(OSError, asyncssh.Error):
                process.stdout.write_eof()
        if returncode < 0:
            with contextlib.suppress(OSError, asyncssh.Error, ValueError):
                process.exit_with_signal(signal.Signals(-returncode).name.removeprefix("SIG"))
        else:
            exit_quietly(process, returncode)


async def start_ssh_server(
    host: str,
    port: int,
    *,
    host_key_path: Path,
    authorized_keys: list[str],
    env: Mapping[str, str],
    cwd: Path,
    user: str | None = None,
    users: tuple[str, ...] = (),
    login_banner: str | None = None,
    view: NodeView | None = None,
) -> SimSshServer:
    """Start a node's SSH server on ``host:port`` (0 picks a free port) in the running loop.

    ``authorized_keys`` are OpenSSH public key lines allowed to log in as ``user`` (or any of
    ``users``); ``view`` runs sessions in a node's filesystem view; ``env`` is
    added to every child's environment and ``cwd`` is its working directory and ``HOME``.
    ``login_banner`` is sent as the SSH authentication banner and printed above the first
    prompt of interactive shells. Read ``.port`` for the bound port; ``await close()`` to stop.
    """
    key_lines = [line.strip() for line in authorized_keys if line.strip()]
    authorized = asyncssh.import_authorized_keys("\n".join(key_lines) + "\n") if key_lines else None
    logins = tuple(users) or ((user,) if user else ())
    if not logins:
        raise ValueError("start_ssh_server: give user or users")
    server = SimSshServer(
        users=logins,
        authorized_keys=authorized,
        env=env,
        cwd=Path(cwd),
        login_banner=login_banner,
        view=view,
    )
    await server._listen(host, port, asyncssh.read_private_key(Path(host_key_path)))
    return server
