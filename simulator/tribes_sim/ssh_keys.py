"""OpenSSH keys of the simulated fleet: node host keys and the fleet's client key."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import asyncssh


def generate_ssh_keypair(private_path: Path, comment: str = "") -> str:
    """Create an ed25519 key pair in OpenSSH format and return the public key line.

    The private key goes to ``private_path`` (mode 0600, replaced atomically if it exists), the
    public key line to ``private_path`` + ``.pub``. Used for node host keys and for the fleet's
    client key.
    """
    private_path = Path(private_path)
    private_path.parent.mkdir(parents=True, exist_ok=True)
    key = asyncssh.generate_private_key("ssh-ed25519", comment=comment or None)
    write_atomically(private_path, key.export_private_key("openssh"), mode=0o600)
    public_line = key.export_public_key("openssh").decode("ascii").strip()
    public_path = private_path.with_name(private_path.name + ".pub")
    write_atomically(public_path, (public_line + "\n").encode("ascii"), mode=0o644)
    return public_line


def public_key_fingerprint(public_key_line: str) -> str:
    """Return the OpenSSH SHA-256 fingerprint (``SHA256:<base64>``) of a public key line."""
    return asyncssh.import_public_key(public_key_line.strip()).get_fingerprint("sha256")


def write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    """Write ``data`` to ``path`` via a temporary file created with ``mode`` (never wider)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
