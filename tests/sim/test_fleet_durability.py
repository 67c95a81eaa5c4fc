"""Restart durability: a SIGKILLed or gracefully restarted node keeps every committed write."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fleetkit import FleetRegistry, SimFleet, Watcher, eventually

from tribes_sim.procs import pid_alive

pytestmark = pytest.mark.timeout(120)

PEER, VICTIM = "hetzner-1", "scaleway-1"
# Windows wide enough to observe on a loaded machine: the crash lands while a job is in
# "migrate", and a restart's boot answers 503 for a full second.
STAGES = {"pull": 0.05, "build": 0.05, "switch": 0.1, "migrate": 2.0, "restart": 0.2}


@pytest.fixture(scope="module")
def fleet(fleets: FleetRegistry) -> Iterator[SimFleet]:
    # One node per host process: a crash is a real SIGKILL of that process.
    fleet = fleets.start("durability", nodes=2, nodes_per_host=1, stage_s=STAGES, boot_s=1.0)
    fleet.install_supertest([PEER, VICTIM])
    yield fleet
    fleets.release(fleet)


def host_pid(fleet: SimFleet, name: str) -> int:
    """The pid of the process serving the node: the parent of an SSH command's shell."""
    rc, out, err = fleet.ssh(name, "echo $PPID")
    assert rc == 0, err
    return int(out)


def case_ids(fleet: SimFleet, name: str, run: str) -> set[str]:
    return {case["id"] for case in fleet.plugin_state(name, run)["cases"]}


def wait_healthy(fleet: SimFleet, name: str) -> None:
    def healthy() -> None:
        assert fleet.healthz(name) == 200

    eventually(healthy, timeout=20, retry_on=(AssertionError, httpx.TransportError))


def test_crash_and_graceful_restart_keep_data_and_address(fleet: SimFleet) -> None:
    run = "durability"
    address = fleet.call(VICTIM, "node.info")["transport_address"]
    pid = host_pid(fleet, VICTIM)
    # Cut the victim off so its writes exist nowhere else: what survives is its own disk.
    fleet.legion.nemesis("partition", node=VICTIM)
    local = {fleet.create_case(VICTIM, run, f"local-{i}")["id"] for i in range(5)}
    counted = next(iter(local))
    fleet.increment(VICTIM, counted, 4)
    event = fleet.create_event(VICTIM, run, counted, "before-crash")

    fleet.legion.nemesis("crash", node=VICTIM)
    with pytest.raises(httpx.TransportError):
        fleet.healthz(VICTIM)
    # Legion answers once the host is dead; a zombie not yet reaped by the kernel counts as dead.
    assert not pid_alive(pid), "crash did not kill the node's host process"
    written_while_down = fleet.create_case(PEER, run, "while-down")["id"]

    fleet.legion.nemesis("restart", node=VICTIM)
    wait_healthy(fleet, VICTIM)
    assert host_pid(fleet, VICTIM) != pid
    # Still partitioned on the peer's side: everything it has now came from its own disk.
    state = fleet.plugin_state(VICTIM, run)
    assert {c["id"] for c in state["cases"]} == local
    assert {c["id"]: c["counter"] for c in state["cases"]}[counted] == 4
    assert [e["id"] for e in state["events"]] == [event["id"]]
    assert fleet.call(VICTIM, "node.info")["transport_address"] == address
    assert fleet.node(VICTIM)["transport_address"] == address

    fleet.legion.nemesis("heal")
    everything = local | {written_while_down}
    eventually(lambda: _assert_cases(fleet, run, everything), timeout=15)

    # Graceful restart: same host process, /healthz answers 503 or nothing meanwhile.
    pid = host_pid(fleet, VICTIM)
    more = fleet.create_case(VICTIM, run, "before-graceful")["id"]
    with Watcher(lambda: fleet.healthz(VICTIM)) as health:
        fleet.legion.nemesis("restart", node=VICTIM)
        wait_healthy(fleet, VICTIM)
    assert 503 in health.seen and health.seen[-1] == 200, health.seen
    assert host_pid(fleet, VICTIM) == pid
    assert case_ids(fleet, VICTIM, run) >= everything | {more}
    assert fleet.call(VICTIM, "node.info")["transport_address"] == address
    rows = {r["node_id"]: r for r in fleet.call(PEER, "cluster_nodes.list")["nodes"]}
    assert rows[VICTIM]["transport_address"] == address
    eventually(lambda: _assert_cases(fleet, run, everything | {more}), timeout=15)


def test_rollback_resumes_after_a_crash(fleet: SimFleet) -> None:
    baseline = fleet.call(VICTIM, "generation.status")["generations"][0]["path"]
    job_id = fleet.call(VICTIM, "generation.rollback", {"generation": 1})["job_id"]

    def in_migrate() -> None:
        assert fleet.call(VICTIM, "rollout.status", {"job_id": job_id})["stage"] == "migrate"

    eventually(in_migrate, interval=0.01)
    fleet.legion.nemesis("crash", node=VICTIM)
    fleet.legion.nemesis("restart", node=VICTIM)
    wait_healthy(fleet, VICTIM)
    job = fleet.wait_job(VICTIM, job_id)
    assert job["state"] == "succeeded", job
    status = fleet.call(VICTIM, "generation.status")
    assert status["selected"] == status["running"] == baseline
    assert fleet.plugin_get(VICTIM, "/health").status_code == 404


def _assert_cases(fleet: SimFleet, run: str, expected: set[str]) -> None:
    for name in (PEER, VICTIM):
        assert case_ids(fleet, name, run) >= expected, name
