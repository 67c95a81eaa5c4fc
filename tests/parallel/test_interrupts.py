"""Stopping a pabot run: SIGINT / SIGTERM to `tribes-qa run --parallel 2` once nodes are up, and
a suite killed by pabot's --processtimeout. Nothing may be left: no pabot, robot, PabotLib,
Legion or node host process carrying the test's marker, no fleet directory."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.parallel.conftest import REPO, Env, load, marked_processes, wait_until_gone

pytestmark = pytest.mark.slow

SLOW_SUITES = [
    "suites/cluster_plugin_rollout_sync_split_brain.robot",
    "suites/failure_modes.robot",
]


def wait_for(env: Env, what: str, timeout_s: float = 90.0) -> list[tuple[int, str]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [p for p in marked_processes(env.marker) if what in p[1]]
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no {what} process of this test within {timeout_s} s")


def finish(process: subprocess.Popen[str], timeout_s: float = 120) -> str:
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        raise AssertionError(f"tribes-qa did not stop:\n{output[-3000:]}") from None
    return output


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupting_a_pabot_run_leaves_nothing_behind(env: Env, signum: int) -> None:
    out = env.tmp / "results"
    process = env.start(
        "run", "--parallel", "2", "--target", str(env.target), "--outputdir", str(out),
        *SLOW_SUITES,
    )  # fmt: skip
    wait_for(env, "tribes_sim.host")  # nodes are up in at least one fleet
    commands = " | ".join(cmd for _, cmd in marked_processes(env.marker))
    for kind in (
        "pabot.pabot",
        "pabot.pabotlib",
        "bin/robot -A",
        "tribes_sim.legion",
        "tribes_sim.host",
    ):
        assert kind in commands, f"no {kind} process among: {commands}"
    process.send_signal(signum)
    output = finish(process)
    assert process.returncode != 0, output[-2000:]
    # A SIGKILLed process takes a moment to go: bounded wait, never a fixed sleep.
    left = wait_until_gone(env.marker)
    assert left == [], "left behind:\n" + "\n".join(cmd for _, cmd in left)
    assert env.fleet_dirs() == [], "fleet directories left behind"
    # pabot still merges a report; the interrupted tests are marked failed.
    result = load(out / "output.xml")
    assert result.statistics.total.failed >= 1


def test_a_suite_killed_by_processtimeout_is_reported_failed(env: Env) -> None:
    suites = env.tmp / "suites"
    suites.mkdir()
    (suites / "a_stuck.robot").write_text(
        "*** Settings ***\n"
        f"Resource          {REPO}/resources/tribes.resource\n"
        "Suite Setup       Start The Target For This Suite\n"
        "Suite Teardown    Clean Up The Target\n"
        "\n*** Test Cases ***\n"
        "A Step That Never Ends\n"
        "    [Tags]    scenario:stuck\n"
        "    A Cluster Initialised On Hetzner\n"
        "    Sleep    120s\n"
    )
    # Neighbours enough that the run goes on for several seconds after the stuck suite is
    # killed (time to see its fleet gone on a loaded machine), while each neighbour stays
    # under the process timeout.
    for name in ("b_neighbour", "c_neighbour", "d_neighbour", "e_neighbour"):
        (suites / f"{name}.robot").write_text(
            f"*** Test Cases ***\n{name} Keeps Running\n    [Tags]    scenario:neighbour\n"
            "    Sleep    5s\n"
        )
    out = env.tmp / "results"
    process = env.start(
        "run", "--parallel", "2", "--process-timeout", "15", "--target", str(env.target),
        "--outputdir", str(out), str(suites),
    )  # fmt: skip
    wait_for(env, "tribes_sim.host")
    # After the kill, while the neighbour still runs, the stuck suite's fleet is gone: its
    # robot process stopped it, or the runner reaped it once that process had died.
    deadline = time.monotonic() + 60
    gone_while_running = False
    while time.monotonic() < deadline and process.poll() is None:
        commands = [cmd for _, cmd in marked_processes(env.marker)]
        if not any("tribes_sim." in cmd for cmd in commands) and any(
            "bin/robot -A" in cmd for cmd in commands
        ):
            gone_while_running = True
            break
        time.sleep(0.2)
    output = finish(process)
    assert gone_while_running, output[-3000:]
    assert process.returncode == 1, output[-3000:]
    result = load(out / "output.xml")
    tests = {test.name: test for test in result.suite.all_tests}
    stuck = tests["A Step That Never Ends"]
    assert stuck.status == "FAIL"
    assert "processtimeout" in stuck.message
    for name in ("b_neighbour", "c_neighbour", "d_neighbour", "e_neighbour"):
        assert tests[f"{name} Keeps Running"].status == "PASS"
    assert (out / "report.html").is_file() and (out / "fleet-matrix.html").is_file()
    assert wait_until_gone(env.marker) == []
    assert env.fleet_dirs() == []
    assert Path(out / "log.html").read_text().count("processtimeout") >= 1
