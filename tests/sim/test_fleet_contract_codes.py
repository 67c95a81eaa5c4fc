"""Contract answers no suite can provoke on a healthy fleet: ``tribe-unknown`` (a node without
the tribe), ``not-ready`` (a node in its restart stage) and the result shapes of the Legion-only
``control.*`` methods. Each is read through the real HTTP API and checked against the contract
models (``SimFleet.call`` / ``SimFleet.refused`` parse every answer)."""

from __future__ import annotations

import pytest
from fleetkit import FleetRegistry, eventually

INIT, JOIN = "hetzner-1", "scaleway-1"
FAST = dict.fromkeys(("pull", "build", "switch", "migrate", "restart"), 0.01)


@pytest.mark.req("API-12")
def test_a_node_without_the_tribe_answers_tribe_unknown(fleets: FleetRegistry) -> None:
    # The only stable node without the tribe: a joiner whose replay skips the tribe event (the
    # joiner-skips-tribe fault breaks the replay, not the answer asserted here).
    fleet = fleets.start("tribe-unknown", nodes=2, faults=["joiner-skips-tribe"])
    try:
        assert fleet.call(INIT, "tribe.status")["version"] >= 1
        body = fleet.refused(JOIN, "tribe.status", None, 409, "tribe-unknown")
        assert body["message"], body
    finally:
        fleets.release(fleet)


@pytest.mark.req("API-13")
def test_a_node_in_its_restart_stage_answers_not_ready(fleets: FleetRegistry) -> None:
    fleet = fleets.start("not-ready", nodes=1, stage_s=FAST, restart_s=3.0)
    try:
        job = fleet.start_rollout(INIT)
        eventually(lambda: fleet.refused(INIT, "node.info", None, 503, "not-ready"), timeout=10)
        assert fleet.wait_job(INIT, job)["state"] == "succeeded"
        assert fleet.call(INIT, "node.info")["node_id"] == INIT
    finally:
        fleets.release(fleet)


@pytest.mark.req("LEG-8")
def test_the_legion_only_methods_answer_in_their_contract_shapes(fleets: FleetRegistry) -> None:
    fleet = fleets.start("control-methods", nodes=1)
    try:
        tribe = fleet.call(INIT, "tribe.status")
        again = fleet.call(
            INIT,
            "control.init_tribe",
            {"tribe_id": tribe["tribe_id"], "name": tribe["name"], "members": tribe["members"]},
        )
        assert again["tribe_id"] == tribe["tribe_id"] and again["members"] == tribe["members"]
        rows = fleet.call(INIT, "cluster_nodes.list")["nodes"]
        trusted = [row["pubkey"] for row in rows]
        # seq 0 is older than every snapshot Legion pushed: nothing changes, applied is 0.
        result = fleet.call(
            INIT,
            "control.apply_membership",
            {"rows": rows, "trusted": trusted, "seq": 0, "hlc": "0000000000000.000000.legion"},
        )
        assert result == {"applied": 0}, result
        assert fleet.call(INIT, "cluster_nodes.list")["nodes"] == rows
    finally:
        fleets.release(fleet)
