"""Reproducible runs: ``tribes-qa run`` records its seed in run.json; ``--replay`` runs it again.

The end-to-end test runs a small suite against the simulator (a node provisioned, its admin URL
logged; one test failing on purpose), replays it, and compares: the same seed, the same test
outcomes, the same seeded admin port.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.parallel.conftest import Env, load
from tribesqa.running.cli import app
from tribesqa.running.run_record import (
    RunRecordError,
    compare_outcomes,
    git_commit,
    options_argv,
    replay_options,
    replay_problems,
)
from tribesqa.running.run_record import load as load_record

SUITE = """*** Settings ***
Library           tribesqa.library.TribesLibrary
Suite Setup       Open Target
Suite Teardown    Close Target

*** Test Cases ***
A Provisioned Node Listens Where The Seed Says
    ${init}=    Provision Init Node    hetzner
    Log    admin at ${init.admin_url}

A Test That Fails On Purpose
    Fail    failing on purpose
"""


def record(tmp: Path, **fields: Any) -> Path:
    variables = tmp / "vars.yaml"
    variables.write_text("TARGET: {}\n")
    commit, _ = git_commit()
    data = {
        "seed": 5,
        "options": {"--outputdir": str(tmp / "out"), "--target": str(variables)},
        "robot_args": ["suite.robot"],
        "commit": commit,
        "dirty": False,
        "variables_file": {"path": str(variables), "sha256": None},
        **fields,
    }
    path = tmp / "run.json"
    path.write_text(json.dumps(data))
    return path


def test_the_recorded_argv_lists_given_options_and_robot_arguments_after_a_double_dash() -> None:
    options = {"--parallel": 2, "--target": None, "--gate-per-node": True, "--outputdir": "results"}
    assert options_argv(options, ["--include", "cluster"]) == [
        "--parallel", "2", "--gate-per-node", "--", "--include", "cluster",
    ]  # fmt: skip


def test_a_broken_record_names_the_file_and_the_field(tmp_path: Path) -> None:
    with pytest.raises(RunRecordError, match="cannot read") as missing:
        load_record(tmp_path / "nope.json")
    assert missing.value.unreadable
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(RunRecordError, match=r"bad.json: not JSON"):
        load_record(tmp_path / "bad.json")
    (tmp_path / "noseed.json").write_text(
        json.dumps({"seed": "5", "options": {}, "robot_args": []})
    )
    with pytest.raises(RunRecordError, match=r"noseed.json: field 'seed' missing or not int"):
        load_record(tmp_path / "noseed.json")


def test_a_replay_is_refused_on_another_commit_or_a_changed_variables_file(tmp_path: Path) -> None:
    path = record(tmp_path, commit="0" * 40)
    refusals, _ = replay_problems(load_record(path), path)
    assert refusals == [
        f"{path} was recorded at commit 000000000000, this checkout is at "
        f"{git_commit()[0][:12]}: check out 000000000000 first"
    ]
    data = load_record(record(tmp_path))
    data["variables_file"]["sha256"] = "f" * 64
    refusals, _ = replay_problems(data, path)
    assert refusals == [
        f"variables file {tmp_path / 'vars.yaml'} changed (or is gone) since the recorded run"
    ]
    options, robot_args = replay_options(data, tmp_path / "elsewhere")
    assert options["--outputdir"] == str(tmp_path / "elsewhere") and robot_args == ["suite.robot"]


def test_outcome_differences_are_named_per_test() -> None:
    assert compare_outcomes({"S.A": "PASS", "S.B": "FAIL"}, {"S.A": "PASS", "S.C": "PASS"}) == [
        "S.B: FAIL in the recorded run, not run in the replay",
        "S.C: not run in the recorded run, PASS in the replay",
    ]


def test_the_cli_refuses_replays_it_cannot_make_the_same(tmp_path: Path) -> None:
    runner = CliRunner()
    other_commit = record(tmp_path, commit="0" * 40)
    result = runner.invoke(app, ["run", "--replay", str(other_commit)])
    assert result.exit_code == 2
    assert "check out 000000000000 first" in result.output
    assert "(--force replays anyway)" in result.output
    result = runner.invoke(app, ["run", "--replay", str(other_commit), "--parallel", "2"])
    assert result.exit_code == 2 and "not with --parallel" in result.output
    result = runner.invoke(app, ["run", "--replay", str(tmp_path / "missing.json")])
    assert result.exit_code == 3 and "missing.json: cannot read" in result.output
    result = runner.invoke(app, ["run", "--force"])
    assert result.exit_code == 2 and "--force goes with --replay only" in result.output


def admin_urls(output_xml: Path) -> list[str]:
    found: list[str] = []
    for test in load(output_xml).suite.all_tests:
        for keyword in test.body:
            found += [m.message for m in getattr(keyword, "body", []) if m.type == "MESSAGE"]
    return [text for text in found if text.startswith("admin at ")]


def test_a_replayed_run_has_the_seed_and_outcomes_of_the_recorded_one(env: Env) -> None:
    suite = env.tmp / "seeded.robot"
    suite.write_text(SUITE)
    first_dir, replay_dir = env.tmp / "first", env.tmp / "replay"
    first = env.tribes_qa(
        "run", "--target", str(env.target), "--outputdir", str(first_dir), "--seed", "4242",
        "--", str(suite),
    )  # fmt: skip
    assert first.returncode == 1, first.stderr[-2000:]
    recorded = json.loads((first_dir / "run.json").read_text())
    assert recorded["seed"] == 4242
    assert recorded["exit_code"] == 1
    assert recorded["commit"] == git_commit()[0]
    assert recorded["outcomes"] == {
        "Seeded.A Provisioned Node Listens Where The Seed Says": "PASS",
        "Seeded.A Test That Fails On Purpose": "FAIL",
    }
    assert recorded["command"][1:3] == ["-m", "robot"]
    assert "--seed 4242" not in " ".join(recorded["argv"])  # the seed is a field of its own
    replay = env.tribes_qa(
        "run", "--replay", str(first_dir / "run.json"), "--outputdir", str(replay_dir)
    )
    assert replay.returncode == 1, replay.stderr[-2000:]
    assert "the same outcomes as the recorded run (2 test(s))" in replay.stderr
    replayed = json.loads((replay_dir / "run.json").read_text())
    assert replayed["seed"] == 4242
    assert replayed["outcomes"] == recorded["outcomes"]
    assert replayed["options"] == {**recorded["options"], "--outputdir": str(replay_dir)}
    assert replayed["robot_args"] == recorded["robot_args"] == [str(suite)]
    [before] = admin_urls(first_dir / "output.xml")
    [after] = admin_urls(replay_dir / "output.xml")
    # The same seeded wish; a port some other process holds at that moment moves on to the next.
    ports = [
        int(re.fullmatch(r"admin at http://127\.0\.0\.1:(1[2-7]\d{3})", u)[1])
        for u in (before, after)
    ]
    assert abs(ports[0] - ports[1]) <= 16, (before, after)


def test_the_simulator_sees_the_run_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    from tribesqa.running.runner import child_environment

    monkeypatch.delenv("TRIBES_SIM_SEED", raising=False)
    assert child_environment("run-1", 77)["TRIBES_SIM_SEED"] == "77"
    assert "TRIBES_SIM_SEED" not in child_environment("run-1", None)
