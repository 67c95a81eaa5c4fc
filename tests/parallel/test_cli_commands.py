"""The installed ``tribes-qa`` as a subprocess, with a PATH that does not hold the venv:
``config validate`` exit codes 0/1/2/3 (the README table), ``matrix`` on a missing file, and
``make run`` going through the same command."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.parallel.conftest import REPO, TRIBES_QA, Env, path_without_venv

README = (REPO / "README.md").read_text()


def validate(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    return env.tribes_qa("config", "validate", *args, timeout_s=60)


@pytest.mark.req("CLI-5")
def test_runs_without_the_venv_on_path(env: Env) -> None:
    assert str(REPO / ".venv" / "bin") not in env.environ()["PATH"].split(":")
    done = env.tribes_qa("--version", timeout_s=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("tribes-qa ")


@pytest.mark.req("CLI-1")
def test_valid_file_exits_0(env: Env) -> None:
    done = validate(env, "variables/sim.yaml")
    assert done.returncode == 0, done.stderr
    assert "valid: target simulator (sim); roster of 3 node(s)" in done.stdout


@pytest.mark.req("CLI-2")
def test_invalid_content_exits_1_naming_every_problem_by_field_path(env: Env) -> None:
    bad = env.tmp / "bad.yaml"
    bad.write_text(
        "TARGET:\n  name: x\n  kind: bogus\n"
        "ROSTER:\n  - {node: a, role: r}\n  - {node: b, role: ''}\n"
        "ITERATIONS: 0\n"
    )
    done = validate(env, str(bad))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "invalid (3 problem(s))" in done.stderr
    for path in ("TARGET.kind", "ROSTER[1].role", "ITERATIONS"):
        assert re.search(rf"^  {re.escape(path)}: ", done.stderr, re.M), done.stderr


@pytest.mark.req("CLI-2")
def test_yaml_syntax_error_exits_1_with_its_position(env: Env) -> None:
    bad = env.tmp / "broken.yaml"
    bad.write_text("TARGET: [unclosed\n")
    done = validate(env, str(bad))
    assert done.returncode == 1, done.stderr
    assert "line " in done.stderr


@pytest.mark.req("CLI-3")
@pytest.mark.parametrize("args", [(), ("--no-such-option", "variables/sim.yaml")])
def test_usage_error_exits_2(env: Env, args: tuple[str, ...]) -> None:
    done = validate(env, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Usage:" in done.stderr


@pytest.mark.req("CLI-4")
def test_missing_file_exits_3(env: Env) -> None:
    done = validate(env, str(env.tmp / "nope.yaml"))
    assert done.returncode == 3, done.stderr
    assert "no such file" in done.stderr


@pytest.mark.req("CLI-4")
@pytest.mark.parametrize("kind", ["directory", "invalid-utf8"])
def test_unreadable_file_exits_3(env: Env, kind: str) -> None:
    # Tests run as root, so chmod 000 would still be readable: a directory and bytes that are
    # not UTF-8 are the unreadable cases.
    if kind == "directory":
        path = env.tmp / "a-directory.yaml"
        path.mkdir()
    else:
        path = env.tmp / "latin1.yaml"
        path.write_bytes(b"\xff\xfeTARGET: {}\n")
    done = validate(env, str(path))
    assert done.returncode == 3, done.stdout + done.stderr
    assert "cannot read" in done.stderr


@pytest.mark.req("CLI-5")
def test_readme_table_matches_the_exit_codes() -> None:
    table = dict(re.findall(r"^\| (\d) \| (.+?) \|$", README, re.M))
    assert set(table) == {"0", "1", "2", "3"}
    assert "valid" in table["0"] and "field path" in table["1"]
    assert "usage" in table["2"] and "missing or unreadable" in table["3"]


@pytest.mark.req("CLI-4")
def test_matrix_command_on_a_missing_file_exits_3(env: Env) -> None:
    done = env.tribes_qa("matrix", str(env.tmp / "output.xml"), timeout_s=60)
    assert done.returncode == 3, done.stderr


def test_make_run_uses_the_installed_command() -> None:
    dry = subprocess.run(
        ["make", "-n", "run"],
        cwd=REPO,
        env={"PATH": path_without_venv()},
        capture_output=True,
        text=True,
        check=False,
    )
    assert dry.returncode == 0, dry.stderr
    assert f"{Path('.venv/bin/tribes-qa')} run" in dry.stdout
    assert TRIBES_QA.is_file()
