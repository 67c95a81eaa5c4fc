"""``results/run.json``: what it takes to run a run again (``tribes-qa run --replay``).

Every ``tribes-qa run`` picks a seed (or takes ``--seed N``) and hands it to the simulator as
``TRIBES_SIM_SEED`` (every non-secret random choice of the simulator comes from it: port offsets,
ids; never keys). When the run ends it writes ``<outputdir>/run.json``:

``{"format": 1, "seed", "argv" (tribes-qa's own options, as a replay passes them), "options"
(the same as a mapping), "command" (the exact robot/pabot argv), "commit" + "dirty" (git),
"variables_file" {path, sha256}, "started", "finished", "exit_code", "versions" {python,
robot, pabot}, "outcomes" {test full name: PASS|FAIL|SKIP}}``

A replay refuses to run against another commit or a changed variables file (the same seed
would not mean the same run) unless forced, and compares its outcomes with the recorded ones.
The library's own ids (fleet directories, shared-fleet handles, plugin run ids) stay random:
they must differ between concurrent processes and runs on one machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import platform
import secrets
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from tribesqa.running.runner import REPO, RunError

RUN_FILE = "run.json"
SEED_ENV = "TRIBES_SIM_SEED"  # read by the simulator (tribes_sim.seeded); no code is shared
FORMAT = 1
# tribes-qa run's options as (option, default): the order a recorded argv lists them in.
OPTIONS: tuple[tuple[str, Any], ...] = (
    ("--parallel", 0),
    ("--target", None),
    ("--outputdir", "results"),
    ("--gate-per-node", False),
    ("--process-timeout", None),
    ("--shard", None),
    ("--pabotlib-port", None),
    ("--pabotlib-attach", None),
    ("--rerun-failed", False),
    ("--allow-destructive", False),
)


class RunRecordError(Exception):
    """run.json cannot be read or does not describe a run (exit 3 unreadable, 1 invalid)."""

    def __init__(self, message: str, unreadable: bool = False) -> None:
        super().__init__(message)
        self.unreadable = unreadable


def pick_seed() -> int:
    return secrets.randbelow(2**31)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def options_argv(options: dict[str, Any], robot_args: list[str]) -> list[str]:
    """``tribes-qa run`` arguments for the options (defaults left out), robot's after ``--``."""
    argv: list[str] = []
    for name, default in OPTIONS:
        value = options.get(name, default)
        if value is None or value == default:
            continue
        argv += [name] if value is True else [name, str(value)]
    return [*argv, "--", *robot_args] if robot_args else argv


def git_commit(repo: Path = REPO) -> tuple[str | None, bool]:
    """HEAD of the checkout the sources come from, and whether tracked files changed."""
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            check=False,
            capture_output=True,
            text=True,
            timeout=10,
        )
        status = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            check=False,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None, False
    if head.returncode != 0:
        return None, False
    return head.stdout.strip(), bool(status.stdout.strip())


def file_digest(path: Path) -> str | None:
    with contextlib.suppress(OSError):
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return None


def _version(package: str) -> str | None:
    with contextlib.suppress(metadata.PackageNotFoundError):
        return metadata.version(package)
    return None


def outcomes(output_xml: Path) -> dict[str, str]:
    """Test full name -> status of an output.xml (``{}`` when there is none or it is broken)."""
    if not output_xml.is_file():
        return {}
    from robot.api import ExecutionResult, ResultVisitor
    from robot.errors import DataError

    found: dict[str, str] = {}

    class Collect(ResultVisitor):
        def visit_test(self, test: Any) -> None:
            found[test.full_name] = test.status

    try:
        ExecutionResult(str(output_xml)).visit(Collect())
    except DataError:
        return {}
    return found


@dataclass
class RunRecord:
    seed: int
    options: dict[str, Any]
    robot_args: list[str]
    command: list[str]
    target: Path
    started: str

    def document(self, exit_code: int, output_xml: Path | None) -> dict[str, Any]:
        commit, dirty = git_commit()
        return {
            "format": FORMAT,
            "seed": self.seed,
            "argv": options_argv(self.options, self.robot_args),
            "options": self.options,
            "robot_args": self.robot_args,
            "command": self.command,
            "commit": commit,
            "dirty": dirty,
            "variables_file": {"path": str(self.target), "sha256": file_digest(self.target)},
            "started": self.started,
            "finished": now(),
            "exit_code": exit_code,
            "versions": {
                "python": platform.python_version(),
                "robot": _version("robotframework"),
                "pabot": _version("robotframework-pabot"),
                "tribes-acceptance": _version("tribes-acceptance"),
            },
            "outcomes": outcomes(output_xml) if output_xml else {},
        }

    def write(self, outputdir: Path, exit_code: int, output_xml: Path | None) -> Path:
        path = outputdir / RUN_FILE
        path.write_text(json.dumps(self.document(exit_code, output_xml), indent=1) + "\n")
        return path


def load(path: Path) -> dict[str, Any]:
    """A run.json, checked for what a replay needs; the error names the file and the field."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise RunRecordError(f"{path}: cannot read: {error.strerror}", unreadable=True) from None
    except ValueError as error:
        raise RunRecordError(f"{path}: not JSON: {error}") from None
    if not isinstance(data, dict):
        raise RunRecordError(f"{path}: not a run record (a JSON object)")
    wanted = {"seed": int, "options": dict, "robot_args": list}
    for name, kind in wanted.items():
        if not isinstance(data.get(name), kind) or isinstance(data.get(name), bool):
            raise RunRecordError(f"{path}: field '{name}' missing or not {kind.__name__}")
    return data


def replay_problems(record: dict[str, Any], source: Path) -> tuple[list[str], list[str]]:
    """Why replaying ``record`` here would not be the same run: (refusals, warnings)."""
    refusals, warnings = [], []
    commit, dirty = git_commit()
    recorded = record.get("commit")
    if recorded and commit and recorded != commit:
        refusals.append(
            f"{source} was recorded at commit {recorded[:12]}, this checkout is at {commit[:12]}: "
            f"check out {recorded[:12]} first"
        )
    elif not (recorded and commit):
        warnings.append("no git commit to compare (not a git checkout): the code may differ")
    if record.get("dirty") or dirty:
        which = "the recorded run" if record.get("dirty") else "this checkout"
        warnings.append(f"{which} had uncommitted changes to tracked files: the code may differ")
    variables = record.get("variables_file") or {}
    path = variables.get("path")
    if path and variables.get("sha256") and file_digest(Path(path)) != variables["sha256"]:
        refusals.append(f"variables file {path} changed (or is gone) since the recorded run")
    return refusals, warnings


def replay_options(
    record: dict[str, Any], outputdir: Path | None
) -> tuple[dict[str, Any], list[str]]:
    """The recorded options (with ``outputdir`` instead, when given) and robot arguments."""
    options = dict(record["options"])
    if outputdir is not None:
        options["--outputdir"] = str(outputdir)
    unknown = sorted(set(options) - {name for name, _ in OPTIONS})
    if unknown:
        raise RunError(f"run record has unknown options {', '.join(unknown)}")
    return options, [str(arg) for arg in record["robot_args"]]


def compare_outcomes(recorded: dict[str, str], replayed: dict[str, str]) -> list[str]:
    """One line per test whose outcome differs between the recorded run and the replay."""
    lines = []
    for name in sorted(set(recorded) | set(replayed)):
        before, after = recorded.get(name, "not run"), replayed.get(name, "not run")
        if before != after:
            lines.append(f"{name}: {before} in the recorded run, {after} in the replay")
    return lines
