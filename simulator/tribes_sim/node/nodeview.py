"""What an SSH session on a simulated node sees: that node's Guix System view, not the machine's.

A node has one mount namespace (``unshare --mount``, held by a ``sleep`` process that dies with
the node's host) whose root is a tmpfs holding:

* ``/gnu``, ``/var/guix`` and ``/run`` bound from the node's own root directory, so
  ``readlink /run/current-system`` and ``readlink -f /var/guix/profiles/system`` answer with that
  node's generations, exactly as on a Guix System node;
* the machine's ``/usr`` (and the ``/bin``, ``/lib``... links into it), ``/etc``, ``/dev``,
  ``/proc``, ``/sys`` so ordinary tools (``sh``, ``curl``, ``readlink``) run;
* a private ``/tmp`` and ``/root`` (the session's ``HOME``);
* the node's own directory at its real path (``$TRIBES_ROOT`` keeps working), the Python
  installation running the simulator (for ``tribes-sim-legion`` and ``herd``), and nothing of
  the other nodes: ``ls /`` shows the node, not the machine running the simulator.

Every exec or shell channel enters it (``nsenter --mount --root``): the node's sessions share
one filesystem view, as on one machine, and a session costs one extra exec, not a mount setup.
``herd`` (GNU Shepherd's client) is a small script first on the session's ``PATH`` that drives
the node's ``tribes`` service through the node's Legion (see ``tribes_sim.node.herd``).

Where the kernel or container refuses mount namespaces, sessions fall back to running on the
machine itself (``$TRIBES_ROOT`` points at the node's root) and the server says so once in its
log; generations are then written as relative links so ``readlink -f $TRIBES_ROOT/...`` works.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import tribes_sim

log = logging.getLogger(__name__)

#: Machine directories every session sees as they are (when present): tools, libraries, config.
_SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc")
#: Pseudo filesystems a session needs (``ps``, ``/dev/null``).
_KERNEL_DIRS = ("dev", "proc", "sys")
#: How long the namespace holder may take to build the view.
_HOLDER_START_S = 10.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Child side: SIGKILL this process when the node's host dies (a crash is a SIGKILL)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@functools.cache
def namespaces_available() -> bool:
    """Whether ``unshare --mount`` plus a tmpfs and a bind mount work here (probed once)."""
    unshare = shutil.which("unshare")
    if unshare is None or shutil.which("nsenter") is None or not os.access("/bin/sh", os.X_OK):
        log.warning("ssh sessions: no unshare(1)/nsenter(1): sessions see the machine's filesystem")
        return False
    # Inside the private namespace only: nothing is created or mounted on the machine.
    probe = "mount -t tmpfs probe /tmp && mount --bind /usr /tmp && echo ok"
    try:
        completed = subprocess.run(
            [unshare, "--mount", "--propagation", "private", "/bin/sh", "-c", probe],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as error:
        completed = None
        reason = str(error)
    else:
        reason = completed.stderr.strip()[-200:]
    if completed is not None and completed.returncode == 0 and completed.stdout.strip() == "ok":
        return True
    log.warning(
        "ssh sessions: mount namespaces are not available (%s): sessions fall back to the "
        "machine's filesystem with $TRIBES_ROOT (no /run/current-system of the node)",
        reason or "unshare failed",
    )
    return False


def python_paths() -> list[str]:
    """Directories the simulator's Python needs inside a session (interpreter, venv, sources)."""
    paths = {
        sys.prefix,
        sys.base_prefix,
        str(Path(os.path.realpath(sys.executable)).parent.parent),
        str(Path(tribes_sim.__file__).resolve().parent.parent),
    }
    # Directories already under /usr come with it.
    return sorted(p for p in paths if not p.startswith("/usr/") and p not in ("/", "/usr"))


