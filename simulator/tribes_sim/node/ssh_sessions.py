"""Process plumbing of a node's SSH sessions: the shell, the controlling terminal, killing a
session's processes, draining output and reporting exit statuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import os
import signal
import termios

import asyncssh

#: How long ``close()`` waits for session handlers and connections to wind down.
CLOSE_TIMEOUT_S = 5.0


@functools.cache
def interactive_shell_argv() -> tuple[str, ...]:
    """The interactive shell: bash without rc files and without readline, else plain sh.

    Without readline bash prints exactly the prompt and what the pty echoes (no bracketed-paste
    or redraw escape sequences in what SSHLibrary reads).
    """
    if os.access("/bin/bash", os.X_OK):
        return ("/bin/bash", "--noprofile", "--norc", "--noediting", "-i")
    return ("/bin/sh", "-i")


def take_controlling_terminal() -> None:
    """Child side, after setsid(): adopt stdin (the pty) as the controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def kill_session(leader: int, *, whole_session: bool) -> None:
    """SIGKILL a session's process group and, if asked, every other process of the session."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, signal.SIGKILL)
    if whole_session:
        for pid in session_members(leader):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def session_members(session_id: int) -> list[int]:
    """Pids whose session id is ``session_id`` (Linux /proc; empty where /proc is missing)."""
    members: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return members
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat_file:
                stat = stat_file.read()
        except OSError:
            continue
        # Fields after the parenthesised command name: state ppid pgrp session ...
        fields = stat.rpartition(b")")[2].split()
        if len(fields) > 3 and int(fields[3]) == session_id:
            members.append(int(entry))
    return members


async def output_drained(process: asyncssh.SSHServerProcess[bytes]) -> bool:
    """Wait until the child's stdout/stderr were forwarded up to their end of file.

    Returns False if the channel closed first (asyncssh then drops the redirections without
    waking drain waiters, so the close is awaited alongside).
    """

    async def drain_both() -> None:
        await process.stdout.drain()
        await process.stderr.drain()

    drained = asyncio.ensure_future(drain_both())
    channel_closed = asyncio.ensure_future(process.channel.wait_closed())
    try:
        await asyncio.wait({drained, channel_closed}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in (drained, channel_closed):
            waiter.cancel()
    return drained.done() and not drained.cancelled() and drained.exception() is None


def exit_quietly(process: asyncssh.SSHServerProcess[bytes], status: int) -> None:
    """Report an exit status unless the channel is already gone."""
    with contextlib.suppress(OSError, asyncssh.Error):
        process.exit(status)
