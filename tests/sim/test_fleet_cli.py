"""The command lines: ``tribes-qa sim up|status|down`` and ``tribes-sim-legion`` as subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fleetkit import FleetRegistry, eventually

from tribesqa.contract import NodeRecord, parse_payload

pytestmark = pytest.mark.timeout(90)

BIN = Path(sys.executable).parent


def run(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TRIBES_SIM_FAULTS"}
    return subprocess.run(
        [str(BIN / argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def processes_naming(directory: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(directory) in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found


def test_sim_up_status_down(fleets: FleetRegistry) -> None:
    directory = fleets.new_dir("cli")
    up = run("tribes-qa", "sim", "up", "--nodes", "2", "--dir", str(directory))
    assert up.returncode == 0, up.stderr
    descriptor_path = directory / "fleet.json"
    assert f"Fleet descriptor: {descriptor_path}" in up.stdout, up.stdout
    descriptor = json.loads(descriptor_path.read_text())
    assert [n["name"] for n in descriptor["nodes"]] == ["hetzner-1", "scaleway-1"]
    assert processes_naming(directory), "sim up left nothing running"

    status = run("tribes-qa", "sim", "status", "--dir", str(directory))
    assert status.returncode == 0, status.stderr
    state = json.loads(status.stdout)
    assert state["running"] is True
    assert {n["name"]: n["status"] for n in state["nodes"]} == {
        "hetzner-1": "ready",
        "scaleway-1": "ready",
    }

    listed = run("tribes-sim-legion", "--dir", str(directory), "list")
    assert listed.returncode == 0, listed.stderr
    records = [
        parse_payload(NodeRecord, r, source="tribes-sim-legion list")
        for r in json.loads(listed.stdout)
    ]
    assert [r.name for r in records] == ["hetzner-1", "scaleway-1"]
    refused = run("tribes-sim-legion", "--dir", str(directory), "decommission", "no-such-node")
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["error"] == "unknown-node", refused.stdout

    down = run("tribes-qa", "sim", "down", "--dir", str(directory))
    assert down.returncode == 0, down.stderr

    def nothing_left() -> None:
        assert processes_naming(directory) == []

    eventually(nothing_left, timeout=3)
    after = run("tribes-qa", "sim", "status", "--dir", str(directory))
    assert after.returncode == 1 and json.loads(after.stdout)["running"] is False
