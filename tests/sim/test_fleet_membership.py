"""Decommission, reactivate, replace: rows are archived, re-activated with a fresh time, swapped."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fleetkit import FleetRegistry, SimFleet, eventually

from tribes_sim.fleet import LegionClientError
from tribesqa.contract import LegionSnapshot, parse_payload

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def fleet(fleets: FleetRegistry) -> Iterator[SimFleet]:
    fleet = fleets.start("membership", nodes=3)
    yield fleet
    fleets.release(fleet)


def rows_on(fleet: SimFleet, name: str) -> dict[str, dict[str, Any]]:
    return {row["node_id"]: row for row in fleet.call(name, "cluster_nodes.list")["nodes"]}


def servers_on(fleet: SimFleet, name: str) -> list[str]:
    return sorted(s["node_id"] for s in fleet.call(name, "sync.status")["servers"])


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_decommission_reactivate_replace_and_last_node_refusal(fleet: SimFleet) -> None:
    everyone = ["hetzner-1", "scaleway-1", "ovh-1"]
    before = eventually(lambda: _all_active(fleet, everyone))
    old_activated = when(before["ovh-1"]["activated_at"])

    # -- decommission: archived on every remaining node, dropped from their sync servers
    record = fleet.legion.decommission("ovh-1")
    assert record["status"] == "decommissioned"
    remaining = ["hetzner-1", "scaleway-1"]

    def archived() -> None:
        for name in remaining:
            row = rows_on(fleet, name).get("ovh-1")
            assert row is not None, f"{name} lost the decommissioned row"
            assert row["status"] == "decommissioned", (name, row)
            assert row["decommissioned_at"] is not None, (name, row)
            assert servers_on(fleet, name) == sorted(set(remaining) - {name}), name
            status = fleet.call(name, "cluster_status")
            assert (status["active"], status["decommissioned"]) == (2, 1), status

    eventually(archived)
    membership = parse_payload(LegionSnapshot, fleet.legion.snapshot(), source="legion")
    assert membership.membership("ovh-1").status.value == "decommissioned"
    assert membership.membership("ovh-1").decommissioned_at is not None
    assert fleet.call("ovh-1", "sync.status")["servers"] == []

    # -- reactivate: active again everywhere with a NEW activated_at
    record = fleet.legion.reactivate("ovh-1")
    assert record["status"] == "ready"

    def reactivated() -> None:
        for name in everyone:
            row = rows_on(fleet, name)["ovh-1"]
            assert row["status"] == "active", (name, row)
            assert row["decommissioned_at"] is None, (name, row)
            assert when(row["activated_at"]) > old_activated, (name, row, old_activated)
            assert servers_on(fleet, name) == sorted(set(everyone) - {name}), name

    eventually(reactivated)

    # -- replace scaleway-1 by a hetzner node: new one active, old one decommissioned
    replacement = fleet.legion.replace("scaleway-1", "hetzner")
    assert replacement["status"] == "ready"
    new = replacement["name"]
    assert new not in everyone and replacement["provider"] == "hetzner"
    records = fleet.records()
    assert records["scaleway-1"]["status"] == "decommissioned"
    live = ["hetzner-1", "ovh-1", new]

    def replaced() -> None:
        for name in live:
            rows = rows_on(fleet, name)
            assert rows[new]["status"] == "active", (name, rows[new])
            assert rows["scaleway-1"]["status"] == "decommissioned", (name, rows["scaleway-1"])
            assert servers_on(fleet, name) == sorted(set(live) - {name}), name

    eventually(replaced)
    assert fleet.call(new, "tribe.status") == fleet.call("hetzner-1", "tribe.status")

    # -- Legion refuses to decommission the last active node
    fleet.legion.decommission("ovh-1")
    fleet.legion.decommission(new)
    with pytest.raises(LegionClientError) as refused:
        fleet.legion.decommission("hetzner-1")
    assert (refused.value.status, refused.value.code) == (409, "unsafe-operation")
    assert fleet.records()["hetzner-1"]["status"] == "ready"
    assert rows_on(fleet, "hetzner-1")["hetzner-1"]["status"] == "active"


def _all_active(fleet: SimFleet, names: list[str]) -> dict[str, dict[str, Any]]:
    views = [rows_on(fleet, name) for name in names]
    for view in views:
        assert sorted(view) == sorted(names)
        assert all(row["status"] == "active" for row in view.values()), view
    return views[0]


@pytest.mark.parametrize(
    ("precision", "fraction"), [("seconds", None), ("milliseconds", 3), ("microseconds", 6)]
)
def test_nodes_and_legion_stamp_at_the_configured_precision(
    fleets: FleetRegistry, precision: str, fraction: int | None
) -> None:
    # A real node may write whole seconds: the simulator can, so the suites meet that case.
    fleet = fleets.start(f"stamps-{precision}", nodes=2, timestamp_precision=precision)
    try:
        fleet.legion.decommission("scaleway-1")

        def stamped() -> None:
            row = {r["node_id"]: r for r in fleet.call("hetzner-1", "cluster_nodes.list")["nodes"]}
            gone = row["scaleway-1"]
            assert gone["status"] == "decommissioned", gone
            for field in ("decommissioned_at", "activated_at", "joined_at", "updated_at"):
                seconds = str(gone[field]).rstrip("Z").split(":")[-1]
                digits = len(seconds.split(".")[1]) if "." in seconds else None
                assert digits == fraction, (field, gone[field])

        eventually(stamped)
    finally:
        fleets.release(fleet)
