"""Unit tests of the parallel-run plumbing: the pabot command line, argument files, artifact
labels under pabot, the shared-fleet guard and the orphaned-fleet reaper."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.parallel.conftest import REPO, Env
from tribesqa.context import RunLabels
from tribesqa.running.runner import (
    PABOTLIB_PORTS,
    RUN_MARKER,
    RunError,
    RunRequest,
    argument_files,
    build_command,
    check_request,
    has_datasources,
    run_fleets,
    stop_fleets,
)
from tribesqa.shared_fleet import (
    EXCLUSIVE,
    SHARED,
    LocalStore,
    SharedFleetGuard,
    SharedHandle,
)

TARGET = Path("variables/sim.yaml")


def pabot_options(command: list[str]) -> list[str]:
    assert command[1:3] == ["-m", "pabot.pabot"], command
    return command[3:]


def test_plain_robot_without_parallel() -> None:
    command = build_command(RunRequest(target=TARGET))
    assert command[:3] == [sys.executable, "-m", "robot"]
    assert command[-1].endswith("suites")


def test_pabot_gets_a_free_pabotlib_port_and_no_redundant_pabotlib_flag() -> None:
    options = pabot_options(build_command(RunRequest(target=TARGET, parallel=3)))
    assert options[:3] == ["--processes", "3", "--pabotlibport"]
    # Never 0 (pabot would hand PabotLib an ephemeral port an outgoing connection may take).
    low, high = PABOTLIB_PORTS
    assert low <= int(options[3]) <= high < 12000
    # pabot 5.2 runs PabotLib by default; --pabotlib would clash with --no-pabotlib.
    assert "--pabotlib" not in options
    assert options[options.index("--outputdir") + 1] == "results"


def test_given_datasources_replace_the_default_suites() -> None:
    args = ["--include", "cluster", "suites/trust_expansion_replay.robot"]
    command = build_command(RunRequest(target=TARGET, parallel=2, robot_args=args))
    assert command[-3:] == args
    assert has_datasources(["--variablefile", "variables/sim.yaml"]) is False
    assert has_datasources(["--dryrun", "suites"]) is True


def test_shard_timeout_and_hosted_pabotlib() -> None:
    request = RunRequest(
        target=TARGET, parallel=2, shard="1/2", process_timeout=30, pabotlib_port=8299
    )
    options = pabot_options(build_command(request))
    joined = " ".join(options)
    assert "--pabotlibport 8299" in joined
    assert "--shard 1/2" in joined and "--processtimeout 30" in joined


def test_attached_shard_passes_the_uri_through_an_argument_file(tmp_path: Path) -> None:
    request = RunRequest(
        target=TARGET, outputdir=tmp_path, parallel=2, pabotlib_attach="10.0.0.5:8300"
    )
    files = argument_files(request, [])
    assert list(files.values()) == ["--variable PABOTLIBURI:10.0.0.5:8300\n"]
    options = pabot_options(build_command(request, list(files)))
    joined = " ".join(options)
    assert "--no-pabotlib --pabotlibhost 10.0.0.5 --pabotlibport 8300" in joined
    assert f"--argumentfile1 {next(iter(files))}" in joined


@pytest.mark.req("GATE-1", "GATE-3")
def test_gate_per_node_argument_files_one_per_roster_node(tmp_path: Path) -> None:
    request = RunRequest(target=TARGET, outputdir=tmp_path, gate_per_node=True)
    files = argument_files(request, ["hetzner-1", "ovh-1"])
    assert [p.name for p in files] == ["gate-1-hetzner-1.args", "gate-2-ovh-1.args"]
    assert list(files.values())[1] == "--variable GATE_NODE:ovh-1\n--metadata Gate node:ovh-1\n"
    options = pabot_options(build_command(request, list(files)))
    assert options[:2] == ["--processes", "2"]
    assert options[-1].endswith("suites/fleet_gate.robot")
    assert "--argumentfile2" in options


@pytest.mark.parametrize(
    ("request_args", "problem"),
    [
        ({"shard": "1/2"}, "need pabot"),
        ({"parallel": 2, "shard": "3/2"}, "--shard wants"),
        ({"parallel": 2, "pabotlib_port": 1, "pabotlib_attach": "h:2"}, "exclude each other"),
        ({"parallel": 2, "pabotlib_attach": "nohost"}, "HOST:PORT"),
    ],
)
def test_bad_combinations_are_refused(request_args: dict[str, object], problem: str) -> None:
    with pytest.raises(RunError, match=problem):
        check_request(RunRequest(target=TARGET, **request_args))  # type: ignore[arg-type]


def test_artifact_labels_point_at_the_merged_output_directory() -> None:
    labels = RunLabels()
    labels.suite = "Fleet Gate"
    labels.output_dir = Path("/r/results/pabot_results/2/1")
    assert labels.output_dir == Path("/r/results")
    assert labels.suite == "Fleet Gate@2"  # one gate process per argument file
    labels.output_dir = Path("/r/results/pabot_results/4")
    assert (labels.output_dir, labels.suite) == (Path("/r/results"), "Fleet Gate")
    labels.output_dir = Path("/r/plain")
    assert (labels.output_dir, labels.suite) == (Path("/r/plain"), "Fleet Gate")


def test_shared_handle_round_trip_and_garbage() -> None:
    handle = SharedHandle.new("sim", {"fleet_dir": "/x"}, ["hetzner-1"])
    assert SharedHandle.loads(handle.dumps()) == handle
    with pytest.raises(AssertionError, match="not a shared target handle"):
        SharedHandle.loads("")


class ThreadedStore(LocalStore):
    """PabotLib semantics across threads: a real mutex per lock name."""

    def __init__(self) -> None:
        super().__init__()
        self.locks: dict[str, threading.Lock] = {}
        self.guard = threading.Lock()

    def acquire_lock(self, name: str) -> bool:
        with self.guard:
            lock = self.locks.setdefault(name, threading.Lock())
        lock.acquire()
        return True

    def release_lock(self, name: str) -> None:
        self.locks[name].release()


def test_guard_shared_holders_overlap_exclusive_ones_never_do() -> None:
    # Every step waits for the guard's state instead of sleeping, so a busy machine cannot
    # reorder the arrivals.
    store = ThreadedStore()
    taken: list[str] = []
    release = {name: threading.Event() for name in ("r1", "r2", "w1", "r3", "w2")}

    def worker(name: str, mode: str) -> None:
        guard = SharedFleetGuard(store, "t", holder=name, poll_s=0.005, wait_s=20)
        guard.hold(mode)
        taken.append(name)
        release[name].wait(20)
        guard.release()

    def start(name: str, mode: str) -> threading.Thread:
        thread = threading.Thread(target=worker, args=(name, mode), daemon=True)
        thread.start()
        return thread

    def state_becomes(**expected: Any) -> dict[str, Any]:
        observer = SharedFleetGuard(store, "t")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            state = observer.state()
            if all(
                (sorted(state[key]) if isinstance(value, list) else state[key]) == value
                for key, value in expected.items()
            ):
                return state
            time.sleep(0.005)
        raise AssertionError(f"guard state never became {expected}: {observer.state()}")

    threads = [start("r1", SHARED), start("r2", SHARED)]
    state_becomes(readers=["r1", "r2"])  # two shared holders side by side
    threads.append(start("w1", EXCLUSIVE))
    state_becomes(readers=["r1", "r2"], waiting=["w1"])
    threads.append(start("r3", SHARED))  # arrives while w1 waits: must go after it
    threads.append(start("w2", EXCLUSIVE))
    state_becomes(readers=["r1", "r2"], waiting=["w1", "w2"])
    time.sleep(0.1)  # give r3 the chance to (wrongly) slip in
    assert sorted(taken) == ["r1", "r2"], taken

    release["r1"].set()
    state_becomes(readers=["r2"])
    assert "w1" not in taken, "a writer must wait for every shared holder"
    release["r2"].set()
    state_becomes(readers=[], writer="w1", waiting=["w2"])
    release["w1"].set()
    state_becomes(readers=[], writer="w2", waiting=[])
    assert "r3" not in taken, "a waiting writer goes before later readers"
    release["w2"].set()
    state_becomes(readers=["r3"], writer="", waiting=[])
    release["r3"].set()
    for thread in threads:
        thread.join(timeout=20)
    assert taken[2:] == ["w1", "w2", "r3"], taken
    assert SharedFleetGuard(store, "t").state() == {"readers": [], "writer": "", "waiting": []}


def test_guard_times_out_naming_the_holder() -> None:
    store = ThreadedStore()
    SharedFleetGuard(store, "t", holder="stuck-process").hold(EXCLUSIVE)
    late = SharedFleetGuard(store, "t", holder="late", poll_s=0.01, wait_s=0.2)
    with pytest.raises(AssertionError, match="exclusive holder stuck-process"):
        late.hold(SHARED)
    assert late.mode is None


@pytest.mark.slow
def test_reaper_stops_a_fleet_whose_robot_process_died(env: Env) -> None:
    """A robot process killed (as by pabot's --processtimeout) leaves Legion running in its own
    session; the runner stops it and removes its directory."""
    run_id = "reaper-test-" + env.marker
    opener = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from tribesqa.config import parse_target, load_timeouts\n"
        "from tribesqa.targets.sim import SimTarget\n"
        f"config = parse_target({{'name': 's', 'kind': 'sim', 'sim': {{'fleets_dir': {str(env.fleets_dir)!r}}}}})\n"
        "SimTarget(config, load_timeouts('sim'), Path('.')).open('Killed Suite')\n"
        "os._exit(0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", opener],
        cwd=REPO,
        env={**os.environ, RUN_MARKER: run_id, "TRIBES_QA_TEST_MARKER": env.marker},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    fleets = run_fleets(run_id)
    assert len(fleets) == 1, fleets
    directory, owner = next(iter(fleets.items()))
    assert directory.parent == env.fleets_dir and owner["remove"] is True
    assert stop_fleets(run_id, orphans_only=True) == [directory]
    assert run_fleets(run_id) == {}
    assert not directory.exists()
