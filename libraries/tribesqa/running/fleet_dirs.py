"""Simulated fleet directories: who owns one, and removing them (they hold key material).

``<fleet dir>/owner.json`` is ``{"pid": the robot process that owns the fleet, or null once it
is shared with the whole run; "remove": whether the directory goes when the fleet stops}``.
``tribes-qa run`` stops a fleet whose owner died (pabot's ``--processtimeout`` kills robot, not
Legion, which runs in its own session) and, at the end of a run, every fleet the run started;
a later ``Open Target`` sweeps fleets whose owner died without anyone stopping them (a
``kill -9`` of plain robot).
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

from tribes_sim.fleet import stop_fleet
from tribes_sim.procs import pid_alive

OWNER_FILE = "owner.json"
# What only a simulator fleet directory holds (a "secrets" folder alone is not enough: any
# project may have one); a directory without one of them is never removed.
_FLEET_MARKERS = ("sim-config.json", "legion.json")


def write_owner(fleet_dir: Path, pid: int | None, remove: bool) -> None:
    fleet_dir.mkdir(parents=True, exist_ok=True)
    partial = fleet_dir / f"{OWNER_FILE}.partial"
    partial.write_text(json.dumps({"pid": pid, "remove": remove}))
    partial.replace(fleet_dir / OWNER_FILE)  # atomic: a sweep never reads half a record


def read_owner(fleet_dir: Path) -> dict[str, object]:
    """The owner record, ``{}`` when there is none (a fleet started by hand)."""
    with contextlib.suppress(OSError, ValueError):
        owner = json.loads((fleet_dir / OWNER_FILE).read_text())
        if isinstance(owner, dict):
            return owner
    return {}


def is_fleet_dir(directory: Path) -> bool:
    """A simulator fleet: its config or Legion file, or our own owner record (a fleet whose
    start failed before writing either)."""
    if not directory.is_dir():
        return False
    if any((directory / name).exists() for name in _FLEET_MARKERS):
        return True
    owner = read_owner(directory)
    return set(owner) == {"pid", "remove"}


def remove_fleet_dir(directory: Path) -> bool:
    """Delete a stopped fleet's directory, keys included; refuse anything that is not one."""
    if not directory.exists():
        return False
    if not is_fleet_dir(directory):
        raise ValueError(f"{directory} is not a simulated fleet directory: not removing it")
    left: list[str] = []
    shutil.rmtree(directory, onerror=lambda _f, path, info: left.append(f"{path}: {info[1]}"))
    if left:  # key files may be among them: say so, never pass silently
        raise OSError(f"could not remove all of {directory}: " + "; ".join(left[:3]))
    return True


def sweep_orphan_fleets(base: Path) -> list[Path]:
    """Stop and remove fleets under ``base`` whose owning process is gone and asked for removal.

    Only directories with an owner record naming a dead pid and ``remove: true``: a fleet
    started by hand, one kept on purpose and a shared one (pid null) are left alone.
    """
    swept: list[Path] = []
    if not base.is_dir():
        return swept
    for directory in sorted(base.iterdir()):
        owner = read_owner(directory)
        pid = owner.get("pid")
        if not owner.get("remove") or not isinstance(pid, int) or pid_alive(pid):
            continue
        if not is_fleet_dir(directory):
            continue
        with contextlib.suppress(Exception):
            stop_fleet(directory, timeout_s=10.0)
        with contextlib.suppress(OSError):
            remove_fleet_dir(directory)
        swept.append(directory)
    return swept
