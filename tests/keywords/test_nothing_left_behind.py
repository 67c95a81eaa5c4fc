"""A run leaves no fleet directory behind (they hold admin, Legion and SSH keys): pass, fail or kill.

sim-as-real drives the simulator through the real strategy's setup/teardown commands; its fleet
directory used to outlive every run. Now the teardown removes it, a failed setup still tears
down, and a fleet whose robot process was killed is removed by the next fleet started beside it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.keywords.conftest import SIM_AS_REAL_VARIABLES, VENV_BIN, put_venv_on_path
from tribesqa.running.fleet_dirs import remove_fleet_dir, sweep_orphan_fleets, write_owner

pytestmark = pytest.mark.slow

FAILING = """*** Settings ***
Library    tribesqa.library.TribesLibrary
Suite Setup    Open Target
Suite Teardown    Close Target

*** Test Cases ***
A Node Is Provisioned
    Provision Init Node    hetzner

A Test That Fails
    Fail    on purpose: the run must still leave nothing behind
"""

SLOW = """*** Settings ***
Library    tribesqa.library.TribesLibrary
Suite Setup    Open Target
Suite Teardown    Close Target

*** Test Cases ***
Provision And Wait To Be Killed
    Provision Init Node    hetzner
    Sleep    120 s
"""


@pytest.fixture
def fleets() -> Iterator[Path]:
    # Short: the simulator's Unix sockets live in the fleet directory (108-byte path limit).
    base = Path(tempfile.mkdtemp(prefix="tq-left-"))
    yield base
    shutil.rmtree(base, ignore_errors=True)


def sim_as_real_into(fleets: Path, tmp_path: Path) -> Path:
    text = SIM_AS_REAL_VARIABLES.read_text()
    assert "{tmp}/tribes-qa-sim-as-real" in text
    target = tmp_path / "sim-as-real.yaml"
    target.write_text(text.replace("{tmp}/tribes-qa-sim-as-real", str(fleets)))
    return target


def key_files(base: Path) -> list[Path]:
    return [p for p in base.rglob("*") if p.is_file() and "secrets" in p.parts]


def test_a_failing_sim_as_real_suite_leaves_no_fleet_directory(
    run_robot: Any, fleets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_venv_on_path(monkeypatch)
    result = run_robot(FAILING, variablefile=sim_as_real_into(fleets, tmp_path), name="failing")
    statuses = {test.name: test.status for test in result.suite.tests}
    assert statuses == {"A Node Is Provisioned": "PASS", "A Test That Fails": "FAIL"}, (
        result.console[-3000:]
    )
    assert list(fleets.iterdir()) == [], "the fleet directory (with its keys) outlived the run"


def test_a_killed_robot_leaves_a_fleet_the_next_run_removes(fleets: Path, tmp_path: Path) -> None:
    suite = tmp_path / "slow.robot"
    suite.write_text(SLOW)
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    variables = sim_as_real_into(fleets, tmp_path)
    robot = subprocess.Popen(
        [str(VENV_BIN / "robot"), "--variablefile", str(variables), "--outputdir",
         str(tmp_path / "out"), str(suite)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not any((d / "nodes").is_dir() for d in fleets.iterdir()):
            assert robot.poll() is None, "robot ended before the fleet was up"
            assert time.monotonic() < deadline, "no fleet came up"
            time.sleep(0.2)
        (killed,) = list(fleets.iterdir())
        assert key_files(killed), "the fleet directory holds no keys to leave behind"
    finally:
        robot.send_signal(signal.SIGKILL)
        robot.wait(30)
    assert killed.exists(), "nothing was left to clean: the kill came too late"

    # The next fleet started beside it (any sim-as-real Open Target) sweeps the orphan.
    nxt = fleets / "next"
    up = subprocess.run(
        [str(VENV_BIN / "tribes-qa"), "sim", "up", "--nodes", "0", "--dir", str(nxt),
         "--owner-pid", str(os.getpid())],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert up.returncode == 0, up.stdout + up.stderr
    down = subprocess.run(
        [str(VENV_BIN / "tribes-qa"), "sim", "down", "--remove", "--dir", str(nxt)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert down.returncode == 0, down.stdout + down.stderr
    assert list(fleets.iterdir()) == [], list(fleets.iterdir())
    assert not processes_mentioning(str(killed)), "the killed run's Legion or hosts still run"


def processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline:
                found.append(f"{proc.name}: {cmdline[:120]}")
    return found


def test_only_fleet_directories_of_dead_owners_are_swept(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan, kept, alive, hand_made = (tmp_path / n for n in ("orphan", "kept", "alive", "hand"))
    write_owner(orphan, dead.pid, remove=True)
    write_owner(kept, dead.pid, remove=False)  # keep_fleet_dirs: true
    write_owner(alive, os.getpid(), remove=True)
    (hand_made / "secrets").mkdir(parents=True)  # `tribes-qa sim up` by hand: no owner
    assert sweep_orphan_fleets(tmp_path) == [orphan]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alive", "hand", "kept"]


def test_removing_refuses_what_is_not_a_fleet_directory(tmp_path: Path) -> None:
    precious = tmp_path / "home"
    (precious / "notes").mkdir(parents=True)
    with pytest.raises(ValueError, match="not a simulated fleet directory"):
        remove_fleet_dir(precious)
    assert (precious / "notes").is_dir()
    assert remove_fleet_dir(tmp_path / "absent") is False
