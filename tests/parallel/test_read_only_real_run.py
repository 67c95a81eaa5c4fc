"""A read-only run on a real fleet: ``tribes-qa run`` on a real-kind target (the real strategy
aimed at a running simulated fleet, nothing to provision) without ``--allow-destructive`` runs
what is not tagged destructive (the gate's preconditions and lifecycle checks, the admin API
refusals), and it passes, with ALLOW_DESTRUCTIVE false and the fleet left as it was."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from robot.api import ExecutionResult

from tests.parallel.conftest import REPO, VENV_BIN
from tests.parallel.sim_as_real import environ, running_fleet, target_file

pytestmark = [pytest.mark.slow, pytest.mark.req("GUARD-3", "GUARD-2", "GUARD-4")]

NODES = ["hetzner-1", "scaleway-1", "ovh-1"]


@pytest.fixture(scope="module")
def fleet() -> Iterator[Path]:
    with running_fleet(len(NODES)) as directory:
        yield directory


def legion_list(fleet: Path) -> list[tuple[str, str]]:
    done = subprocess.run(
        [str(VENV_BIN / "tribes-sim-legion"), "--dir", str(fleet), "list"],
        env=environ(), capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return sorted((record["name"], record["status"]) for record in json.loads(done.stdout))


def test_a_read_only_run_on_a_real_fleet_passes_and_changes_nothing(
    fleet: Path, tmp_path: Path
) -> None:
    target = target_file(tmp_path / "real.yaml", fleet, roster=NODES)
    data = yaml.safe_load(target.read_text())
    data["ALLOW_DESTRUCTIVE"] = False
    target.write_text(yaml.safe_dump(data, sort_keys=False))
    before = legion_list(fleet)
    out = tmp_path / "results"
    done = subprocess.run(
        [str(VENV_BIN / "tribes-qa"), "run", "--target", str(target), "--outputdir", str(out)],
        cwd=REPO, env=environ(), capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert "tests tagged destructive are excluded" in done.stderr, done.stderr[-2000:]
    result = ExecutionResult(str(out / "output.xml"))
    tests = {f"{t.parent.name}: {t.name}": t for t in result.suite.all_tests}
    failed = {name: t.message for name, t in tests.items() if t.status != "PASS"}
    assert done.returncode == 0 and not failed, (failed, done.stdout[-3000:])
    assert "Fleet Gate: Roster Nodes Meet The Gate Preconditions" in tests
    assert "Fleet Gate: Lifecycle Checks Pass On Every Gate Node" in tests
    assert any(name.startswith("Admin Api Security: ") for name in tests)
    # Nothing destructive ran: no destructive test, no plugin write, the fleet unchanged.
    assert not [name for name, t in tests.items() if "destructive" in t.tags]
    assert "Plugin Writes Reach Their Plugin Peers On Every Gate Node" not in str(list(tests))
    assert legion_list(fleet) == before
