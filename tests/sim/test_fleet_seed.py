"""One seed, the same choices: ports, ids and the tribe of a fleet replayed with its seed.

Keys are never seeded: two fleets with one seed still have different admin, node and SSH keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fleetkit import SUPERTEST, FleetRegistry

from tribes_sim.fleet import prepare_fleet_dir, stop_fleet
from tribes_sim.node.ports import bind_in_range
from tribes_sim.seeded import SEED_ENV, IdSource, stream

MOVED_ON = 16  # how far a seeded port may move on when busy (a fresh seed lands anywhere in 6000)


def port_of(value: str | int) -> int:
    return value if isinstance(value, int) else int(str(value).rsplit(":", 1)[1])


def choices(fleets: FleetRegistry, label: str, seed: int) -> dict[str, Any]:
    """Everything a seeded fleet picks at random, then the fleet is stopped (ports freed)."""
    fleet = fleets.start(label, nodes=2, seed=seed)
    try:
        records = fleet.records()
        preview = fleet.call("hetzner-1", "rollout.preview", {"plugins": [SUPERTEST]})
        state = json.loads((fleet.directory / "legion" / "state.json").read_text())
        identities = {
            name: json.loads((fleet.directory / "nodes" / name / "identity.json").read_text())
            for name in records
        }
        return {
            "ports": {
                name: (rec["admin_url"], rec["transport_address"], rec["ssh"]["port"])
                for name, rec in sorted(records.items())
            },
            "plan": preview["plan_id"],
            "tribe": state["tribe_id"],
            "graph_runs": [run["id"] for run in state["graph_runs"]],
            "keys": {name: identity["secret"] for name, identity in identities.items()},
            "admin": (fleet.directory / "secrets" / "admin.key").read_text(),
        }
    finally:
        fleet.close()
        stop_fleet(fleet.directory)


def test_a_fleet_started_again_with_its_seed_picks_the_same_ports_and_ids(
    fleets: FleetRegistry,
) -> None:
    first = choices(fleets, "seed-a", seed=424242)
    again = choices(fleets, "seed-b", seed=424242)
    other = choices(fleets, "seed-c", seed=7)
    for part in ("plan", "tribe", "graph_runs"):
        assert again[part] == first[part], f"{part} differs under one seed"
    # The same wished ports; one some other process holds at that moment moves on to the next.
    assert again["ports"].keys() == first["ports"].keys()
    for name, ports in first["ports"].items():
        moved = [
            abs(port_of(a) - port_of(b)) for a, b in zip(ports, again["ports"][name], strict=True)
        ]
        assert max(moved) <= MOVED_ON, f"{name}: {ports} then {again['ports'][name]}"
    assert other["ports"] != first["ports"] and other["tribe"] != first["tribe"]
    assert first["keys"].keys() == again["keys"].keys()
    for name, secret in first["keys"].items():
        assert again["keys"][name] != secret, f"{name}: its node key followed the seed"
    assert again["admin"] != first["admin"], "the admin key followed the seed"


def test_the_run_seed_reaches_sim_config_and_a_bad_one_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tribes_sim.fleet import FleetError

    monkeypatch.setenv(SEED_ENV, "99")
    assert prepare_fleet_dir(tmp_path / "a").seed == 99
    assert json.loads((tmp_path / "a" / "sim-config.json").read_text())["seed"] == 99
    assert prepare_fleet_dir(tmp_path / "b", seed=5).seed == 5  # an explicit override wins
    monkeypatch.setenv(SEED_ENV, "ninety-nine")
    with pytest.raises(FleetError, match="TRIBES_SIM_SEED must be an integer, got 'ninety-nine'"):
        prepare_fleet_dir(tmp_path / "c")


def test_streams_do_not_depend_on_call_order_and_restarts_never_repeat_an_id() -> None:
    a, b = stream(1, "ports", "hetzner-1", 0), stream(1, "ports", "scaleway-1", 0)
    b_first, a_second = stream(1, "ports", "scaleway-1", 0), stream(1, "ports", "hetzner-1", 0)
    assert [b_first.random(), a_second.random()] == [b.random(), a.random()]
    first_boot = IdSource(1, "hetzner-1", epoch=0)
    restarted = IdSource(1, "hetzner-1", epoch=1)
    ids = [first_boot.token_hex("job", 6) for _ in range(50)]
    ids += [restarted.token_hex("job", 6) for _ in range(50)]
    assert len(set(ids)) == 100
    assert IdSource(1, "hetzner-1").token_hex("job", 6) == ids[0]
    assert IdSource(None, "hetzner-1").token_hex("job", 6) != IdSource(None, "hetzner-1").token_hex(
        "job", 6
    )


def test_a_seeded_port_is_the_same_wish_and_moves_on_when_taken() -> None:
    low, high = 30000, 32699
    first = bind_in_range("127.0.0.1", low, high, stream(3, "ports", "x", 0))
    port = first.getsockname()[1]
    first.close()
    again = bind_in_range("127.0.0.1", low, high, stream(3, "ports", "x", 0))
    assert again.getsockname()[1] == port  # free again: the same port
    moved = bind_in_range("127.0.0.1", low, high, stream(3, "ports", "x", 0))
    try:
        assert 0 < (moved.getsockname()[1] - port) % (high - low + 1) <= MOVED_ON  # the next free
    finally:
        again.close()
        moved.close()
