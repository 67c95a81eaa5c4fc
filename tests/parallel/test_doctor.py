"""``tribes-qa doctor``: passes on a healthy simulated fleet reached through the real strategy,
and names the node and the check when the SSH key, the admin key, Legion or a node's clock is
wrong. One fleet for the module (``tribes-qa sim up``); each test writes its own target file,
derived from ``variables/sim-as-real.yaml``, and runs the installed command.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.parallel.conftest import REPO, VENV_BIN
from tests.parallel.sim_as_real import ADMIN_ENV, SIM_AS_REAL, doctor, running_fleet, target_file
from tribes_sim.ssh_keys import generate_ssh_keypair
from tribesqa.clients.keys import AdminKey
from tribesqa.running.doctor_checks import DateProbe, http_date, judge_skew, skew_bounds

NODES = ["hetzner-1", "scaleway-1", "ovh-1"]


@pytest.fixture(scope="module")
def fleet() -> Iterator[Path]:
    with running_fleet(len(NODES)) as directory:
        yield directory


def assert_no_secret(shown: str, fleet_dir: Path, *keys: AdminKey) -> None:
    """Neither admin key (hex, nsec) nor a line of the SSH private key is in the output."""
    fleet_key = AdminKey.from_file(fleet_dir / "secrets" / "admin.key")
    for key in (fleet_key, *keys):
        assert key.secret_hex() not in shown.lower()
        assert key.secret_nsec() not in shown
    ssh_key = (fleet_dir / "secrets" / "ssh_client").read_text()
    assert not [line for line in ssh_key.splitlines()[1:-1] if line in shown]


def row(output: str, node: str) -> list[str]:
    """The marks of ``node``'s row in the table."""
    match = re.search(rf"^  {re.escape(node)} +(.+)$", output, re.M)
    assert match, f"no table row for {node}:\n{output}"
    return match.group(1).split()


def test_healthy_fleet_passes_every_check_on_every_roster_node(fleet: Path, tmp_path: Path) -> None:
    done = doctor("--verbose", "--target", str(target_file(tmp_path / "t.yaml", fleet)))
    assert done.returncode == 0, done.stdout + done.stderr
    for node in NODES:
        assert row(done.stdout, node) == ["✓"] * 6, done.stdout
        assert re.search(rf"✓ {node} / node.info: signed call accepted", done.stdout)
    assert_no_secret(done.stdout + done.stderr, fleet)
    for check in ("config", "legion", "admin key", "ssh key"):
        assert re.search(rf"^  ✓ {check} ", done.stdout, re.M), done.stdout
    assert "OK: 22 check(s) passed, 0 skipped" in done.stdout


def test_wrong_ssh_key_names_every_node_and_the_ssh_check(fleet: Path, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger_key"
    generate_ssh_keypair(stranger, "not authorized anywhere")
    done = doctor("--target", str(target_file(tmp_path / "t.yaml", fleet, ssh_key_file=stranger)))
    assert done.returncode == 1, done.stdout + done.stderr
    for node in NODES:
        assert row(done.stdout, node) == ["✓", "✓", "✓", "✗", "✓", "-"], done.stdout
        assert re.search(rf"✗ {node} / ssh: node {node}: SSH login as root@", done.stdout)
        assert f"- {node} / plugin transport: skipped: it runs over SSH" in done.stdout
    assert "FAILED: 3 check(s): hetzner-1/ssh, scaleway-1/ssh, ovh-1/ssh" in done.stdout
    key_text = stranger.read_text()
    assert not [line for line in key_text.splitlines()[1:-1] if line in done.stdout]


def test_wrong_admin_key_is_refused_by_every_node_and_never_printed(
    fleet: Path, tmp_path: Path
) -> None:
    wrong = AdminKey.generate()
    done = doctor(
        "--target", str(target_file(tmp_path / "t.yaml", fleet)), **{ADMIN_ENV: wrong.secret_hex()}
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"✓ admin key  loaded from environment variable {ADMIN_ENV}" in done.stdout
    for node in NODES:
        assert row(done.stdout, node)[2] == "✗", done.stdout
        assert re.search(
            rf"✗ {node} / node.info: signed call refused: forbidden-pubkey: {wrong.pubkey_hex}",
            done.stdout,
        ), done.stdout
    assert_no_secret(done.stdout + done.stderr, fleet, wrong)


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        (["tribes-no-such-legion"], "Legion list failed: cli-missing: 'tribes-no-such-legion'"),
        (["sh", "-c", "echo legion says hi", "sh"], "Legion list failed: invalid-output"),
        (
            ["sh", "-c", 'echo \'{"error": "auth", "message": "token expired"}\'; exit 4'],
            "Legion list failed: auth: token expired",
        ),
        (["sh", "-c", 'echo \'[{"name": "x"}]\'', "sh"], "does not match NodeRecord"),
    ],
    ids=["missing", "garbage", "error-json", "wrong-shape"],
)
def test_a_broken_legion_cli_fails_the_legion_check(
    fleet: Path, tmp_path: Path, command: list[str], reason: str
) -> None:
    done = doctor("--target", str(target_file(tmp_path / "t.yaml", fleet, legion_command=command)))
    assert done.returncode == 1, done.stdout + done.stderr
    assert re.search(rf"^  ✗ legion .*{re.escape(reason)}", done.stdout, re.M), done.stdout
    for node in NODES:
        assert row(done.stdout, node) == ["-"] * 6
    assert "FAILED: 1 check(s): target/legion" in done.stdout


