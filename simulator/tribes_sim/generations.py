"""Guix-like system generations on disk: store paths and the two symlinks that matter.

``<root>/var/guix/profiles/system`` is the *selected* generation (what the next boot uses) and
``<root>/run/current-system`` the *running* one. They are real, relative symlinks so that
``readlink -f ${TRIBES_ROOT}/run/current-system`` works over SSH exactly as on a real node.
Store paths are derived from the plugin set, so every node computes the same path for the
same system (as Guix does for the same derivation).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

NIX_BASE32 = "0123456789abcdfghijklmnpqrsvwxyz"


def store_hash(seed: str) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    number = int.from_bytes(digest, "big")
    chars = []
    for _ in range(32):
        number, index = divmod(number, 32)
        chars.append(NIX_BASE32[index])
    return "".join(chars)


def system_store_path(plugins: Iterable[tuple[str, str]]) -> str:
    """``/gnu/store/<hash>-system`` for a set of (plugin, commit) pairs."""
    seed = "tribes-system:" + ",".join(f"{name}@{commit}" for name, commit in sorted(plugins))
    return f"/gnu/store/{store_hash(seed)}-system"


class GenerationTree:
    """The part of a node's root directory that holds generations."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.profiles = root / "var" / "guix" / "profiles"
        self.run = root / "run"

    def _store_dir(self, store_path: str) -> Path:
        return self.root / store_path.lstrip("/")

    def create_system(self, store_path: str, plugins: Iterable[str]) -> None:
        directory = self._store_dir(store_path)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "plugins").write_text("\n".join(sorted(plugins)) + "\n")

    def link_generation(self, number: int, store_path: str) -> None:
        self.profiles.mkdir(parents=True, exist_ok=True)
        link = self.profiles / f"system-{number}-link"
        target = os.path.relpath(self._store_dir(store_path), self.profiles)
        _replace_symlink(link, target)

    def select(self, number: int) -> None:
        """Point the system profile at generation ``number`` (the 'switch')."""
        _replace_symlink(self.profiles / "system", f"system-{number}-link")

    def run_system(self, store_path: str) -> None:
        """Point run/current-system at a store path (what a restart/boot does)."""
        self.run.mkdir(parents=True, exist_ok=True)
        target = os.path.relpath(self._store_dir(store_path), self.run)
        _replace_symlink(self.run / "current-system", target)

    def _resolve(self, link: Path) -> str:
        resolved = link.resolve()
        return "/" + resolved.relative_to(self.root.resolve()).as_posix()

    def selected(self) -> str:
        return self._resolve(self.profiles / "system")

    def previous_selected(self) -> str | None:
        """The store path of the generation numbered one below the selected one, if any."""
        current = os.readlink(self.profiles / "system")
        number = int(current.removeprefix("system-").removesuffix("-link"))
        link = self.profiles / f"system-{number - 1}-link"
        return self._resolve(link) if link.is_symlink() else None

    def running(self) -> str:
        return self._resolve(self.run / "current-system")


def _replace_symlink(link: Path, target: str) -> None:
    # Atomic replace, as `ln -sfn` + rename does: a reader never sees a missing link.
    temporary = link.with_name(link.name + ".tmp")
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    temporary.symlink_to(target)
    os.replace(temporary, link)
