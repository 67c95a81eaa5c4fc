"""Guix-like system generations on disk: store paths and the two symlinks that matter.

``<root>/var/guix/profiles/system`` is the *selected* generation (what the next boot uses) and
``<root>/run/current-system`` the *running* one. ``system`` points at ``system-<n>-link``
(relative, as on Guix). ``system-<n>-link`` and ``current-system`` point at ``/gnu/store/...``
(absolute, as on Guix) when SSH sessions see the node's own ``/gnu`` (``node.nodeview``), so
``readlink /run/current-system`` in a session prints the store path; without that view they are
relative links, so ``readlink -f ${TRIBES_ROOT}/run/current-system`` works on the machine.
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

    def __init__(self, root: Path, absolute_links: bool | None = None) -> None:
        if absolute_links is None:
            from tribes_sim.node.nodeview import namespaces_available

            absolute_links = namespaces_available()
        self.absolute_links = absolute_links
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
        target = self._link_target(store_path, self.profiles)
        _replace_symlink(link, target)

    def select(self, number: int) -> None:
        """Point the system profile at generation ``number`` (the 'switch')."""
        _replace_symlink(self.profiles / "system", f"system-{number}-link")

    def run_system(self, store_path: str) -> None:
        """Point run/current-system at a store path (what a restart/boot does)."""
        self.run.mkdir(parents=True, exist_ok=True)
        target = self._link_target(store_path, self.run)
        _replace_symlink(self.run / "current-system", target)

    def _link_target(self, store_path: str, directory: Path) -> str:
        if self.absolute_links:
            return store_path
        return os.path.relpath(self._store_dir(store_path), directory)

    def _resolve(self, link: Path) -> str:
        """Follow ``link`` inside the node's root (absolute targets are relative to the root)."""
        root = self.root.resolve()
        current = link
        for _ in range(40):
            if not current.is_symlink():
                break
            target = os.readlink(current)
            if target.startswith("/"):
                current = root / target.lstrip("/")
            else:
                current = Path(os.path.normpath(current.parent / target))
        resolved = current.resolve()
        return "/" + resolved.relative_to(root).as_posix()

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
