"""The child process of one SSH session: its environment, started on pipes (``exec``, a shell
without a pty) or on a real pseudo-terminal (an interactive shell), and supervised until it or
its channel ends, whatever it left running killed with it.

Children get a minimal clean environment: ``PATH`` (the server's), ``HOME``, ``LANG=C.UTF-8``,
``USER``, ``LOGNAME``, ``SHELL``, ``PS1``, an empty ``HISTFILE`` and ``TERM`` when a pty was
requested, then the node's ``env``, which wins on conflicts (see ``ssh_server``).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import struct
import termios
from collections.abc import Mapping
from pathlib import Path

import asyncssh

from tribes_sim.node.ssh_sessions import (
    interactive_shell_argv,
    kill_session,
    take_controlling_terminal,
)


def shell_prompt(user: str, node: str) -> str:
    """Return the interactive prompt (``PS1``) a node's shell prints: ``<user>@<node>$ ``."""
    return f"{user}@{node}$ "


def child_environment(
    node_env: Mapping[str, str], home: Path, term_type: str | None, user: str
) -> dict[str, str]:
    """The environment of a session's child: the clean base, then the node's ``node_env``."""
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "USER": user,
        "LOGNAME": user,
        "SHELL": interactive_shell_argv()[0],
        "PS1": shell_prompt(user, node_env.get("TRIBES_NODE", "sim")),
        "HISTFILE": "",  # an empty HISTFILE keeps bash from writing history into cwd
    }
    if term_type:
        env["TERM"] = term_type
    env.update(node_env)
    return env


async def supervise(
    process: asyncssh.SSHServerProcess[bytes],
    child: asyncio.subprocess.Process,
    *,
    job_control: bool,
) -> int:
    """Wait for the child to exit or the channel to close; kill what is left of the session."""
    exited = asyncio.ensure_future(child.wait())
    channel_closed = asyncio.ensure_future(process.channel.wait_closed())
    try:
        await asyncio.wait({exited, channel_closed}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        channel_closed.cancel()
        # The session dies with its channel (client gone, server closing), and whatever the
        # command left running in the background dies with the command: no orphans. An
        # interactive shell puts background jobs in process groups of their own, hence the
        # whole-session sweep on a pty.
        kill_session(child.pid, whole_session=job_control)
    return await exited


async def spawn_on_pipes(
    process: asyncssh.SSHServerProcess[bytes],
    argv: list[str],
    env: Mapping[str, str],
    cwd: Path,
) -> asyncio.subprocess.Process:
    """Start ``argv`` with stdin, stdout and stderr piped to the channel (kept apart)."""
    child = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env=dict(env),
        start_new_session=True,  # own process group: killpg reaches every descendant
    )
    try:
        # send_eof=False: the first of stdout/stderr to end must not close the channel for
        # the other; EOF is sent once both are drained (see SimSshServer._serve).
        await process.redirect(
            stdin=child.stdin, stdout=child.stdout, stderr=child.stderr, send_eof=False
        )
    except BaseException:
        kill_session(child.pid, whole_session=False)
        await child.wait()
        raise
    return child


async def spawn_on_pty(
    process: asyncssh.SSHServerProcess[bytes],
    argv: list[str],
    env: Mapping[str, str],
    cwd: Path,
) -> asyncio.subprocess.Process:
    """Start ``argv`` on a new pseudo-terminal (the client's size), its controlling terminal."""
    primary, secondary = pty.openpty()
    try:
        width, height, pixel_width, pixel_height = process.term_size
        if width and height:
            fcntl.ioctl(
                secondary,
                termios.TIOCSWINSZ,
                struct.pack("HHHH", height, width, pixel_width, pixel_height),
            )
        child = await asyncio.create_subprocess_exec(
            *argv,
            stdin=secondary,
            stdout=secondary,
            stderr=secondary,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
            # Make the pty the session's controlling terminal (job control, ^C, SIGHUP).
            # The hook only issues one ioctl, so it is safe despite other threads.
            preexec_fn=take_controlling_terminal,
        )
    except BaseException:
        os.close(primary)
        raise
    finally:
        # Only the child may hold the secondary side: reading the primary then fails with
        # EIO once the shell and its jobs are gone, which ends the channel's output.
        os.close(secondary)
    try:
        writer_fd = os.dup(primary)
        # asyncssh takes ownership of both descriptors (one write and one read transport).
        await process.redirect(stdin=writer_fd, stdout=primary, send_eof=False)
    except BaseException:
        kill_session(child.pid, whole_session=True)
        await child.wait()
        raise
    # Window changes and signals from the client go to the shell.
    process.set_redirect_pid(child.pid)
    return child
