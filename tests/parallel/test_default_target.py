"""Plain ``robot`` and plain ``pabot`` with no options run against the embedded default target.

QA types ``robot suites/`` or ``pabot --processes 4 suites/`` with no variables file: the suites
must run against the simulator exactly as with ``--variablefile variables/sim.yaml``, the log
saying which target was chosen and why; an explicitly given target always wins.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.parallel.conftest import (
    FAST_SUITES,
    REPO,
    VENV_BIN,
    Env,
    load,
    messages,
    path_without_venv,
    suite_test_count,
)

pytestmark = pytest.mark.slow

OPEN_AND_CLOSE = """*** Settings ***
Library    tribesqa.library.TribesLibrary

*** Test Cases ***
Open And Close
    Open Target
    Close Target
"""


def run_plain(env: Env, tool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # As QA runs it: in an activated venv (pabot starts its robot processes by name).
    activated = f"{VENV_BIN}{os.pathsep}{path_without_venv()}"
    return subprocess.run(
        [str(VENV_BIN / tool), *args],
        cwd=cwd,
        env=env.environ(PATH=activated, VIRTUAL_ENV=str(VENV_BIN.parent)),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_plain_robot_runs_a_suite_against_the_default_simulator(env: Env) -> None:
    out = env.tmp / "robot"
    suite = str(REPO / "suites" / "trust_expansion_replay.robot")
    done = run_plain(env, "robot", "--outputdir", str(out), suite, cwd=env.tmp)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "no TARGET given (no --variablefile): using the default target" in done.stdout
    result = load(out / "output.xml")
    assert result.statistics.total.failed == 0
    assert result.statistics.total.passed == suite_test_count("suites/trust_expansion_replay.robot")
    opened = " ".join(messages(result, "Open Target"))
    assert "kind='sim'" in opened or "simulat" in opened, opened
    assert "exactly as --variablefile variables/sim.yaml" in opened, opened


def test_plain_pabot_runs_suites_against_the_default_simulator(env: Env) -> None:
    out = env.tmp / "pabot"
    suites = [str(REPO / suite) for suite in FAST_SUITES]
    done = run_plain(
        env, "pabot", "--processes", "2", "--outputdir", str(out), *suites, cwd=env.tmp
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = load(out / "output.xml")
    assert (
        result.statistics.total.passed == suite_test_count(*FAST_SUITES)
        and result.statistics.total.failed == 0
    )
    opened = [m for m in messages(result, "Open Target") if m.startswith("Target: ")]
    assert len(opened) == 2 and all("using the default target" in m for m in opened), opened


def test_an_explicit_target_wins_over_the_default(env: Env) -> None:
    suite = env.tmp / "open_and_close.robot"
    suite.write_text(OPEN_AND_CLOSE)
    out = env.tmp / "explicit"
    done = run_plain(
        env, "robot", "--variablefile", str(env.target), "--outputdir", str(out), str(suite),
        cwd=env.tmp,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "no TARGET given" not in done.stdout
    opened = " ".join(messages(load(out / "output.xml"), "Open Target"))
    assert "target from the command line" in opened, opened
    # The explicit file's private fleets directory was used, not the default one.
    assert str(env.fleets_dir) in opened, opened
