"""examples/legion-shim against the simulator's Legion CLI.

``tests/data/legionctl_double.py`` turns ``tribes-sim-legion``'s contract JSON into the made-up
native ``legionctl`` shape the shim expects; the shim must turn it back: its output equals the
simulator's own, parses with the library's models, drives every Legion operation through the
library's ``CliLegion``, carries the native error codes, and ``tribes-qa doctor`` passes with it
as the target's Legion command.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.parallel.conftest import REPO, VENV_BIN
from tests.parallel.sim_as_real import doctor, environ, running_fleet, target_file
from tribesqa.config import LegionCli, RealSettings
from tribesqa.contract import GraphRun, LegionSnapshot, NodeRecord, parse_payload
from tribesqa.targets.base import LegionError
from tribesqa.targets.real import CliLegion

SHIM = REPO / "examples" / "legion-shim" / "legion_shim.py"
DOUBLE = REPO / "tests" / "data" / "legionctl_double.py"


def shim_command(fleet: Path) -> list[str]:
    return [sys.executable, str(SHIM), "--native", f"{sys.executable} {DOUBLE} --dir {fleet}"]


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, env=environ(), capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def fleet() -> Iterator[Path]:
    with running_fleet(2) as directory:
        yield directory


@pytest.fixture
def legion(fleet: Path, monkeypatch: pytest.MonkeyPatch) -> CliLegion:
    monkeypatch.setenv("PATH", environ()["PATH"])  # the double runs tribes-sim-legion
    settings = RealSettings(legion=LegionCli(command=shim_command(fleet)))
    return CliLegion(settings, {}, timeout_s=60)


@pytest.mark.req("LEG-9")
@pytest.mark.parametrize("operation", ["list", "snapshot"])
def test_the_shim_prints_what_the_simulator_prints(fleet: Path, operation: str) -> None:
    through_shim = run([*shim_command(fleet), operation])
    direct = run([str(VENV_BIN / "tribes-sim-legion"), "--dir", str(fleet), operation])
    assert through_shim.returncode == 0, through_shim.stdout + through_shim.stderr
    assert json.loads(through_shim.stdout) == json.loads(direct.stdout)
    assert "apiToken" not in through_shim.stdout and "must-not-leak" not in through_shim.stdout
    if operation == "list":
        records = [
            parse_payload(NodeRecord, r, source="shim list")
            for r in json.loads(through_shim.stdout)
        ]
        assert [r.name for r in records] == ["hetzner-1", "scaleway-1"]
    else:
        parse_payload(LegionSnapshot, json.loads(through_shim.stdout), source="shim snapshot")


@pytest.mark.req("LEG-9")
def test_the_library_drives_every_legion_operation_through_the_shim(legion: CliLegion) -> None:
    planned = legion.plan_join("ovh", 1)
    assert [(r.name, r.status.value) for r in planned] == [("ovh-1", "planned")]
    graph = legion.materialize()
    assert graph.state.value == "succeeded" and graph.materialized == ["ovh-1"]
    assert legion.decommission("ovh-1").status.value == "decommissioned"
    assert legion.reactivate("ovh-1").status.value == "ready"
    replacement = legion.replace("ovh-1", "hetzner")
    assert replacement.status.value == "ready" and replacement.provider.value == "hetzner"
    snapshot = legion.snapshot()
    assert {m.node for m in snapshot.cluster_membership} >= {"hetzner-1", "scaleway-1"}
    legion.destroy(replacement.name)
    names = {r.name: r.status.value for r in legion.list_nodes()}
    assert names.get(replacement.name, "destroyed") == "destroyed"
    assert names["hetzner-1"] == names["scaleway-1"] == "ready"


@pytest.mark.req("LEG-10")
def test_a_native_refusal_reaches_the_library_with_its_code(legion: CliLegion) -> None:
    with pytest.raises(LegionError) as refused:
        legion.decommission("no-such-node")
    assert refused.value.code == "unknown-node"
    assert "no-such-node" in refused.value.reason


@pytest.mark.req("LEG-10")
def test_a_missing_native_cli_is_an_error_json(fleet: Path) -> None:
    done = run([sys.executable, str(SHIM), "--native", "legionctl-not-installed", "list"])
    assert done.returncode == 1
    assert json.loads(done.stdout) == {
        "error": "native-cli-missing",
        "message": "'legionctl-not-installed' not found",
    }


@pytest.mark.req("LEG-11")
def test_doctor_passes_with_the_shim_as_the_legion_command(fleet: Path, tmp_path: Path) -> None:
    path = target_file(
        tmp_path / "t.yaml",
        fleet,
        legion_command=shim_command(fleet),
        roster=["hetzner-1", "scaleway-1"],
    )
    done = doctor("--target", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "legion_shim.py" in done.stdout and "listed" in done.stdout
    assert "OK: 16 check(s) passed" in done.stdout


CONTRACT = (REPO / "docs" / "contract.md").read_text()
ADAPTER_SECTION = CONTRACT.split("### Legion CLI adapter contract", 1)[1].split("\n### ", 1)[0]


@pytest.mark.req("LEG-9")
def test_the_adapter_contract_samples_parse_with_the_models() -> None:
    samples = re.findall(r"```json adapter:(\w+)\n(.*?)```", ADAPTER_SECTION, re.S)
    assert {model for model, _ in samples} == {"NodeRecord", "GraphRun", "error"}
    for model, text in samples:
        payload = json.loads(text)
        if model == "error":
            assert set(payload) == {"error", "message"}
        else:
            parse_payload(
                {"NodeRecord": NodeRecord, "GraphRun": GraphRun}[model], payload, source=model
            )


@pytest.mark.req("LEG-9")
def test_the_adapter_contract_table_states_the_default_templates() -> None:
    rows = dict(re.findall(r"^\| `(\w+)` \| `([^`]+)` \|", ADAPTER_SECTION, re.M))
    assert rows == LegionCli(command=["legion"]).operations
