"""The robot/pabot command line of a run: its options, data sources, pabot argument files (one
per gate node), the PabotLib port and the environment its processes inherit.

See ``runner`` for the pabot specifics the options work around.
"""

from __future__ import annotations

import os
import random
import socket
import sys
from pathlib import Path

from tribesqa.running.destructive import guard_options
from tribesqa.running.rerun import RerunPlan
from tribesqa.running.run_processes import RUN_MARKER
from tribesqa.running.run_request import (
    RunError,
    RunRequest,
    default_suites_dir,
    parse_host_port,
)

GATE_SUITE = "fleet_gate.robot"
# Robot options that take no value: an existing path right after one of them is a data source.
ROBOT_FLAGS = frozenset(
    {
        "--dryrun",
        "--exitonfailure",
        "-X",
        "--exitonerror",
        "--skipteardownonexit",
        "--runemptysuite",
        "--nostatusrc",
        "--rpa",
        "--norpa",
        "--splitlog",
        "--timestampoutputs",
        "-T",
        "--dotted",
        "-.",
        "--quiet",
        "--legacyoutput",
    }
)


def has_datasources(args: list[str]) -> bool:
    for index, arg in enumerate(args):
        if arg.startswith("-") or not Path(arg).exists():
            continue
        previous = args[index - 1] if index else ""
        if not previous.startswith("-") or previous in ROBOT_FLAGS:
            return True
    return False


def argument_files(request: RunRequest, gate_nodes: list[str]) -> dict[Path, str]:
    """pabot ``--argumentfileN`` files: one per gate node, or one carrying the attached PabotLib URI."""
    directory = request.outputdir.resolve() / "pabot-args"
    attach = ""
    if request.pabotlib_attach:
        host, port = parse_host_port(request.pabotlib_attach)
        attach = f"--variable PABOTLIBURI:{host}:{port}\n"
    files: dict[Path, str] = {}
    for index, node in enumerate(gate_nodes, 1):
        files[directory / f"gate-{index}-{node}.args"] = (
            f"--variable GATE_NODE:{node}\n--metadata Gate node:{node}\n{attach}"
        )
    if attach and not files:
        files[directory / "pabotlib.args"] = attach
    return files


def build_command(
    request: RunRequest, argfiles: list[Path] | None = None, rerun: RerunPlan | None = None
) -> list[str]:
    """The robot/pabot argv for a request (the venv's interpreter, so no activation is needed)."""
    selection = rerun.robot_options(pabot=request.uses_pabot()) if rerun else []
    common = [
        "--variablefile",
        str(request.target),
        "--outputdir",
        str(request.outputdir),
        "--loglevel",
        "DEBUG:INFO",
        *guard_options(request.target, request.allow_destructive),
        *selection,
    ]
    if has_datasources(request.robot_args):
        paths: list[str] = []
    elif request.suites:
        paths = list(request.suites)
    elif request.gate_per_node:
        paths = [str(default_suites_dir() / GATE_SUITE)]
    else:
        paths = [str(default_suites_dir())]
    if not request.uses_pabot():
        return [sys.executable, "-m", "robot", *common, *request.robot_args, *paths]
    pabot = ["--processes", str(request.parallel or max(1, len(argfiles or [])))]
    if request.pabotlib_attach:
        host, port = parse_host_port(request.pabotlib_attach)
        pabot += ["--no-pabotlib", "--pabotlibhost", host, "--pabotlibport", str(port)]
    else:
        pabot += ["--pabotlibport", str(request.pabotlib_port or pick_pabotlib_port())]
    if request.shard:
        pabot += ["--shard", request.shard]
    if request.process_timeout:
        pabot += ["--processtimeout", str(request.process_timeout)]
    for index, argfile in enumerate(argfiles or [], 1):
        pabot += [f"--argumentfile{index}", str(argfile)]
    return [sys.executable, "-m", "pabot.pabot", *pabot, *common, *request.robot_args, *paths]


def child_environment(run_id: str, seed: int | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env[RUN_MARKER] = run_id
    if seed is not None:  # every simulator the run starts draws its choices from it
        env["TRIBES_SIM_SEED"] = str(seed)
    # The venv's bin first: pabot starts `robot`, targets call tribes-qa / tribes-sim-legion.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


# PabotLib's port when the run names none. pabot's own "--pabotlibport 0" binds port 0, closes
# it and hands the number to PabotLib, which binds it a second later: a port from the ephemeral
# range (32768-60999 here), which any of the simulator's outgoing connections may take first.
# This block is below both the ephemeral range and the simulator's node ports (12000-29999).
PABOTLIB_PORTS = (10000, 11999)


def pick_pabotlib_port(attempts: int = 64) -> int:
    """A free port from ``PABOTLIB_PORTS`` (random, so two runs rarely try the same one)."""
    low, high = PABOTLIB_PORTS
    rng = random.Random()
    for _ in range(attempts):
        port = rng.randint(low, high)
        if port_free(port):
            return port
    raise RunError(f"no free port for PabotLib in {low}-{high}")


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