def test_a_node_clock_off_by_more_than_the_allowance_fails_clock_skew(
    fleet: Path, tmp_path: Path
) -> None:
    legion = [str(VENV_BIN / "tribes-sim-legion"), "--dir", str(fleet), "nemesis", "clock-skew"]
    subprocess.run([*legion, "scaleway-1", "30"], check=True, capture_output=True, timeout=30)
    try:
        done = doctor("--target", str(target_file(tmp_path / "t.yaml", fleet)))
    finally:
        subprocess.run([*legion, "scaleway-1", "0"], check=True, capture_output=True, timeout=30)
    assert done.returncode == 1, done.stdout + done.stderr
    assert row(done.stdout, "scaleway-1")[4] == "✗"
    assert row(done.stdout, "hetzner-1")[4] == "✓"
    assert re.search(r"✗ scaleway-1 / clock skew: node clock \+(29|30)\.\d", done.stdout)


def test_a_roster_node_legion_does_not_list_is_named(fleet: Path, tmp_path: Path) -> None:
    path = target_file(tmp_path / "t.yaml", fleet, roster=["hetzner-1", "node-404"])
    done = doctor("--target", str(path))
    assert done.returncode == 1, done.stdout + done.stderr
    assert row(done.stdout, "hetzner-1") == ["✓"] * 6
    assert "✗ node-404 / legion: Legion lists no node of this name" in done.stdout
    assert "FAILED: 1 check(s): node-404/legion" in done.stdout


