"""A simulated fleet reached through the real strategy (``variables/sim-as-real.yaml`` aimed at
a fleet started with ``tribes-qa sim up``), and ``tribes-qa doctor`` run on it as a process."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.parallel.conftest import REPO, TRIBES_QA, VENV_BIN

SIM_AS_REAL = REPO / "variables" / "sim-as-real.yaml"
FLEET_PLACEHOLDER = "{tmp}/tribes-qa-sim-as-real/{label}"
ADMIN_ENV = "TRIBES_SIM_AS_REAL_ADMIN_KEY"


def environ(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != ADMIN_ENV}
    env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "/usr/bin:/bin")])
    env.update(extra)
    return env


def doctor(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TRIBES_QA), "doctor", *args],
        cwd=REPO,
        env=environ(**extra_env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@contextlib.contextmanager
def running_fleet(nodes: int) -> Iterator[Path]:
    """``tribes-qa sim up --nodes N`` in a fresh directory; stopped and removed after."""
    # Short on purpose: node hosts put Unix sockets under the fleet directory (108-byte limit).
    base = Path(tempfile.mkdtemp(prefix="tqa-doc-"))
    directory = base / "f"
    started = subprocess.run(
        [str(TRIBES_QA), "sim", "up", "--nodes", str(nodes), "--dir", str(directory)],
        env=environ(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield directory
    finally:
        subprocess.run(
            [str(TRIBES_QA), "sim", "down", "--remove", "--dir", str(directory)],
            env=environ(),
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(base, ignore_errors=True)


def target_file(path: Path, fleet_dir: Path, **change: Any) -> Path:
    """sim-as-real.yaml aimed at the module's running fleet: no setup/teardown, no provisioning."""
    data = yaml.safe_load(SIM_AS_REAL.read_text())
    target = data["TARGET"]
    real = target["real"]
    for key in ("setup_command", "teardown_command"):
        real.pop(key)
    real["provision_missing_roster_nodes"] = False
    real["legion"]["command"] = [
        word.replace(FLEET_PLACEHOLDER, str(fleet_dir)) for word in real["legion"]["command"]
    ]
    target["admin_key"]["file"] = target["admin_key"]["file"].replace(
        FLEET_PLACEHOLDER, str(fleet_dir)
    )
    target["ssh"]["key_file"] = target["ssh"]["key_file"].replace(FLEET_PLACEHOLDER, str(fleet_dir))
    if "legion_command" in change:
        real["legion"]["command"] = change["legion_command"]
    if "ssh_key_file" in change:
        target["ssh"]["key_file"] = str(change["ssh_key_file"])
    if "roster" in change:
        data["ROSTER"] = [{"node": n, "role": "fleet verify"} for n in change["roster"]]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
