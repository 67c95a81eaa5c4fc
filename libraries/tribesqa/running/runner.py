"""``tribes-qa run``: robot or pabot with the right variables, output directory and cleanup.

The run gets a marker in its environment (``TRIBES_QA_RUN_ID``) that every process it starts
inherits: pabot, its robot processes and its PabotLib server, simulator processes (Legion, node
hosts), commands a target runs. While the run goes, a reaper stops any simulated fleet whose
owning robot process died (pabot's ``--processtimeout`` kills robot, not Legion, which runs in
its own session). When the run ends, or is interrupted, the run's robot/pabot processes are
stopped first (so none can start a new fleet), then every fleet the run started (graceful
``stop_fleet``, its directory removed), then anything else still carrying the marker; so an
interrupted run leaves no simulator, robot, pabot or node behind.

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
import random
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tribesqa.running.destructive import guard_notice, guard_options
from tribesqa.running.rerun import RerunPlan, merge_rerun, start_rerun

RUN_MARKER = "TRIBES_QA_RUN_ID"
REPO = Path(__file__).resolve().parents[2]
GATE_SUITE = "fleet_gate.robot"
SUITE_NAMES_FILE = ".pabotsuitenames"
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


class RunError(Exception):
    """The run cannot start as asked (bad option combination, busy port, missing roster)."""


@dataclass
class RunRequest:
    target: Path
    outputdir: Path = Path("results")
    parallel: int = 0
    robot_args: list[str] = field(default_factory=list)
    suites: list[str] = field(default_factory=list)
    gate_per_node: bool = False
    process_timeout: int | None = None
    shard: str | None = None
    pabotlib_port: int | None = None  # host PabotLib on this port (for other shards)
    pabotlib_attach: str | None = None  # HOST:PORT of another shard's PabotLib
    matrix: bool = True
    rerun_failed: bool = False  # rerun the failed suites of OUTPUTDIR/output.xml, then merge
    seed: int | None = None  # TRIBES_SIM_SEED of the run's processes (the simulator's choices)
    command: list[str] = field(default_factory=list)  # set by run_suites: the argv it ran
    allow_destructive: bool = False  # a real target runs its tests tagged destructive too

    def uses_pabot(self) -> bool:
        return self.parallel > 0 or self.gate_per_node


def default_suites_dir() -> Path:
    return Path("suites") if Path("suites").is_dir() else REPO / "suites"


def has_datasources(args: list[str]) -> bool:
    for index, arg in enumerate(args):
        if arg.startswith("-") or not Path(arg).exists():
            continue
        previous = args[index - 1] if index else ""
        if not previous.startswith("-") or previous in ROBOT_FLAGS:
            return True
    return False


def parse_host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not host or not 0 < number < 65536:
        raise RunError(f"--pabotlib-attach wants HOST:PORT, got {text!r}")
    return host, number


def check_request(request: RunRequest) -> None:
    pabot_only = {
        "--shard": request.shard,
        "--process-timeout": request.process_timeout,
        "--pabotlib-port": request.pabotlib_port,
        "--pabotlib-attach": request.pabotlib_attach,
    }
    if not request.uses_pabot():
        given = [name for name, value in pabot_only.items() if value is not None]
        if given:
            raise RunError(f"{', '.join(given)} need pabot: add --parallel N")
    if request.pabotlib_port is not None and request.pabotlib_attach is not None:
        raise RunError("--pabotlib-port (host PabotLib) and --pabotlib-attach exclude each other")
    if request.shard is not None:
        index, _, count = request.shard.partition("/")
        if not (index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
            raise RunError(f"--shard wants I/N with 1 <= I <= N, got {request.shard!r}")
    if request.pabotlib_attach is not None:
        parse_host_port(request.pabotlib_attach)
    if request.rerun_failed and (request.shard or request.pabotlib_attach):
        raise RunError(
            "--rerun-failed reruns one output directory's failed suites: not with "
            "--shard/--pabotlib-attach (rerun each shard's directory, then merge them with rebot)"
        )


def roster_nodes(target: Path) -> list[str]:
    """The ROSTER's node names of a target file (validated with the models)."""
    from tribesqa.config import validate_target_file

    parsed = validate_target_file(target)
    if not parsed.ROSTER:
        raise RunError(f"{target}: no ROSTER: the per-node gate needs one")
    return [entry.node for entry in parsed.ROSTER]


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


# -- the run's processes ---------------------------------------------------------------------------
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


def pabotlib_reachable(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1.0):
        return True
    return False


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