def test_an_unreachable_plugin_api_fails_the_plugin_transport_check(
    fleet: Path, tmp_path: Path
) -> None:
    """The node's plugin request goes to a port nothing listens on: curl answers no status."""
    path = target_file(tmp_path / "t.yaml", fleet, roster=["ovh-1"])
    data = yaml.safe_load(path.read_text())
    data["TARGET"]["real"]["node_commands"] = {
        "plugin_request": "curl -sS -w '\\n%{http_code}' -X {method} http://127.0.0.1:9/{path}"
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    done = doctor("--target", str(path))
    assert done.returncode == 1, done.stdout + done.stderr
    assert row(done.stdout, "ovh-1") == ["✓"] * 5 + ["✗"]
    assert "✗ ovh-1 / plugin transport: node ovh-1: plugin API GET health unreachable over SSH" in (
        done.stdout
    )


def test_a_crashed_node_fails_healthz_node_info_and_ssh(fleet: Path, tmp_path: Path) -> None:
    """Last of the fleet tests: the crashed node stays down for the rest of the module."""
    legion = [str(VENV_BIN / "tribes-sim-legion"), "--dir", str(fleet), "nemesis"]
    subprocess.run([*legion, "crash", "ovh-1"], check=True, capture_output=True, timeout=30)
    done = doctor("--target", str(target_file(tmp_path / "t.yaml", fleet)))
    assert done.returncode == 1, done.stdout + done.stderr
    assert row(done.stdout, "hetzner-1") == ["✓"] * 6
    assert row(done.stdout, "ovh-1") == ["✓", "✗", "✗", "✗", "-", "-"]
    assert re.search(
        r"✗ ovh-1 / healthz: GET http://127\.0\.0\.1:\d+/healthz: ConnectError", done.stdout
    )
    assert "✗ ovh-1 / node.info: no answer: unreachable: ConnectError" in done.stdout
    assert "✗ ovh-1 / ssh: node ovh-1: SSH login as root@127.0.0.1:" in done.stdout
    assert "FAILED: 3 check(s): ovh-1/healthz, ovh-1/node.info, ovh-1/ssh" in done.stdout


def test_sim_as_real_is_set_up_first_and_torn_down_after(tmp_path: Path) -> None:
    """The shipped file as is: its setup_command starts an empty fleet (the suites provision the
    roster), the doctor checks Legion and the keys, then the teardown_command removes it all."""
    fleets = Path(tempfile.gettempdir()) / "tribes-qa-sim-as-real"
    before = set(fleets.glob("doctor-*"))
    done = doctor("--target", str(SIM_AS_REAL))
    assert done.returncode == 0, done.stdout + done.stderr
    for check in ("setup", "legion", "admin key", "ssh key", "teardown"):
        assert re.search(rf"^  ✓ {check} ", done.stdout, re.M), done.stdout
    assert "listed 0 node(s)" in done.stdout
    assert "- hetzner-1 / every check: " not in done.stdout
    assert "- hetzner-1 / legion: not in Legion's list yet: the suites provision it" in done.stdout
    assert set(fleets.glob("doctor-*")) == before


def test_a_failing_setup_command_is_named_and_its_teardown_still_runs(tmp_path: Path) -> None:
    data = yaml.safe_load(SIM_AS_REAL.read_text())
    torn_down = tmp_path / "torn-down"
    data["TARGET"]["real"]["setup_command"] = ["sh", "-c", "echo no cloud credit >&2; exit 3"]
    data["TARGET"]["real"]["teardown_command"] = ["touch", str(torn_down)]
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    done = doctor("--target", str(path))
    assert done.returncode == 1, done.stdout + done.stderr
    assert re.search(
        r"✗ setup +target .*setup_command failed \(exit 3\): no cloud credit", done.stdout
    )
    assert re.search(r"✓ teardown +teardown_command ran", done.stdout)
    assert torn_down.exists()


def test_a_file_without_target_fails_the_config_check(tmp_path: Path) -> None:
    path = tmp_path / "roster.yaml"
    path.write_text("ROSTER: [{node: hetzner-1, role: init}]\n")
    done = doctor("--target", str(path))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "✗ config  the file defines no TARGET" in done.stdout


def test_a_sim_target_needs_no_doctor() -> None:
    done = doctor("--target", str(REPO / "variables" / "sim.yaml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "kind sim: every suite starts a private simulated fleet" in done.stdout


def test_invalid_file_exits_1_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("TARGET: {name: x, kind: real}\n")
    done = doctor("--target", str(path))
    assert done.returncode == 1, done.stdout + done.stderr
    assert re.search(r"✗ config +invalid: TARGET: .*real.* section", done.stdout), done.stdout


def test_missing_file_exits_3(tmp_path: Path) -> None:
    done = doctor("--target", str(tmp_path / "nope.yaml"))
    assert done.returncode == 3, done.stdout + done.stderr
    assert "nope.yaml: no such file" in done.stderr


@pytest.mark.parametrize("args", [(), ("--target",), ("--no-such-option", "x")])
def test_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    done = doctor(*args)
    assert done.returncode == 2, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("date", "sent", "answered", "allowed", "ok"),
    [
        (1000.0, 1000.2, 1000.4, 0.0, True),  # same second: within a 0 s allowance
        (1000.0, 999.9, 1000.1, 0.0, True),  # the header's second began just before sending
        (1003.0, 1000.2, 1000.4, 2.0, False),  # at least 2.6 s ahead
        (1002.0, 1000.2, 1000.4, 2.0, True),  # 1.6..2.8 s: not certainly beyond 2 s
        (995.0, 1000.2, 1000.4, 2.0, False),  # at least 4.2 s behind
    ],
)
def test_skew_fails_only_when_certainly_beyond_the_allowance(
    date: float, sent: float, answered: float, allowed: float, ok: bool
) -> None:
    probe = DateProbe(date, sent, answered)
    low, high = skew_bounds(probe)
    assert low <= high
    assert judge_skew("n", probe, allowed).ok is ok


def test_skew_is_skipped_without_a_date_header() -> None:
    check = judge_skew("n", DateProbe(None, 1.0, 2.0), 2.0)
    assert check.ok is None and "no (valid) HTTP Date header" in check.detail


@pytest.mark.parametrize("header", [None, "", "yesterday-ish"])
def test_a_missing_or_unparsable_date_header_gives_no_date(header: str | None) -> None:
    assert http_date(header) is None


def test_an_http_date_header_is_read_as_epoch_seconds() -> None:
    assert http_date("Thu, 03 Dec 2026 06:47:26 GMT") == 1796280446.0
