"""The simulated node's SSH view: how sessions are wrapped, and the fallback without namespaces."""

from __future__ import annotations

import os
from pathlib import Path

from tribes_sim.generations import GenerationTree
from tribes_sim.node import nodeview

STORE = "/gnu/store/0123456789abcdfghijklmnpqrsvwxyz-system"


def _tree(root: Path, absolute: bool) -> GenerationTree:
    tree = GenerationTree(root, absolute_links=absolute)
    tree.create_system(STORE, [])
    tree.link_generation(1, STORE)
    tree.select(1)
    tree.run_system(STORE)
    return tree


def test_guix_links_are_absolute_with_the_node_view(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "root", absolute=True)
    assert os.readlink(tmp_path / "root" / "run" / "current-system") == STORE
    assert os.readlink(tmp_path / "root" / "var/guix/profiles/system-1-link") == STORE
    assert os.readlink(tmp_path / "root" / "var/guix/profiles/system") == "system-1-link"
    assert tree.running() == STORE and tree.selected() == STORE


def test_without_the_view_links_are_relative_so_tribes_root_paths_resolve(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "root", absolute=False)
    link = tmp_path / "root" / "run" / "current-system"
    assert not os.readlink(link).startswith("/")
    assert link.resolve() == (tmp_path / "root" / STORE.lstrip("/")).resolve()
    assert tree.running() == STORE and tree.selected() == STORE


def test_the_fallback_runs_sessions_unwrapped(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(nodeview, "namespaces_available", lambda: False)
    view = nodeview.NodeView(tmp_path, tmp_path / "root")
    assert view.wrap(["/bin/sh", "-c", "true"]) == ["/bin/sh", "-c", "true"]
    assert view.home == tmp_path / "root"
    assert (tmp_path / "guix-bin" / "herd").stat().st_mode & 0o111


def test_the_view_binds_the_node_and_not_the_fleet(tmp_path: Path) -> None:
    node_dir = tmp_path / "fleet" / "nodes" / "ovh-1"
    script = nodeview.setup_script(node_dir, node_dir / "root", node_dir / "view", ["/opt/py"])
    assert f'mount --bind {node_dir / "root" / "run"} "$v/run"' in script
    assert f'mount --bind {node_dir / "root" / "gnu"} "$v/gnu"' in script
    assert f'mount --rbind {node_dir} "$v"{node_dir}' in script
    assert str(tmp_path / "fleet") + " " not in script  # only the node's own directory
    assert script.endswith('exec chroot "$v" /usr/bin/env -C /root "$@"')


def test_sessions_enter_the_node_s_one_namespace(tmp_path: Path) -> None:
    if not nodeview.namespaces_available():
        import pytest

        pytest.skip("no mount namespaces here")
    node_dir = tmp_path / "nodes" / "ovh-1"
    for part in ("gnu/store", "var/guix/profiles", "run"):
        (node_dir / "root" / part).mkdir(parents=True)
    view = nodeview.NodeView(node_dir, node_dir / "root")
    try:
        first = view.wrap(["/bin/sh", "-c", "true"])
        assert first[1:5] == ["-t", first[2], "-m", "-r"] and first[-3:] == [
            "/bin/sh",
            "-c",
            "true",
        ]
        assert view.wrap(["true"])[2] == first[2]  # one holder per node
        import subprocess

        done = subprocess.run(
            view.wrap(["/bin/sh", "-c", "ls /; pwd"]), capture_output=True, text=True, check=True
        )
        *listing, cwd = done.stdout.split()
        allowed = {"bin", "dev", "etc", "gnu", "lib", "lib32", "lib64", "libx32", "proc", "root"}
        allowed |= {"run", "sbin", "sys", "tmp", "usr", "var"}
        allowed |= {Path(p).parts[1] for p in [*nodeview.python_paths(), str(node_dir)]}
        assert {"gnu", "run", "usr", "root"} <= set(listing) <= allowed
        assert cwd == "/root"
        pid = int(first[2])
    finally:
        view.close()
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
