"""The processes of a run: found by the marker in their environment (``TRIBES_QA_RUN_ID``),
stopped when the run ends or is interrupted (its robot/pabot processes first, then its fleets,
then anything else still marked), and the reaper that stops a fleet whose robot process died.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path

RUN_MARKER = "TRIBES_QA_RUN_ID"


def _cmdline(pid: int) -> list[str]:
    with contextlib.suppress(OSError):
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return [part.decode(errors="replace") for part in raw.split(b"\0") if part]
    return []


def marked_processes(run_id: str) -> list[int]:
    """Pids whose environment carries this run's marker (our own process excluded)."""
    needle = f"{RUN_MARKER}={run_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return found


def _is_simulator(pid: int) -> bool:
    return any(part.startswith("tribes_sim.") for part in _cmdline(pid))


def _signal_and_wait(pids: list[int], run_id: str, grace_s: float) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and set(pids) & set(marked_processes(run_id)):
        time.sleep(0.1)
    killed = set(pids) & set(marked_processes(run_id))
    for pid in killed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    # SIGKILL is not instant: return when they are gone, so "nothing left" is true on return.
    deadline = time.monotonic() + grace_s
    while killed and time.monotonic() < deadline and killed & set(marked_processes(run_id)):
        time.sleep(0.05)


def run_fleets(run_id: str) -> dict[Path, dict[str, object]]:
    """Fleet directory -> owner record (``{}`` when none) of every Legion the run started."""
    fleets: dict[Path, dict[str, object]] = {}
    for pid in marked_processes(run_id):
        words = _cmdline(pid)
        if "tribes_sim.legion" not in words or "--dir" not in words[:-1]:
            continue
        directory = Path(words[words.index("--dir") + 1])
        from tribesqa.running.fleet_dirs import read_owner

        fleets[directory] = read_owner(directory)
    return fleets


def _alive(pid: object) -> bool:
    from tribes_sim.procs import pid_alive

    return isinstance(pid, int) and pid_alive(pid)


def stop_fleets(run_id: str, *, orphans_only: bool = False) -> list[Path]:
    """Stop the run's fleets (only those whose owning robot process died, with ``orphans_only``)."""
    from tribes_sim.fleet import stop_fleet
    from tribesqa.running.fleet_dirs import remove_fleet_dir

    stopped = []
    for directory, owner in run_fleets(run_id).items():
        if orphans_only and (not owner.get("pid") or _alive(owner.get("pid"))):
            continue
        with contextlib.suppress(Exception):
            stop_fleet(directory, timeout_s=10.0)
        if owner.get("remove"):
            with contextlib.suppress(OSError, ValueError):
                remove_fleet_dir(directory)
        stopped.append(directory)
    return stopped


def kill_marked(run_id: str, grace_s: float = 5.0) -> list[int]:
    """Stop everything the run left: its robot/pabot processes, its fleets, then the rest."""
    first = marked_processes(run_id)
    _signal_and_wait([pid for pid in first if not _is_simulator(pid)], run_id, grace_s)
    stop_fleets(run_id)
    _signal_and_wait(marked_processes(run_id), run_id, grace_s)
    return first


class FleetReaper(threading.Thread):
    """While a run goes: stop fleets whose owning robot process is gone (pabot timeouts)."""

    def __init__(self, run_id: str, interval_s: float = 1.0) -> None:
        super().__init__(name="tribes-qa-fleet-reaper", daemon=True)
        self.run_id = run_id
        self.interval_s = interval_s
        self.stopping = threading.Event()
        self.reaped: list[Path] = []

    def run(self) -> None:
        while not self.stopping.wait(self.interval_s):
            for directory in stop_fleets(self.run_id, orphans_only=True):
                self.reaped.append(directory)
                sys.stderr.write(f"tribes-qa run: stopped orphaned fleet {directory}\n")

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)
