"""Fixtures of the simulator suite: fleets under tmp_path_factory, all stopped at session end."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tribesqa.clients.nip98 import Nip98Auth

sys.path.insert(0, str(Path(__file__).parent))

from fleetkit import FleetRegistry, JoinedCluster


@pytest.fixture(scope="session")
def fleets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetRegistry]:
    """Every fleet of the session; the finalizer stops them and checks no process is left."""
    registry = FleetRegistry(tmp_path_factory.mktemp)
    yield registry
    leftovers = registry.shutdown()
    assert not leftovers, f"simulator processes outlived their fleet: {leftovers}"


@pytest.fixture(scope="session")
def cluster(fleets: FleetRegistry) -> Iterator[JoinedCluster]:
    """hetzner-1 (init) + scaleway-1 and ovh-1 joined in one materialize; shared read-mostly."""
    fleet = fleets.start("cluster")
    init_record = fleet.legion.provision_init("hetzner")
    fleet.legion.plan_join("scaleway", 1)
    fleet.legion.plan_join("ovh", 1)
    seen: dict[str, list[str]] = {}
    done = threading.Event()
    url = f"{init_record['admin_url']}/api/admin/management"

    def watch() -> None:
        # Poll the init node as fast as it answers while Legion runs the graph.
        with httpx.Client(auth=Nip98Auth(fleet.admin_key), timeout=10) as client:
            while True:
                # One more sample after the graph run returned, so a starved thread still ends
                # on the final state.
                last = done.is_set()
                body = client.post(url, json={"method": "cluster_nodes.list"}).json()
                for row in body["result"]["nodes"]:
                    statuses = seen.setdefault(row["node_id"], [])
                    if not statuses or statuses[-1] != row["status"]:
                        statuses.append(row["status"])
                if last:
                    break

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        run = fleet.legion.materialize()
    finally:
        done.set()
        watcher.join(10)
    yield JoinedCluster(fleet, init_record, run, seen)
    fleets.release(fleet)
