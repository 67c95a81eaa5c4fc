"""Helpers for the parallel-run tests: the installed ``tribes-qa`` run as a subprocess with a
PATH that does not hold the venv, a private simulated target, and a marker to find every process
a test started (and prove none is left).

Each test's child processes carry ``TRIBES_QA_TEST_MARKER=<token>`` in their environment
(inherited by pabot, robot, PabotLib, Legion and node hosts); ``marked_processes`` scans /proc
for it in the environment or the command line. The autouse ``no_leftovers`` fixture fails a test
that leaves one, after killing it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from robot.api import ExecutionResult, ResultVisitor

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
TRIBES_QA = VENV_BIN / "tribes-qa"
MARKER_VAR = "TRIBES_QA_TEST_MARKER"
FAST_SUITES = [
    "suites/single_node_plugin_rollout_rollback.robot",
    "suites/trust_expansion_replay.robot",
]


def path_without_venv() -> str:
    """PATH minus the venv's bin (so the test proves no activation is needed)."""
    parts = os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
    kept = [p for p in parts if p and Path(p).resolve() != VENV_BIN.resolve()]
    return os.pathsep.join(kept or ["/usr/bin", "/bin"])


def marked_processes(marker: str) -> list[tuple[int, str]]:
    """(pid, command line) of every process whose environ or cmdline carries ``marker``."""
    found = []
    needle = marker.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            environ = (entry / "environ").read_bytes()
            cmdline = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                continue
            if needle in environ or needle in cmdline:
                found.append(
                    (int(entry.name), cmdline.replace(b"\0", b" ").decode(errors="replace"))
                )
    return found


def wait_until_gone(marker: str, timeout_s: float = 10.0) -> list[tuple[int, str]]:
    deadline = time.monotonic() + timeout_s
    left = marked_processes(marker)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = marked_processes(marker)
    return left


@dataclass
class Env:
    """One test's marker, private target file and fleets directory."""

    marker: str
    target: Path
    fleets_dir: Path
    tmp: Path

    def environ(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("TRIBES_QA_RUN_ID", None)
        env.pop("TRIBES_SIM_FAULTS", None)
        env["PATH"] = path_without_venv()
        env[MARKER_VAR] = self.marker
        env.update(extra)
        return env

    def tribes_qa(self, *args: str, timeout_s: float = 300, **popen: Any) -> Any:
        return subprocess.run(
            [str(TRIBES_QA), *args],
            cwd=REPO,
            env=self.environ(),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            **popen,
        )

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(TRIBES_QA), *args],
            cwd=REPO,
            env=self.environ(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def fleet_dirs(self) -> list[Path]:
        return sorted(self.fleets_dir.glob("*")) if self.fleets_dir.exists() else []


def write_target(path: Path, fleets_dir: Path, roster: list[dict[str, str]] | None = None) -> Path:
    """variables/sim.yaml with a private fleets directory (and optionally another roster)."""
    data = yaml.safe_load((REPO / "variables" / "sim.yaml").read_text())
    data["TARGET"]["sim"]["fleets_dir"] = str(fleets_dir)
    if roster is not None:
        data["ROSTER"] = roster
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def make_env(tmp: Path) -> Env:
    # Short on purpose: node hosts put Unix sockets under the fleet directory (108-byte limit).
    fleets = Path(tempfile.mkdtemp(prefix="tqa-"))
    return Env(
        marker=f"tqa-{secrets.token_hex(6)}",
        target=write_target(tmp / "target.yaml", fleets),
        fleets_dir=fleets,
        tmp=tmp,
    )


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    test_env = make_env(tmp_path)
    yield test_env
    left = wait_until_gone(test_env.marker)
    _kill([pid for pid, _ in left])
    shutil.rmtree(test_env.fleets_dir, ignore_errors=True)
    assert not left, "processes outlived the test:\n" + "\n".join(cmd for _, cmd in left)


def messages(result: Any, keyword_name: str) -> list[str]:
    """Messages logged directly under every keyword called ``keyword_name``."""
    found: list[str] = []

    class Visitor(ResultVisitor):
        def start_keyword(self, keyword: Any) -> None:
            if keyword.name == keyword_name:
                found.extend(m.message for m in keyword.body if getattr(m, "type", "") == "MESSAGE")

    result.visit(Visitor())
    return found


def keyword_runs(result: Any, keyword_name: str) -> list[tuple[str, Any, Any, str]]:
    """(suite id, start, end, status) of every run of ``keyword_name``."""
    runs: list[tuple[str, Any, Any, str]] = []

    class Visitor(ResultVisitor):
        def __init__(self) -> None:
            self.suite = ""

        def start_suite(self, suite: Any) -> None:
            self.suite = suite.id

        def start_keyword(self, keyword: Any) -> None:
            if keyword.name == keyword_name and keyword.status != "NOT RUN":
                runs.append((self.suite, keyword.start_time, keyword.end_time, keyword.status))

    result.visit(Visitor())
    return runs


def load(output_xml: Path) -> Any:
    assert output_xml.is_file(), f"no {output_xml}"
    return ExecutionResult(str(output_xml))


def suite_test_count(*suite_files: str | Path) -> int:
    """How many tests the named suite files hold (Robot's model, nothing run): a suite that gains
    a test must not break the runner tests that count what ran."""
    from robot.api import TestSuite

    return sum(
        len(list(TestSuite.from_file_system(str(REPO / path)).all_tests)) for path in suite_files
    )
