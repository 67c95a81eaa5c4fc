"""``tribes-qa run --rerun-failed``: the failed suites of the last output.xml run again, whole,
and ``rebot --merge`` folds them into output.xml, log.html and report.html.

Two tiny suites in a temporary directory stand for the matrix: ``Runbook`` is a suite whose
second test reads a suite variable its first test sets (as the scenario suites do), and fails
until a flag file exists; ``Steady`` always passes. Rerunning only the failed *test* would
fail on the missing variable; rerunning the failed *suite* passes once the flag is there.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from robot.api import ExecutionResult

from tests.parallel.conftest import Env
from tribesqa.running.rerun import PREVIOUS_OUTPUT, RERUN_OUTPUT, RerunPlan
from tribesqa.running.runner import RunError, RunRequest, build_command, check_request

RUNBOOK = """*** Settings ***
Library    OperatingSystem

*** Test Cases ***
Step One Sets The Runbook Variable
    VAR    ${STEP}    one    scope=SUITE

Step Two Needs Step One And The Flag
    Should Be Equal    ${STEP}    one
    File Should Exist    ${FLAG}
"""

STEADY = """*** Test Cases ***
Always Passes
    Log    steady
"""

MERGED_NOTE = "Test has been re-executed and results merged."


def _suites(tmp: Path) -> Path:
    directory = tmp / "rerun_suites"
    directory.mkdir()
    (directory / "runbook.robot").write_text(RUNBOOK)
    (directory / "steady.robot").write_text(STEADY)
    return directory


def _statuses(output: Path) -> dict[str, tuple[str, str]]:
    suite = ExecutionResult(str(output)).suite
    return {test.full_name: (test.status, test.message) for test in suite.all_tests}


@pytest.mark.parametrize("parallel", [[], ["--parallel", "2"]], ids=["robot", "pabot"])
def test_rerun_failed_reruns_the_failed_suite_whole_and_merges(
    env: Env, parallel: list[str]
) -> None:
    suites = _suites(env.tmp)
    flag = env.tmp / "flag"
    results = env.tmp / "results"
    common = ["--target", str(env.target), "--outputdir", str(results), *parallel]
    robot_args = ["--", "--variable", f"FLAG:{flag}", str(suites)]

    first = env.tribes_qa("run", *common, *robot_args)
    assert first.returncode == 1, first.stderr[-2000:]
    before = _statuses(results / "output.xml")
    runbook_two = "Rerun Suites.Runbook.Step Two Needs Step One And The Flag"
    assert before[runbook_two][0] == "FAIL"

    flag.write_text("the cause is fixed")
    rerun = env.tribes_qa("run", *common, "--rerun-failed", *robot_args)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert (
        f"tribes-qa run: rerunning 1 failed suite(s) of {results / PREVIOUS_OUTPUT}: "
        "Rerun Suites.Runbook"
    ) in rerun.stderr
    assert "robot.rebot --merge" in rerun.stderr

    # The rerun ran the failed suite, whole (step one too), and nothing else.
    rerun_only = _statuses(results / RERUN_OUTPUT)
    assert set(rerun_only) == {
        "Rerun Suites.Runbook.Step One Sets The Runbook Variable",
        runbook_two,
    }
    assert {status for status, _ in rerun_only.values()} == {"PASS"}
    # The first run's output is kept aside, unchanged.
    assert _statuses(results / PREVIOUS_OUTPUT) == before
    # The merge: rerun tests replace their first result and say so; the others are kept as run.
    merged = _statuses(results / "output.xml")
    assert set(merged) == set(before)
    assert merged[runbook_two][0] == "PASS"
    assert MERGED_NOTE in merged[runbook_two][1]
    assert re.search(r"Old status:</span> <span class=\"fail\">FAIL", merged[runbook_two][1])
    assert (
        merged["Rerun Suites.Steady.Always Passes"] == before["Rerun Suites.Steady.Always Passes"]
    )
    for page in ("log.html", "report.html"):
        assert (results / page).stat().st_mtime >= (results / RERUN_OUTPUT).stat().st_mtime

    again = env.tribes_qa("run", *common, "--rerun-failed", *robot_args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"nothing failed in {results / 'output.xml'}: nothing to rerun" in again.stderr


def test_rerun_failed_still_failing_exits_with_the_reruns_verdict(env: Env) -> None:
    suites = _suites(env.tmp)
    results = env.tmp / "results"
    args = ["--target", str(env.target), "--outputdir", str(results)]
    robot_args = ["--", "--variable", f"FLAG:{env.tmp / 'never'}", str(suites)]
    assert env.tribes_qa("run", *args, *robot_args).returncode == 1
    rerun = env.tribes_qa("run", *args, "--rerun-failed", *robot_args)
    assert rerun.returncode == 1, rerun.stderr[-2000:]
    merged = _statuses(results / "output.xml")
    message = merged["Rerun Suites.Runbook.Step Two Needs Step One And The Flag"][1]
    assert merged["Rerun Suites.Runbook.Step Two Needs Step One And The Flag"][0] == "FAIL"
    assert MERGED_NOTE in message


def test_rerun_failed_without_a_previous_output_is_a_usage_error(env: Env) -> None:
    results = env.tmp / "empty-results"
    result = env.tribes_qa(
        "run", "--target", str(env.target), "--outputdir", str(results), "--rerun-failed"
    )
    assert result.returncode == 2, result.stderr
    assert f"--rerun-failed: no {results / 'output.xml'} to rerun from" in result.stderr


# ---------------------------------------------------------------------------- the command lines


def test_plain_robot_selects_with_rerunfailedsuites_and_writes_its_own_output() -> None:
    plan = RerunPlan(Path("results"), ["Suites.Cluster Lifecycle"])
    command = build_command(RunRequest(target=Path("variables/sim.yaml")), rerun=plan)
    assert command[:3] == [sys.executable, "-m", "robot"]
    at = command.index("--rerunfailedsuites")
    assert command[at + 1] == str(Path("results") / PREVIOUS_OUTPUT)
    assert command[command.index("--output") + 1] == RERUN_OUTPUT
    assert command[command.index("--log") + 1] == "NONE"
    assert command[command.index("--report") + 1] == "NONE"
    assert "--suite" not in command


def test_pabot_gets_each_failed_suite_as_a_suite_option() -> None:
    plan = RerunPlan(Path("results"), ["Suites.Cluster Lifecycle", "Suites.Failure Modes"])
    command = build_command(RunRequest(target=Path("variables/sim.yaml"), parallel=2), rerun=plan)
    assert command[1:3] == ["-m", "pabot.pabot"]
    suites = [command[i + 1] for i, word in enumerate(command) if word == "--suite"]
    assert suites == plan.suites
    assert "--rerunfailedsuites" not in command
    merge = plan.merge_command()
    assert merge[1:4] == ["-m", "robot.rebot", "--merge"]
    assert merge[-2:] == [str(plan.previous), str(plan.rerun_output)]


def test_rerun_with_shards_is_refused() -> None:
    request = RunRequest(target=Path("x"), parallel=2, shard="1/2", rerun_failed=True)
    with pytest.raises(RunError, match="--rerun-failed reruns one output directory"):
        check_request(request)