def write_guix_bin(directory: Path) -> Path:
    """Write the session's ``herd`` into ``directory`` (created); return the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    herd = directory / "herd"
    herd.write_text(
        "#!/bin/sh\n"
        "# GNU Shepherd's herd on a simulated Guix node: drives the node's tribes service.\n"
        f'exec {shlex.quote(sys.executable)} -m tribes_sim.node.herd "$@"\n'
    )
    herd.chmod(0o755)
    return directory


def setup_script(node_dir: Path, root: Path, view: Path, extra_binds: list[str]) -> str:
    """The ``sh`` script that builds the node's view at ``view`` and ``exec``s ``"$@"`` in it."""
    q = shlex.quote
    lines = ["set -e", f"v={q(str(view))}", 'mount -t tmpfs -o mode=755 nodeview "$v"']
    for name in _SYSTEM_DIRS:
        source = Path("/") / name
        if source.is_symlink():
            lines.append(f'ln -s {q(os.readlink(source))} "$v/{name}"')
        elif source.is_dir():
            lines.append(f'mkdir "$v/{name}" && mount --rbind /{name} "$v/{name}"')
    for name in _KERNEL_DIRS:
        lines.append(f'mkdir "$v/{name}" && mount --rbind /{name} "$v/{name}"')
    lines.append('mkdir -p "$v/tmp" "$v/root" "$v/gnu" "$v/var/guix" "$v/run"')
    lines.append('mount -t tmpfs -o mode=1777 tmp "$v/tmp"')
    for inside, outside in (("gnu", "gnu"), ("var/guix", "var/guix"), ("run", "run")):
        lines.append(f'mount --bind {q(str(root / outside))} "$v/{inside}"')
    for path in [str(node_dir), *extra_binds]:
        lines.append(f'mkdir -p "$v"{q(path)} && mount --rbind {q(path)} "$v"{q(path)}')
    # The node's own shell runs inside the view, in HOME=/root.
    lines.append('exec chroot "$v" /usr/bin/env -C /root "$@"')
    return "\n".join(lines)


class NodeView:
    """A node's filesystem view for its SSH sessions (or, in the fallback, the machine's)."""

    def __init__(self, node_dir: Path, root: Path) -> None:
        self.node_dir = node_dir
        self.root = root
        self.isolated = namespaces_available()
        self.guix_bin = write_guix_bin(node_dir / "guix-bin")
        self._view = node_dir / "view"
        self._view.mkdir(exist_ok=True)
        self._script = setup_script(node_dir, root, self._view, python_paths())
        self._holder: subprocess.Popen[bytes] | None = None

    def wrap(self, argv: list[str]) -> list[str]:
        """The argv that runs ``argv`` as a session of this node."""
        if not self.isolated:
            return argv
        pid = self._holder_pid()
        return [
            shutil.which("nsenter") or "nsenter",
            "-t",
            str(pid),
            "-m",
            "-r",
            "/usr/bin/env",
            "-C",
            "/root",
            *argv,
        ]

    def _holder_pid(self) -> int:
        if self._holder is None or self._holder.poll() is not None:
            self._holder = self._start_holder()
        return self._holder.pid

    def _start_holder(self) -> subprocess.Popen[bytes]:
        holder = subprocess.Popen(
            [
                shutil.which("unshare") or "unshare",
                "--mount",
                "--propagation",
                "private",
                "/bin/sh",
                "-c",
                self._script,
                "nodeview",
                "sleep",
                "infinity",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - one prctl, safe before exec
        )
        deadline = time.monotonic() + _HOLDER_START_S
        while time.monotonic() < deadline and holder.poll() is None:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{holder.pid}/root") == str(self._view):
                    return holder  # chrooted into the finished view
            time.sleep(0.005)
        holder.kill()
        _, stderr = holder.communicate()
        raise OSError(
            f"{self.node_dir.name}: could not build the node's SSH view "
            f"(exit {holder.returncode}): {stderr.decode(errors='replace').strip()[-300:]}"
        )

    def close(self) -> None:
        """Kill the namespace holder (the view goes with the namespace)."""
        holder, self._holder = self._holder, None
        if holder is not None and holder.poll() is None:
            holder.kill()
        if holder is not None:
            holder.communicate()

    @property
    def home(self) -> Path:
        """The session's HOME as the session sees it."""
        return Path("/root") if self.isolated else self.root
