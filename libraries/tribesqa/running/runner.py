"""``tribes-qa run``: robot or pabot with the right variables, output directory and cleanup.

The run gets a marker in its environment (``TRIBES_QA_RUN_ID``) that every process it starts
inherits: pabot, its robot processes and its PabotLib server, simulator processes (Legion, node
hosts), commands a target runs. While the run goes, a reaper stops any simulated fleet whose
owning robot process died (pabot's ``--processtimeout`` kills robot, not Legion, which runs in
its own session). When the run ends, or is interrupted, the run's robot/pabot processes are
stopped first (so none can start a new fleet), then every fleet the run started (graceful
``stop_fleet``, its directory removed), then anything else still carrying the marker; so an
interrupted run leaves no simulator, robot, pabot or node behind.

This module starts the run and sees it to its end; what is asked is ``run_request``'s, the
command line ``pabot_argv``'s, finding and stopping the run's processes ``run_processes``'.
Callers import all of it from here.

pabot specifics (pabot 5.2, read from its source):

* PabotLib is on by default (``--pabotlib`` is a no-op); the runner gives it a free port
  (``--pabotlibport 0``) so concurrent runs never share one by accident.
* A shard that uses another shard's PabotLib passes ``--no-pabotlib --pabotlibhost H
  --pabotlibport P``, but pabot 5.2 then still hands its robot processes
  ``PABOTLIBURI=127.0.0.1:8270``; the runner adds ``--variable PABOTLIBURI:H:P`` through an
  argument file (``--argumentfileN`` options come after pabot's own, so they win).
* pabot orders suites from ``.pabotsuitenames`` in the working directory when one exists; a
  stale one (another run, another checkout) would split shards differently on each machine,
  so the runner removes it first: every shard computes the same (alphabetical) order.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tribesqa.running.destructive import guard_notice
from tribesqa.running.pabot_argv import (
    GATE_SUITE,
    PABOTLIB_PORTS,
    ROBOT_FLAGS,
    argument_files,
    build_command,
    child_environment,
    has_datasources,
    pick_pabotlib_port,
    port_free,
)
from tribesqa.running.rerun import merge_rerun, start_rerun
from tribesqa.running.run_processes import (
    RUN_MARKER,
    FleetReaper,
    kill_marked,
    marked_processes,
    run_fleets,
    stop_fleets,
)
from tribesqa.running.run_request import (
    REPO,
    RunError,
    RunRequest,
    check_request,
    default_suites_dir,
    parse_host_port,
    roster_nodes,
)

# The names callers import from here (the run's one entry point): the split modules' API.
__all__ = [
    "GATE_SUITE",
    "PABOTLIB_PORTS",
    "REPO",
    "ROBOT_FLAGS",
    "RUN_MARKER",
    "SUITE_NAMES_FILE",
    "FleetReaper",
    "RunError",
    "RunRequest",
    "argument_files",
    "build_command",
    "check_request",
    "child_environment",
    "default_suites_dir",
    "has_datasources",
    "kill_marked",
    "marked_processes",
    "parse_host_port",
    "pick_pabotlib_port",
    "port_free",
    "roster_nodes",
    "run_fleets",
    "run_suites",
    "stop_fleets",
]

SUITE_NAMES_FILE = ".pabotsuitenames"


def pabotlib_reachable(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1.0):
        return True
    return False


def _prepare_pabot(request: RunRequest, wait_s: float) -> None:
    if request.pabotlib_port and not port_free(request.pabotlib_port):
        # pabot would quietly pick another port, and the shards attaching would miss it.
        raise RunError(f"--pabotlib-port {request.pabotlib_port} is in use")
    if request.pabotlib_attach:
        host, port = parse_host_port(request.pabotlib_attach)
        deadline = time.monotonic() + wait_s
        while not pabotlib_reachable(host, port):
            if time.monotonic() > deadline:
                raise RunError(f"no PabotLib at {host}:{port} after {wait_s:g} s")
            time.sleep(0.2)
    with contextlib.suppress(FileNotFoundError):
        Path(SUITE_NAMES_FILE).unlink()


def run_suites(request: RunRequest, *, pabotlib_wait_s: float = 120.0) -> int:
    check_request(request)
    request.outputdir.mkdir(parents=True, exist_ok=True)
    rerun = start_rerun(request.outputdir) if request.rerun_failed else None
    if request.rerun_failed and rerun is None:
        return 0  # nothing failed
    gate_nodes = roster_nodes(request.target) if request.gate_per_node else []
    files = argument_files(request, gate_nodes)
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    command = build_command(request, list(files), rerun)
    request.command = command
    if request.uses_pabot():
        _prepare_pabot(request, pabotlib_wait_s)
    run_id = secrets.token_hex(8)
    started = time.time()
    notice = guard_notice(request.target, request.allow_destructive)
    if notice:
        sys.stderr.write(notice + "\n")
    seed = "" if request.seed is None else f" (seed {request.seed})"
    sys.stderr.write(f"tribes-qa run {run_id}{seed}: {' '.join(command)}\n")
    env = child_environment(run_id, request.seed)
    process = subprocess.Popen(command, env=env, start_new_session=True)
    reaper = FleetReaper(run_id)
    reaper.start()
    interrupted: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        # Robot and pabot stop gracefully on the first SIGINT (teardowns run, pabot still
        # merges a report); a second signal forces it.
        interrupted.append(signum)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT if len(interrupted) == 1 else signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        returncode = process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        reaper.stop()
        leftovers = kill_marked(run_id)
        if leftovers:
            sys.stderr.write(f"tribes-qa run: stopped {len(leftovers)} leftover process(es)\n")
        if request.uses_pabot():
            with contextlib.suppress(FileNotFoundError):
                Path(SUITE_NAMES_FILE).unlink()
    if rerun is not None:
        returncode = merge_rerun(rerun, run_id, returncode)
    if request.matrix:
        from tribesqa.running.run_pages import write_run_pages

        for label, page in write_run_pages(request.outputdir, started).items():
            sys.stderr.write(f"{label}: {page.resolve()}\n")
    if interrupted:
        return 128 + interrupted[0] if returncode == 0 else returncode
    return returncode
