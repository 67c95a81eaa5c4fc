"""sim-as-real uses fleet.example.yaml's Guix/Shepherd templates wherever the simulator can.

Every node command and fault template of ``variables/fleet.example.yaml`` must be the same in
``variables/sim-as-real.yaml``, except the differences listed here with their reason. A listed
difference that disappears must be unlisted: the list stays the exact truth.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tribesqa.config import validate_target_file

pytestmark = pytest.mark.req("SSHR-4")

ROOT = Path(__file__).resolve().parents[1]

#: fleet.example.yaml's fault templates the simulator cannot honour, and why.
SIMULATOR_CANNOT = {
    "partition": "the simulated nodes share one loopback interface and run no nftables; Legion's "
    "nemesis drops the peers' sync traffic inside the nodes instead",
    "heal": "partitions are Legion's (see partition)",
    "crash": "a simulated node has no process of its own for `kill -9 <herd's Main PID>`: its "
    "host process also runs its sshd (and other nodes); Legion's nemesis crash kills the host",
    "outage_start": "deployment-specific switch; the simulator's node has its own",
    "outage_stop": "deployment-specific switch; the simulator's node has its own",
}
#: Templates only sim-as-real has, and why.
SIMULATOR_ONLY = {
    "recover": "a simulated node's sshd dies with its crash, so a crashed node is brought back "
    "through Legion; a real node's sshd survives and `herd restart tribes` does it",
}


def _real(name: str):  # type: ignore[no-untyped-def]
    target = validate_target_file(ROOT / "variables" / name).TARGET
    assert target is not None and target.real is not None
    return target


def test_node_commands_are_the_same() -> None:
    example, sim = _real("fleet.example.yaml"), _real("sim-as-real.yaml")
    assert example.real.node_commands == sim.real.node_commands
    assert set(example.real.node_commands) == {
        "selected_generation",
        "running_generation",
        "plugin_request",
    }


def test_fault_templates_are_the_same_except_the_listed_ones() -> None:
    example = _real("fleet.example.yaml").real.faults
    sim = _real("sim-as-real.yaml").real.faults
    same = {name for name in example if name in sim and example[name] == sim[name]}
    differing = set(example) - same
    assert differing == set(SIMULATOR_CANNOT), (
        f"templates that differ: {sorted(differing)}; listed as impossible in the simulator: "
        f"{sorted(SIMULATOR_CANNOT)}"
    )
    assert set(sim) - set(example) == set(SIMULATOR_ONLY)
    assert "restart" in same  # the Shepherd restart runs in the matrix


def test_both_log_in_as_root() -> None:
    assert _real("fleet.example.yaml").ssh.user == "root"
    assert _real("sim-as-real.yaml").ssh.user == "root"


def test_no_systemd_in_the_guix_templates() -> None:
    real = _real("fleet.example.yaml").real
    templates = [fault.command for fault in real.faults.values()]
    assert not [t for t in [*templates, *real.node_commands.values()] if "systemctl" in t]


@pytest.mark.parametrize(
    "status_line",
    ["  Main PID: {pid}", "  Running value is {pid}."],
    ids=["shepherd-0.10", "shepherd-0.9"],
)
def test_the_crash_template_kills_the_pid_herd_reports(tmp_path: Path, status_line: str) -> None:
    victim = subprocess.Popen(["sleep", "60"])
    try:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        herd = bin_dir / "herd"
        lines = ["Status of tribes:", "  It is running since 10:00:00.", status_line]
        herd.write_text(
            "#!/bin/sh\ncat <<'EOF'\n"
            + "\n".join(lines).format(pid=victim.pid)
            + "\n  It is enabled.\nEOF\n"
        )
        herd.chmod(0o755)
        command = _real("fleet.example.yaml").real.faults["crash"].command
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
        done = subprocess.run(
            ["/bin/sh", "-c", command], env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + 5
        while victim.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert victim.returncode == -signal.SIGKILL
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()


def test_the_crash_template_fails_when_the_service_is_stopped(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "herd").write_text("#!/bin/sh\necho 'Status of tribes:'\necho '  It is stopped.'\n")
    (bin_dir / "herd").chmod(0o755)
    command = _real("fleet.example.yaml").real.faults["crash"].command
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["/bin/sh", "-c", command], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    assert "herd status tribes shows no running process" in done.stderr
