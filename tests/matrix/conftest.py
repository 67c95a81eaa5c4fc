"""Helpers to run the lifecycle matrix with robot in a subprocess and read its output.xml."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from robot.api import ExecutionResult

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "results"


@dataclass
class SuiteRun:
    returncode: int
    outputdir: Path
    failures: dict[str, str]  # test full_name -> message
    tags: dict[str, list[str]]  # test full_name -> its tags (suite-level tags included)
    passed: int
    failed: int
    skipped: int


def run_matrix(
    outputdir: Path,
    *,
    target: str = "variables/sim.yaml",
    suites: list[str] | None = None,
    faults: str = "",
    extra: list[str] | None = None,
    env: dict[str, str] | None = None,
    timeout_s: float = 900,
) -> SuiteRun:
    """Run robot on suites/ (or the named suites) in a subprocess, like `tribes-qa run` does."""
    env = {**os.environ, **(env or {})}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.pop("TRIBES_SIM_FAULTS", None)
    if faults:
        env["TRIBES_SIM_FAULTS"] = faults
    selection: list[str] = []
    for suite in suites or []:
        selection += ["--suite", suite]
    command = [
        sys.executable,
        "-m",
        "robot",
        "--variablefile",
        target,
        "--outputdir",
        str(outputdir),
        "--consolewidth",
        "100",
        *selection,
        *(extra or []),
        "suites",
    ]
    completed = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    output = outputdir / "output.xml"
    if not output.exists():
        raise AssertionError(
            f"robot wrote no output.xml (rc {completed.returncode}):\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
        )
    result = ExecutionResult(str(output))
    failures = {
        test.full_name: test.message for test in result.suite.all_tests if test.status == "FAIL"
    }
    tags = {test.full_name: list(test.tags) for test in result.suite.all_tests}
    stats = result.statistics.total
    return SuiteRun(
        completed.returncode, outputdir, failures, tags, stats.passed, stats.failed, stats.skipped
    )
