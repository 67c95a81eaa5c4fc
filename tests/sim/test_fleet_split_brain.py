"""Split, heal, resync: writes on both sides of a partition all survive, counters merge."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fleetkit import FAST_ROLLOUT, FleetRegistry, SimFleet, consistently, eventually

pytestmark = pytest.mark.timeout(120)

A, B, C = "hetzner-1", "scaleway-1", "ovh-1"


@pytest.fixture(scope="module")
def fleet(fleets: FleetRegistry) -> Iterator[SimFleet]:
    fleet = fleets.start("split", nodes=3, **FAST_ROLLOUT)
    fleet.install_supertest([A, B, C])
    yield fleet
    fleets.release(fleet)


def ids(fleet: SimFleet, name: str, run_id: str) -> tuple[set[str], set[str]]:
    state = fleet.plugin_state(name, run_id)
    return {c["id"] for c in state["cases"]}, {e["id"] for e in state["events"]}


def counter(fleet: SimFleet, name: str, run_id: str, case_id: str) -> int | None:
    cases = {c["id"]: c for c in fleet.plugin_state(name, run_id)["cases"]}
    return cases[case_id]["counter"] if case_id in cases else None


def test_split_heal_resync_keeps_every_write(fleet: SimFleet) -> None:
    run = f"run-{uuid.uuid4().hex[:8]}"
    shared = fleet.create_case(A, run, "shared")
    assert shared["counter"] == 0 and shared["origin_node"] == A

    def on_b() -> None:
        assert shared["id"] in ids(fleet, B, run)[0]

    eventually(on_b)
    eventually(lambda: _assert_case_everywhere(fleet, run, shared["id"]))

    fleet.legion.nemesis("partition", node=C)

    def c_cut_off() -> None:
        assert fleet.call(C, "cluster_status")["status"] == "isolated"
        servers = fleet.call(A, "sync.status")["servers"]
        assert [s["connected"] for s in servers if s["node_id"] == C] == [False]

    eventually(c_cut_off)

    # Writes on the majority side (A, B) and on the cut-off node C.
    majority_case = fleet.create_case(A, run, "majority")
    majority_event = fleet.create_event(B, run, shared["id"], "majority-side")
    minority_case = fleet.create_case(C, run, "minority")
    minority_event = fleet.create_event(C, run, shared["id"], "minority-side")
    fleet.increment(A, shared["id"], 2)
    fleet.increment(B, shared["id"], 5)
    fleet.increment(C, shared["id"], 3)
    majority = ({majority_case["id"]}, {majority_event["id"]})
    minority = ({minority_case["id"]}, {minority_event["id"]})

    # The majority converges among itself ...
    def majority_converged() -> None:
        for name in (A, B):
            cases, events = ids(fleet, name, run)
            assert majority[0] <= cases and majority[1] <= events, name
            assert counter(fleet, name, run, shared["id"]) == 7, name

    eventually(majority_converged)

    # ... while C stays stale, and the majority never sees C's writes: consistently, ~1 s.
    def still_split() -> None:
        cases, events = ids(fleet, C, run)
        assert not (majority[0] & cases) and not (majority[1] & events), "C saw the majority"
        assert counter(fleet, C, run, shared["id"]) == 3
        for name in (A, B):
            cases, events = ids(fleet, name, run)
            assert not (minority[0] & cases) and not (minority[1] & events), f"{name} saw C"

    assert consistently(still_split, duration=1.0, min_checks=3) >= 3

    fleet.legion.nemesis("heal")
    for name in (A, B, C):
        job = fleet.call(name, "sync.resync", {"full": True})
        assert fleet.call(name, "rollout.status", {"job_id": job["job_id"]})["kind"] == "resync"

    every_case = {shared["id"]} | majority[0] | minority[0]
    every_event = majority[1] | minority[1]

    def healed() -> None:
        for name in (A, B, C):
            cases, events = ids(fleet, name, run)
            assert cases == every_case, (name, cases)
            assert events == every_event, (name, events)
            assert counter(fleet, name, run, shared["id"]) == 10, name
            status = fleet.call(name, "cluster_status")
            assert (status["status"], status["active"]) == ("healthy", 3), (name, status)

    eventually(healed, timeout=15)
    states = [fleet.plugin_state(name, run) for name in (A, B, C)]
    assert states[0] == states[1] == states[2], "nodes disagree on the merged plugin state"


def _assert_case_everywhere(fleet: SimFleet, run: str, case_id: str) -> None:
    for name in (A, B, C):
        assert case_id in ids(fleet, name, run)[0], name


def test_concurrent_full_resyncs_keep_the_mesh(fleet: SimFleet) -> None:
    # Every node resyncing at once: all rows are syncing for a moment, so nobody is anybody's
    # sync server; each must still learn that the others turned active again.
    run = f"run-{uuid.uuid4().hex[:8]}"
    for round_ in range(4):
        with ThreadPoolExecutor(3) as pool:
            jobs = list(pool.map(lambda n: fleet.call(n, "sync.resync", {"full": True}), (A, B, C)))
        assert all(job["job_id"] for job in jobs)
        markers = {
            name: fleet.create_case(name, run, f"{name}-{round_}")["id"] for name in (A, B, C)
        }

        def meshed(markers: dict[str, str] = markers) -> None:
            for name in (A, B, C):
                assert set(markers.values()) <= ids(fleet, name, run)[0], name
                servers = fleet.call(name, "sync.status")["servers"]
                assert sorted(s["node_id"] for s in servers if s["connected"]) == sorted(
                    {A, B, C} - {name}
                ), (name, servers)

        eventually(meshed, timeout=20)
