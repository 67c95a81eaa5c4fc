"""`tribes-qa run` and the production guard: a real target leaves out the tests tagged
destructive unless --allow-destructive, which also turns ALLOW_DESTRUCTIVE on for the library."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from robot.api import ExecutionResult

from tribesqa.running.destructive import guard_notice, guard_options
from tribesqa.running.runner import RunRequest, build_command

ROOT = Path(__file__).resolve().parents[1]
SIM = ROOT / "variables" / "sim.yaml"
REAL = ROOT / "variables" / "fleet.example.yaml"
SIM_AS_REAL = ROOT / "variables" / "sim-as-real.yaml"
TRIBES_QA = ROOT / ".venv" / "bin" / "tribes-qa"

pytestmark = pytest.mark.req("GUARD-2")


def robot_options(command: list[str]) -> list[str]:
    """The options before the data sources (the last argument)."""
    return command[:-1]


def test_a_simulated_target_runs_everything() -> None:
    command = build_command(RunRequest(target=SIM))
    assert "--exclude" not in command and "ALLOW_DESTRUCTIVE:true" not in command
    assert guard_notice(SIM, allow_destructive=False) is None


@pytest.mark.parametrize("target", [REAL, SIM_AS_REAL])
@pytest.mark.parametrize("parallel", [0, 2])
def test_a_real_target_excludes_destructive_tests(target: Path, parallel: int) -> None:
    command = build_command(RunRequest(target=target, parallel=parallel))
    options = robot_options(command)
    at = options.index("--exclude")
    assert options[at + 1] == "destructive"
    assert "ALLOW_DESTRUCTIVE:true" not in command
    notice = guard_notice(target, allow_destructive=False)
    assert notice is not None and "tests tagged destructive are excluded" in notice
    assert "--allow-destructive" in notice


@pytest.mark.parametrize("target", [REAL, SIM])
def test_allow_destructive_runs_them_and_tells_the_library(target: Path) -> None:
    command = build_command(RunRequest(target=target, allow_destructive=True, parallel=2))
    assert "--exclude" not in command
    at = command.index("ALLOW_DESTRUCTIVE:true")
    assert command[at - 1] == "--variable"
    # After the target's variable file: a command-line --variable outranks it anyway.
    assert at > command.index("--variablefile")
    assert guard_options(target, allow_destructive=True) == [
        "--variable",
        "ALLOW_DESTRUCTIVE:true",
    ]


@pytest.mark.req("GUARD-3")
def test_a_real_run_selects_only_the_read_only_tests(tmp_path: Path) -> None:
    """The installed command on the example real fleet, as a dry run: what would run is the
    gate's preconditions, lifecycle checks and history check and the admin API refusals, nothing
    destructive."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        [str(TRIBES_QA), "run", "--target", str(REAL), "--outputdir", str(tmp_path), "--",
         "--dryrun", str(ROOT / "suites")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert "tests tagged destructive are excluded" in done.stderr, done.stderr[-2000:]
    assert "--exclude destructive" in done.stderr.splitlines()[1]
    result = ExecutionResult(str(tmp_path / "output.xml"))
    tests = list(result.suite.all_tests)
    assert tests, done.stdout[-2000:]
    assert not [t.full_name for t in tests if "destructive" in t.tags]
    suites = {t.parent.name for t in tests}
    assert suites == {"Admin Api Security", "Fleet Gate"}, suites
    gate = sorted(t.name for t in tests if t.parent.name == "Fleet Gate")
    # The history test only reads what the run recorded: it runs on a real fleet too.
    assert gate == [
        "Lifecycle Checks Pass On Every Gate Node",
        "Roster Nodes Meet The Gate Preconditions",
        "The Suite History Holds Every Invariant",
    ]


def test_the_runner_finds_the_checkout_from_anywhere() -> None:
    # `tribes-qa run` started outside the checkout falls back to the checkout's suites and
    # variables: REPO must be the checkout, not a folder inside it.
    from tribesqa.running.runner import REPO

    assert (REPO / "suites").is_dir() and (REPO / "variables" / "sim.yaml").is_file(), REPO
