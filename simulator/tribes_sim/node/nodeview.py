"""What an SSH session on a simulated node sees: that node's Guix System view, not the machine's.

Each exec or shell channel runs in its own mount namespace (``unshare --mount``) whose root is a
fresh tmpfs holding:

* ``/gnu``, ``/var/guix`` and ``/run`` bound from the node's own root directory, so
  ``readlink /run/current-system`` and ``readlink -f /var/guix/profiles/system`` answer with that
  node's generations, exactly as on a Guix System node;
* the machine's ``/usr`` (and the ``/bin``, ``/lib``... links into it), ``/etc``, ``/dev``,
  ``/proc``, ``/sys`` so ordinary tools (``sh``, ``curl``, ``readlink``) run;
* a private ``/tmp`` and ``/root`` (the session's ``HOME``);
* the node's own directory at its real path (``$TRIBES_ROOT`` keeps working), the Python
  installation running the simulator (for ``tribes-sim-legion`` and ``herd``), and nothing of
  the other nodes: ``ls /`` shows the node, not the machine running the simulator.

``herd`` (GNU Shepherd's client) is a small script first on the session's ``PATH`` that drives
the node's ``tribes`` service through the node's Legion (see ``tribes_sim.node.herd``).

Where the kernel or container refuses mount namespaces, sessions fall back to running on the
machine itself (``$TRIBES_ROOT`` points at the node's root) and the server says so once in its
log; generations are then written as relative links so ``readlink -f $TRIBES_ROOT/...`` works.
"""

from __future__ import annotations

import functools
import logging
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import tribes_sim

log = logging.getLogger(__name__)

#: Machine directories every session sees read-only (when present): tools, libraries, config.
_SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc")
#: Pseudo filesystems a session needs (``ps``, ``/dev/null``).
_KERNEL_DIRS = ("dev", "proc", "sys")


@functools.cache
def namespaces_available() -> bool:
    """Whether ``unshare --mount`` plus a tmpfs and a bind mount work here (probed once)."""
    unshare = shutil.which("unshare")
    if unshare is None or not os.access("/bin/sh", os.X_OK):
        log.warning("ssh sessions: no unshare(1): sessions see the machine's filesystem")
        return False
    probe = 'd=$(mktemp -d) && mount -t tmpfs probe "$d" && mount --bind /usr "$d" && echo ok'
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
    """How one node's SSH server wraps a session's command: in the node's view, or (fallback)
    as is on the machine."""

    def __init__(self, node_dir: Path, root: Path) -> None:
        self.node_dir = node_dir
        self.root = root
        self.isolated = namespaces_available()
        self.guix_bin = write_guix_bin(node_dir / "guix-bin")
        view = node_dir / "view"
        view.mkdir(exist_ok=True)
        self._script = setup_script(node_dir, root, view, python_paths())
        self._unshare = shutil.which("unshare") or "unshare"

    def wrap(self, argv: list[str]) -> list[str]:
        """The argv that runs ``argv`` as a session of this node."""
        if not self.isolated:
            return argv
        return [
            self._unshare,
            "--mount",
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            self._script,
            "nodeview",
            *argv,
        ]

    @property
    def home(self) -> Path:
        """The session's HOME as the session sees it."""
        return Path("/root") if self.isolated else self.root

    def cwd(self) -> Path:
        """The working directory the server starts the session in (on the machine)."""
        return self.root
