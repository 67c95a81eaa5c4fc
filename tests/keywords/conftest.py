"""Keyword integration tests: run a Robot suite in-process against a target, return its result.

``run_robot(suite_text, variablefile=..., name=..., **robot_options)`` writes the suite to
``tmp_path``, runs it with ``robot.run`` (output under ``tmp_path/<name>-out``) and returns the
parsed ``ExecutionResult``; ``result.output_dir`` is where output.xml, log.html and report.html
are. Every fleet the suite opens is stopped by its ``Close Target``.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import robot
from robot.api import ExecutionResult

ROOT = Path(__file__).resolve().parents[2]
SIM_VARIABLES = ROOT / "variables" / "sim.yaml"
SIM_AS_REAL_VARIABLES = ROOT / "variables" / "sim-as-real.yaml"
VENV_BIN = ROOT / ".venv" / "bin"

RunRobot = Callable[..., Any]


def put_venv_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sim-as-real target runs its Legion CLI and SSH command templates by name."""
    monkeypatch.setenv("PATH", f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")


@pytest.fixture
def run_robot(tmp_path: Path) -> RunRobot:
    def run(
        suite: str,
        *,
        variablefile: str | Path = SIM_VARIABLES,
        name: str = "suite",
        **options: Any,
    ) -> Any:
        suite_file = tmp_path / f"{name}.robot"
        suite_file.write_text(suite, encoding="utf-8")
        output_dir = tmp_path / f"{name}-out"
        console = io.StringIO()
        rc = robot.run(
            str(suite_file),
            variablefile=[str(variablefile)],
            outputdir=str(output_dir),
            stdout=console,
            stderr=console,
            **options,
        )
        result = ExecutionResult(str(output_dir / "output.xml"))
        result.rc = rc
        result.console = console.getvalue()
        result.output_dir = output_dir
        return result

    return run


def html_messages(item: Any) -> list[str]:
    """Every HTML message logged anywhere under ``item`` (a test or keyword)."""
    found: list[str] = []
    for child in getattr(item, "body", ()):
        if getattr(child, "type", None) == "MESSAGE":
            if child.html:
                found.append(child.message)
        else:
            found += html_messages(child)
    for extra in ("setup", "teardown"):
        child = getattr(item, extra, None)
        if child:
            found += html_messages(child)
    return found


def wait_failure_report(result: Any, test: Any, node: str) -> str:
    """The one failure report a wait logged under ``test``, checked for the diagnostics every
    wait gives: the message, the per-node table, the mismatches (expected vs actual) and a
    link to ``node``'s file of the failure snapshot, which exists."""
    reports = [m for m in html_messages(test) if 'class="tribes-failure"' in m]
    assert len(reports) == 1, reports
    report = reports[0]
    assert 'class="tribes-matrix"' in report, report
    assert 'class="tribes-mismatches"' in report, report
    links = re.findall(r'href="([^"]+)"', report)
    linked = [href for href in links if href.endswith(f"/failure/{node}.json")]
    assert linked, links
    assert all((result.output_dir / href).is_file() for href in linked), linked
    return report
