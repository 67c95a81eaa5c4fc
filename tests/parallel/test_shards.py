"""Beyond one machine, on one machine: two shards (--shard 1/2, 2/2) of the same suites share
one PabotLib server (shard 1 hosts it, shard 2 attaches), and rebot merges their outputs.

The suites are the two fastest scenario suites plus two probes around them (alphabetically first
and last, so each shard gets one): the first shard's probe publishes a value through PabotLib
and waits for the second shard's probe to answer it, which only works if both really talk to
the same server."""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
import time

import pytest

from tests.parallel.conftest import FAST_SUITES, REPO, Env, load, marked_processes

pytestmark = pytest.mark.slow

PUBLISH = """*** Settings ***
Library    pabot.PabotLib

*** Test Cases ***
Shard One Publishes And Hears The Answer
    [Tags]    scenario:shard_probe
    Set Parallel Value For Key    shard-probe    ${TOKEN}
    Wait Until Keyword Succeeds    90s    0.2s    The Answer Is    seen ${TOKEN}

*** Keywords ***
The Answer Is
    [Arguments]    ${expected}
    ${answer}=    Get Parallel Value For Key    shard-probe-answer
    Should Be Equal    ${answer}    ${expected}
"""

ANSWER = """*** Settings ***
Library    pabot.PabotLib

*** Test Cases ***
Shard Two Reads The Value And Answers
    [Tags]    scenario:shard_probe
    Wait Until Keyword Succeeds    90s    0.2s    The Value Is    ${TOKEN}
    Set Parallel Value For Key    shard-probe-answer    seen ${TOKEN}

*** Keywords ***
The Value Is
    [Arguments]    ${expected}
    ${value}=    Get Parallel Value For Key    shard-probe
    Should Be Equal    ${value}    ${expected}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_two_shards_share_one_pabotlib_and_merge_with_rebot(env: Env) -> None:
    suites = env.tmp / "suites"
    suites.mkdir()
    (env.tmp / "resources").symlink_to(REPO / "resources")
    for suite in FAST_SUITES:
        (suites / suite.split("/")[-1]).symlink_to(REPO / suite)
    (suites / "a_probe_publish.robot").write_text(PUBLISH)
    (suites / "z_probe_answer.robot").write_text(ANSWER)
    port = free_port()
    token = secrets.token_hex(4)
    common = ["--parallel", "2", "--target", str(env.target)]
    robot_args = ["--", "--variable", f"TOKEN:{token}", str(suites)]
    first = env.start(
        "run", *common, "--shard", "1/2", "--pabotlib-port", str(port),
        "--outputdir", str(env.tmp / "shard1"), *robot_args,
    )  # fmt: skip
    second = env.start(
        "run", *common, "--shard", "2/2", "--pabotlib-attach", f"127.0.0.1:{port}",
        "--outputdir", str(env.tmp / "shard2"), *robot_args,
    )  # fmt: skip
    outputs = {}
    for name, process in (("shard 2", second), ("shard 1", first)):
        try:
            outputs[name], _ = process.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            first.kill()
            second.kill()
            raise
        assert process.returncode == 0, f"{name}:\n{outputs[name][-4000:]}"
    shard1 = load(env.tmp / "shard1" / "output.xml")
    shard2 = load(env.tmp / "shard2" / "output.xml")
    names1 = {s.name for s in shard1.suite.suites}
    names2 = {s.name for s in shard2.suite.suites}
    assert names1 == {"A Probe Publish", "Single Node Plugin Rollout Rollback"}, names1
    assert names2 == {"Trust Expansion Replay", "Z Probe Answer"}, names2

    merged = env.tmp / "merged"
    rebot = subprocess.run(
        [sys.executable, "-m", "robot.rebot", "--outputdir", str(merged), "--output",
         "output.xml", "--name", "Suites", str(env.tmp / "shard1" / "output.xml"),
         str(env.tmp / "shard2" / "output.xml")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert rebot.returncode == 0, rebot.stdout + rebot.stderr
    result = load(merged / "output.xml")
    assert result.statistics.total.passed == 13 and result.statistics.total.failed == 0
    done = env.tribes_qa("matrix", str(merged / "output.xml"), timeout_s=60)
    assert done.returncode == 0, done.stderr
    assert "shard_probe" in (merged / "fleet-matrix.html").read_text()
    deadline = time.monotonic() + 10
    while marked_processes(env.marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert marked_processes(env.marker) == []
    assert env.fleet_dirs() == []
