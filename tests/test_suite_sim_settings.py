"""Per-suite simulator settings (``TARGET.sim.suite_settings``): the suite's stem from its name,
the settings read from a variables file for ``tribes-qa sim up --suite --settings-from``, and a
sim target that starts the suite's fleet with them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tribesqa.config import (
    load_timeouts,
    parse_target,
    suite_sim_settings,
    suite_stem,
    validate_target_file,
)
from tribesqa.targets.sim import SimTarget

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("label", "stem"),
    [
        ("Suites.Management Api Contract", "management_api_contract"),
        ("Cluster Plugin Rollout Sync Split Brain", "cluster_plugin_rollout_sync_split_brain"),
        ("Suites.Fleet Gate.Fleet Gate", "fleet_gate"),
    ],
)
def test_a_suite_name_gives_its_file_stem(label: str, stem: str) -> None:
    assert suite_stem(label) == stem


def test_the_sim_targets_give_the_contract_suite_seconds_long_builds() -> None:
    validate_target_file(REPO / "variables" / "sim.yaml")
    settings = suite_sim_settings(REPO / "variables" / "sim.yaml", "management_api_contract")
    assert settings["stage_s"]["build"] >= 5
    assert suite_sim_settings(REPO / "variables" / "sim.yaml", "fleet_gate") == {}
    real = (REPO / "variables" / "sim-as-real.yaml").read_text()
    assert '--suite, "{suite}", --settings-from, variables/sim.yaml' in real


def test_a_bad_settings_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        suite_sim_settings(tmp_path / "missing.yaml", "x")
    broken = tmp_path / "broken.yaml"
    broken.write_text("TARGET: [")
    with pytest.raises(ValueError, match="not valid YAML"):
        suite_sim_settings(broken, "x")
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("TARGET:\n  sim:\n    suite_settings: [1]\n")
    with pytest.raises(ValueError, match=r"TARGET\.sim"):
        suite_sim_settings(wrong, "x")


def test_a_sim_target_starts_the_suites_fleet_with_its_settings(tmp_path: Path) -> None:
    config = parse_target(
        {
            "name": "sim",
            "kind": "sim",
            "timeouts_profile": "sim",
            "sim": {
                "fleets_dir": str(tmp_path),
                "suite_settings": {"slow_suite": {"stage_s": {"build": 2.5}, "restart_s": 0.2}},
            },
        }
    )
    target = SimTarget(config, load_timeouts("sim"), tmp_path)
    target.open("Suites.Slow Suite")
    try:
        assert target.fleet_dir is not None
        written = json.loads((target.fleet_dir / "sim-config.json").read_text())
        assert written["stage_s"] == {"build": 2.5} and written["restart_s"] == 0.2
    finally:
        target.close()
