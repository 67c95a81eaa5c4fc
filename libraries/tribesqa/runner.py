"""``tribes-qa run``: robot or pabot with the right variables, output directory and cleanup.

The run gets a marker in its environment (``TRIBES_QA_RUN_ID``) that every process it starts
inherits, simulator processes included; when the run ends, or is interrupted, anything still
carrying the marker is killed, so an interrupted run leaves no simulator, robot or node behind.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

RUN_MARKER = "TRIBES_QA_RUN_ID"


@dataclass
class RunRequest:
    target: Path
    outputdir: Path = Path("results")
    parallel: int = 0
    robot_args: list[str] = field(default_factory=list)
    suites: list[str] = field(default_factory=lambda: ["suites"])


def build_command(request: RunRequest) -> list[str]:
    """The robot/pabot argv for a request (the venv's interpreter, so no activation is needed)."""
    common = [
        "--variablefile",
        str(request.target),
        "--outputdir",
        str(request.outputdir),
        "--loglevel",
        "DEBUG:INFO",
    ]
    has_paths = any(not arg.startswith("-") and Path(arg).exists() for arg in request.robot_args)
    paths = [] if has_paths else list(request.suites)
    if request.parallel > 0:
        return [
            sys.executable,
            "-m",
            "pabot.pabot",
            "--processes",
            str(request.parallel),
            "--pabotlib",
            *common,
            *request.robot_args,
            *paths,
        ]
    return [sys.executable, "-m", "robot", *common, *request.robot_args, *paths]


def child_environment(run_id: str) -> dict[str, str]:
    env = dict(os.environ)
    env[RUN_MARKER] = run_id
    # The venv's bin first: targets call tribes-qa / tribes-sim-legion as commands.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


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


def kill_marked(run_id: str, grace_s: float = 5.0) -> list[int]:
    """SIGTERM everything the run left, then SIGKILL what is still there after ``grace_s``."""
    pids = marked_processes(run_id)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and marked_processes(run_id):
        time.sleep(0.1)
    for pid in marked_processes(run_id):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


def run_suites(request: RunRequest) -> int:
    request.outputdir.mkdir(parents=True, exist_ok=True)
    run_id = secrets.token_hex(8)
    command = build_command(request)
    sys.stderr.write(f"tribes-qa run {run_id}: {' '.join(command)}\n")
    process = subprocess.Popen(command, env=child_environment(run_id), start_new_session=True)
    interrupted: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        # Robot stops gracefully on the first SIGINT/SIGTERM (teardowns run); a second one
        # forces it, as in plain robot.
        interrupted.append(signum)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT if len(interrupted) == 1 else signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        returncode = process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        leftovers = kill_marked(run_id)
        if leftovers:
            sys.stderr.write(f"tribes-qa run: stopped {len(leftovers)} leftover process(es)\n")
    if interrupted:
        return 128 + interrupted[0] if returncode == 0 else returncode
    return returncode
