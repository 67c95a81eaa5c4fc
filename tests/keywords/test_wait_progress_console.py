"""Console progress on a real robot run: a wait at least ``progress_after`` long writes its lines
to robot's console (stdout); a pabot process (pabot hands it ``PABOTQUEUEINDEX``) prints nothing
unless ``TRIBES_QA_PROGRESS`` asks; the simulator's own short waits stay quiet with the table
as shipped. Robot runs in a subprocess: ``logger.console`` writes to the process's stdout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.keywords.conftest import ROOT, SIM_VARIABLES

SUITE = """
*** Settings ***
Library           tribesqa.library.TribesLibrary
Suite Setup       Open Target
Suite Teardown    Close Target

*** Test Cases ***
A Node Becomes Active
    ${init}=    Provision Init Node    hetzner
    Wait Until Node Is Active Everywhere    ${init.name}
"""


def run(tmp_path: Path, *robot_options: str, progress_after: float | None, **env: str) -> str:
    """Robot's console output of SUITE on the simulator."""
    suite = tmp_path / "progress.robot"
    suite.write_text(SUITE)
    environment = {k: v for k, v in os.environ.items() if k != "TRIBES_QA_PROGRESS"}
    if progress_after is not None:
        table = yaml.safe_load((ROOT / "variables" / "timeouts.yaml").read_text())
        table["TIMEOUTS"]["sim"]["progress_after"] = progress_after
        path = tmp_path / "timeouts.yaml"
        path.write_text(yaml.safe_dump(table))
        environment["TRIBES_QA_TIMEOUTS"] = str(path)
    environment.update(env)
    done = subprocess.run(
        [sys.executable, "-m", "robot", "--variablefile", str(SIM_VARIABLES), "--outputdir",
         str(tmp_path / "out"), "--console", "verbose", *robot_options, str(suite)],
        env=environment, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    return done.stdout


def progress_lines(console: str) -> list[str]:
    return [line for line in console.splitlines() if line.startswith("node hetzner-1 active")]


@pytest.mark.req("PROG-1")
def test_a_long_enough_wait_prints_its_start_and_end_to_the_console(tmp_path: Path) -> None:
    lines = progress_lines(run(tmp_path, progress_after=1))
    assert lines[0].startswith("node hetzner-1 active everywhere: waiting up to 20 s (poll 0.1 s)")
    assert ": done: " in lines[-1] and lines[-1].endswith(" of 20 s)"), lines
    # One line per change, never one per poll (a 20 s wait polls up to 200 times).
    assert len(lines) == len(set(lines)) <= 6, lines


@pytest.mark.req("PROG-1")
def test_the_simulators_short_waits_stay_quiet(tmp_path: Path) -> None:
    assert progress_lines(run(tmp_path, progress_after=None)) == []


@pytest.mark.req("PROG-2")
def test_a_pabot_process_prints_nothing_unless_asked(tmp_path: Path) -> None:
    pabot = ("--variable", "PABOTQUEUEINDEX:0", "--variable", "PABOTEXECUTIONPOOLID:1")
    assert progress_lines(run(tmp_path, *pabot, progress_after=1)) == []
    asked = progress_lines(run(tmp_path, *pabot, progress_after=1, TRIBES_QA_PROGRESS="1"))
    assert asked and ": done: " in asked[-1], asked
    by_variable = ("--variable", "TRIBES_QA_PROGRESS:true")
    assert progress_lines(run(tmp_path, *pabot, *by_variable, progress_after=1))
