"""The fault catalogue: each deliberate bug, switched on, observably breaks what it claims to.

The control (the same check passing without the fault) is the rest of this package:
test_fleet_join/membership/split_brain/rollout/nip98 assert the healthy behaviour.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import httpx
import pytest
from fleetkit import FAST_ROLLOUT, SUPERTEST, FleetRegistry, SimFleet, consistently, eventually

from tribes_sim.fault_catalogue import CATALOGUE
from tribes_sim.fleet import LegionClientError
from tribes_sim.http_auth import SKIPPABLE_CHECKS
from tribesqa.clients.keys import AdminKey
from tribesqa.clients.nip98 import authorization_header, build_auth_event, compute_event_id

pytestmark = pytest.mark.timeout(90)

INIT, JOIN = "hetzner-1", "scaleway-1"
INFO = b'{"method": "node.info", "params": {}}'


def rows_on(fleet: SimFleet, name: str) -> dict[str, dict[str, object]]:
    return {row["node_id"]: row for row in fleet.call(name, "cluster_nodes.list")["nodes"]}


def plugin_ids(fleet: SimFleet, name: str, run: str) -> tuple[set[str], set[str]]:
    state = fleet.plugin_state(name, run)
    return {c["id"] for c in state["cases"]}, {e["id"] for e in state["events"]}


def sees_case(fleet: SimFleet, name: str, run: str, case_id: str) -> Callable[[], None]:
    def check() -> None:
        assert case_id in plugin_ids(fleet, name, run)[0], (name, case_id)

    return check


# -- one check per fault ----------------------------------------------------------------------


def stuck_syncing(fleet: SimFleet) -> None:
    fleet.legion.plan_join("scaleway", 1)
    with pytest.raises(LegionClientError) as failed:
        fleet.legion.materialize()
    assert failed.value.code == "join-timeout", failed.value
    for name in (INIT, JOIN):
        assert rows_on(fleet, name)[JOIN]["status"] == "syncing", name
    assert fleet.legion.snapshot()["graphRuns"][-1]["state"] == "failed"


def decommission_deletes_row(fleet: SimFleet) -> None:
    fleet.legion.decommission(JOIN)
    legion_row = next(m for m in fleet.legion.snapshot()["clusterMembership"] if m["node"] == JOIN)
    assert legion_row["status"] == "decommissioned"

    def deleted() -> None:
        assert JOIN not in rows_on(fleet, INIT), "the decommissioned row is still there"

    eventually(deleted)
    assert fleet.call(INIT, "cluster_status")["decommissioned"] == 0


def rollback_keeps_tables(fleet: SimFleet) -> None:
    fleet.install_supertest([INIT])
    job = fleet.wait_job(INIT, fleet.call(INIT, "generation.rollback", {"generation": 1})["job_id"])
    assert job["state"] == "succeeded", job
    tables = fleet.sqlite_tables(INIT)
    assert {"supertest_cases", "supertest_events"} <= set(tables), tables


def one_way_sync(fleet: SimFleet) -> None:
    fleet.install_supertest([INIT, JOIN])
    run = uuid.uuid4().hex
    outbound = fleet.create_case(INIT, run, "from-init")
    eventually(sees_case(fleet, JOIN, run, outbound["id"]))  # init -> join works
    inbound = fleet.create_case(JOIN, run, "from-join")
    event = fleet.create_event(JOIN, run, inbound["id"], "from-join")

    def never_arrives() -> None:
        cases, events = plugin_ids(fleet, INIT, run)
        assert inbound["id"] not in cases and event["id"] not in events

    consistently(never_arrives, duration=1.0)


def heal_loses_writes(fleet: SimFleet) -> None:
    fleet.install_supertest([INIT, JOIN])
    run = uuid.uuid4().hex
    fleet.legion.nemesis("partition", node=JOIN)
    lost = fleet.create_case(JOIN, run, "written-while-cut-off")
    assert lost["id"] in plugin_ids(fleet, JOIN, run)[0]
    fleet.legion.nemesis("heal")
    for name in (INIT, JOIN):
        fleet.call(name, "sync.resync", {"full": True})
    marker = fleet.create_case(JOIN, run, "after-heal")
    eventually(sees_case(fleet, INIT, run, marker["id"]))  # the mesh works again
    for name in (INIT, JOIN):
        assert lost["id"] not in plugin_ids(fleet, name, run)[0], name


def wrong_transport_address(fleet: SimFleet) -> None:
    record = fleet.records()[INIT]
    reported = fleet.call(INIT, "node.info")["transport_address"]
    assert record["transport_address"] == reported
    assert record["sync_endpoint"] != reported, record


def stale_activated_at(fleet: SimFleet) -> None:
    before = rows_on(fleet, INIT)[JOIN]["activated_at"]
    fleet.legion.decommission(JOIN)
    fleet.legion.reactivate(JOIN)

    def active_again() -> None:
        for name in (INIT, JOIN):
            row = rows_on(fleet, name)[JOIN]
            assert row["status"] == "active", (name, row)
            assert row["activated_at"] == before, (name, row, before)

    eventually(active_again)


def backdated_decommission(fleet: SimFleet) -> None:
    fleet.legion.decommission(JOIN)

    def backdated() -> None:
        row = rows_on(fleet, INIT)[JOIN]
        assert row["status"] == "decommissioned", row
        stamped = datetime.fromisoformat(str(row["decommissioned_at"]))
        written = datetime.fromisoformat(str(row["updated_at"]))
        assert written - stamped >= timedelta(seconds=59), row

    eventually(backdated)


def selected_not_running(fleet: SimFleet) -> None:
    job_id = fleet.start_rollout(INIT)
    job = fleet.wait_job(INIT, job_id)
    assert job["state"] == "succeeded", job
    status = fleet.call(INIT, "generation.status")
    assert status["selected"] != status["running"], status
    assert status["reboot_required"] is True
    assert fleet.plugin_get(INIT, "/health").status_code == 404


def replay_accepted(fleet: SimFleet) -> None:
    url = fleet.management_url(INIT)
    body = b'{"method": "node.info", "params": {}}'
    headers = {
        "Authorization": authorization_header(build_auth_event(fleet.admin_key, url, "POST", body)),
        "Content-Type": "application/json",
    }
    first = fleet.plain.post(url, content=body, headers=headers)
    replayed = fleet.plain.post(url, content=body, headers=headers)
    assert first.status_code == 200, first.text
    assert replayed.status_code == 200 and replayed.json()["ok"] is True, replayed.text


def counter_not_merged(fleet: SimFleet) -> None:
    fleet.install_supertest([INIT, JOIN])
    run = uuid.uuid4().hex
    case = fleet.create_case(INIT, run, "counted")
    eventually(sees_case(fleet, JOIN, run, case["id"]))
    fleet.legion.nemesis("partition", node=JOIN)
    fleet.increment(INIT, case["id"], 2)
    fleet.increment(JOIN, case["id"], 3)
    fleet.legion.nemesis("heal")
    for name in (INIT, JOIN):
        fleet.call(name, "sync.resync", {"full": True})
    # Markers written after the increments: once each side sees the other's, it has applied
    # the other's increment too (events of one origin apply in order).
    markers = {INIT: fleet.create_case(INIT, run, "m1"), JOIN: fleet.create_case(JOIN, run, "m2")}
    eventually(sees_case(fleet, JOIN, run, markers[INIT]["id"]))
    eventually(sees_case(fleet, INIT, run, markers[JOIN]["id"]))
    counters = {
        name: {c["id"]: c["counter"] for c in fleet.plugin_state(name, run)["cases"]}[case["id"]]
        for name in (INIT, JOIN)
    }
    assert 5 not in counters.values(), counters
    assert set(counters.values()) <= {2, 3}, counters


def sync_mode_stuck_catching_up(fleet: SimFleet) -> None:
    status = fleet.call(INIT, "sync.status")
    assert rows_on(fleet, INIT)[INIT]["status"] == "active"
    assert status["pending_events"] == 0, status
    assert status["mode"] == "catching_up", status


def restart_moves_transport(fleet: SimFleet) -> None:
    before = fleet.call(JOIN, "node.info")["transport_address"]
    fleet.legion.nemesis("restart", node=JOIN)

    def ready() -> None:
        assert fleet.healthz(JOIN) == 200, "still restarting"

    eventually(ready, retry_on=(AssertionError, httpx.HTTPError))
    after = fleet.call(JOIN, "node.info")["transport_address"]
    assert after != before, (before, after)
    assert rows_on(fleet, INIT)[JOIN]["transport_address"] == before  # peers still dial the old one


def stale_connected_status(fleet: SimFleet) -> None:
    fleet.legion.nemesis("partition", node=JOIN)
    try:

        def reported_connected() -> None:
            servers = fleet.call(JOIN, "sync.status")["servers"]
            assert servers and all(s["connected"] and not s["failing_reason"] for s in servers)

        consistently(reported_connected, duration=1.0, min_checks=3)
    finally:
        fleet.legion.nemesis("heal")


def _decommission_join(fleet: SimFleet) -> None:
    fleet.legion.decommission(JOIN)

    def archived_on_itself() -> None:
        assert rows_on(fleet, JOIN)[JOIN]["status"] == "decommissioned"

    eventually(archived_on_itself)


def decommissioned_keeps_syncing(fleet: SimFleet) -> None:
    _decommission_join(fleet)

    def still_pulling() -> None:
        sync = fleet.call(JOIN, "sync.status")
        assert sync["mode"] == "live", sync
        assert [(s["node_id"], s["connected"]) for s in sync["servers"]] == [(INIT, True)], sync

    eventually(still_pulling)


def decommissioned_reports_active(fleet: SimFleet) -> None:
    _decommission_join(fleet)
    assert fleet.call(JOIN, "cluster_status")["self_status"] == "active"


def decommissioned_still_receives(fleet: SimFleet) -> None:
    _decommission_join(fleet)
    sync = fleet.call(JOIN, "sync.status")
    assert sync["mode"] == "stopped" and sync["servers"] == [], sync  # it reports itself right
    before = sync["version_vector"].get(INIT, 0)
    fleet.call(INIT, "sync.resync", {"full": True})  # INIT writes its own row again

    def received() -> None:
        assert fleet.call(JOIN, "sync.status")["version_vector"].get(INIT, 0) > before

    eventually(received)


def resync_rejoins_decommissioned(fleet: SimFleet) -> None:
    _decommission_join(fleet)
    fleet.call(JOIN, "sync.resync", {"full": True})
    # Read raw: the row it wrote keeps decommissioned_at, which the contract model refuses.
    rows = fleet.post_management(JOIN, "cluster_nodes.list").json()["result"]["nodes"]
    own = next(row for row in rows if row["node_id"] == JOIN)
    assert own["status"] in ("syncing", "active"), own


def unknown_method_500(fleet: SimFleet) -> None:
    response = fleet.post_management(INIT, "cluster.explode")
    assert response.status_code == 500, response.text
    assert not response.text.lstrip().startswith("{"), response.text


def invalid_params_accepted(fleet: SimFleet) -> None:
    response = fleet.post_management(INIT, "node.info", [1])
    assert response.status_code == 200 and response.json()["ok"] is True, response.text


def rollout_ignores_missing_substitutes(fleet: SimFleet) -> None:
    plugin = {"name": "not-a-plugin", "commit": "abc1234"}
    preview = fleet.call(INIT, "rollout.preview", {"plugins": [plugin]})
    assert preview["substitutes"]["missing"] == ["tribes-plugin-not-a-plugin"], preview
    job = fleet.call(INIT, "rollout.start", {"plan_id": preview["plan_id"]})
    assert fleet.wait_job(INIT, job["job_id"])["state"] == "succeeded"
    generations = fleet.call(INIT, "generation.status")["generations"]
    assert any("not-a-plugin" in g["plugins"] for g in generations), generations


def concurrent_rollout_accepted(fleet: SimFleet) -> None:
    plans = [
        fleet.call(INIT, "rollout.preview", {"plugins": [{"name": "supertest", "commit": c}]})
        for c in ("abc1234", "def5678")
    ]
    first = fleet.call(INIT, "rollout.start", {"plan_id": plans[0]["plan_id"]})
    second = fleet.call(INIT, "rollout.start", {"plan_id": plans[1]["plan_id"]})
    rollback = fleet.call(INIT, "generation.rollback", {"generation": 1})
    assert len({first["job_id"], second["job_id"], rollback["job_id"]}) == 3
    for job in (first, second, rollback):
        fleet.wait_job(INIT, job["job_id"])


def unknown_job_200(fleet: SimFleet) -> None:
    job = fleet.call(INIT, "rollout.status", {"job_id": "rollout-that-never-was"})
    assert job["state"] == "pending" and job["log"] == [], job


def sync_status_miscounted(fleet: SimFleet) -> None:
    sync = fleet.post_management(INIT, "sync.status").json()["result"]
    assert sync["high_water_mark"] == sync["applied_events"] > 0, sync
    assert sync["pending_events"] == sync["high_water_mark"], sync


def snapshot_leaks_secret(fleet: SimFleet) -> None:
    record = fleet.legion.snapshot()["nodes"][0]
    leaked = record["ssh"].get("private_key", "")
    # Asserted without showing the key: a failing assert must not print it either.
    assert "PRIVATE KEY-----" in leaked, sorted(record["ssh"])
    assert "private_key" not in fleet.records()[INIT]["ssh"]  # the list stays clean


def snapshot_drops_membership(fleet: SimFleet) -> None:
    fleet.legion.decommission(JOIN)
    assert fleet.records()[JOIN]["status"] == "decommissioned"
    membership = fleet.legion.snapshot()["clusterMembership"]
    assert [row["node"] for row in membership] == [INIT], membership


def non_json_body_500(fleet: SimFleet) -> None:
    response = fleet.http.post(fleet.management_url(INIT), content=b"not json")
    assert response.status_code == 500, response.text


def unknown_plan_accepted(fleet: SimFleet) -> None:
    job = fleet.call(INIT, "rollout.start", {"plan_id": "plan-that-never-was"})
    assert fleet.wait_job(INIT, job["job_id"])["kind"] == "rollout"


def rollback_unknown_generation_accepted(fleet: SimFleet) -> None:
    job = fleet.call(INIT, "generation.rollback", {"generation": 99})
    assert fleet.wait_job(INIT, job["job_id"])["state"] == "succeeded"


def healthz_plain_text(fleet: SimFleet) -> None:
    response = fleet.plain.get(f"{fleet.node(INIT)['admin_url']}/healthz")
    assert response.status_code == 200 and response.text == "OK", response.text


def plugin_health_before_install(fleet: SimFleet) -> None:
    assert fleet.plugin_get(INIT, "/health").status_code == 200
    assert fleet.plugin_get(INIT, "/schema").status_code == 404  # nothing else is served


def plugin_schema_incomplete(fleet: SimFleet) -> None:
    fleet.install_supertest([INIT])
    schema = fleet.plugin_get(INIT, "/schema").json()
    assert schema["tables"] == ["supertest_cases"], schema
    assert "supertest_events" in fleet.sqlite_tables(INIT)


def last_node_decommission_accepted(fleet: SimFleet) -> None:
    assert fleet.legion.decommission(INIT)["status"] == "decommissioned"


def interrupted_run_leaves_provisioning(fleet: SimFleet) -> None:
    fleet.legion.plan_join("scaleway", 1)
    fleet.legion.plan_join("ovh", 1)
    run = fleet.legion.materialize(interrupt_after=1)
    assert run["state"] == "interrupted" and run["materialized"] == [JOIN], run
    assert fleet.records()["ovh-1"]["status"] == "provisioning"


# -- NIP-98: requests a healthy node refuses (tests/sim/test_fleet_nip98.py), answered 200 ------


def auth_event(
    fleet: SimFleet,
    url: str,
    *,
    key: AdminKey | None = None,
    method: str = "POST",
    **changes: object,
) -> dict[str, object]:
    """A NIP-98 event for ``method url`` and INFO, with ``changes`` applied and re-signed."""
    key = key or fleet.admin_key
    event = build_auth_event(key, url, method, INFO, created_at=changes.pop("created_at", None))  # type: ignore[arg-type]
    if changes:
        event.update(changes)
        event["id"] = compute_event_id(
            event["pubkey"], event["created_at"], event["kind"], event["tags"], event["content"]
        )
        event["sig"] = key.sign(bytes.fromhex(event["id"])).hex()
    return event


def answered(
    fleet: SimFleet, name: str, event: dict[str, object] | None, body: bytes = INFO, **headers: str
) -> int:
    """Send ``event`` (None: no Authorization) to ``name``; the HTTP status it answers."""
    if event is not None:
        headers["Authorization"] = authorization_header(event)
    headers["Content-Type"] = "application/json"
    response = fleet.plain.post(fleet.management_url(name), content=body, headers=headers)
    if response.status_code == 200:
        assert response.json()["result"]["node_id"] == name, response.text
    return response.status_code


def host_of(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[0]


def host_header_trusted(fleet: SimFleet) -> None:
    signed_for_init = auth_event(fleet, fleet.management_url(INIT))
    assert answered(fleet, JOIN, signed_for_init) == 401  # the u tag still names another node
    forged_host = host_of(fleet.management_url(INIT))
    assert answered(fleet, JOIN, signed_for_init, Host=forged_host) == 200
    arbitrary = auth_event(fleet, "http://admin.attacker.invalid:8443/api/admin/management")
    assert answered(fleet, INIT, arbitrary, Host="admin.attacker.invalid:8443") == 200


def auth_optional(fleet: SimFleet) -> None:
    assert answered(fleet, INIT, None) == 200
    assert answered(fleet, INIT, None, Authorization="Nostr !!not-base64!!") == 200


def auth_signature_unchecked(fleet: SimFleet) -> None:
    url = fleet.management_url(INIT)
    event = auth_event(fleet, url)
    sig = str(event["sig"])
    event["sig"] = ("1" if sig[0] == "0" else "0") + sig[1:]
    assert answered(fleet, INIT, event) == 200
    assert answered(fleet, INIT, auth_event(fleet, url, kind=1)) == 200
    assert answered(fleet, INIT, auth_event(fleet, url, content="let me in")) == 200


def stale_auth_accepted(fleet: SimFleet) -> None:
    url, now = fleet.management_url(INIT), int(datetime.now().timestamp())
    assert answered(fleet, INIT, auth_event(fleet, url, created_at=now - 600)) == 200
    assert answered(fleet, INIT, auth_event(fleet, url, created_at=now + 600)) == 200


def auth_url_unchecked(fleet: SimFleet) -> None:
    elsewhere = auth_event(fleet, fleet.management_url(INIT) + "/elsewhere")
    assert answered(fleet, INIT, elsewhere) == 200
    assert answered(fleet, JOIN, auth_event(fleet, fleet.management_url(INIT))) == 200


def auth_method_unchecked(fleet: SimFleet) -> None:
    assert answered(fleet, INIT, auth_event(fleet, fleet.management_url(INIT), method="GET")) == 200


def auth_payload_unchecked(fleet: SimFleet) -> None:
    other = b'{"method": "node.info", "params": {"probe": "not the signed body"}}'
    assert answered(fleet, INIT, auth_event(fleet, fleet.management_url(INIT)), other) == 200


def allowlist_open(fleet: SimFleet) -> None:
    stranger = AdminKey.generate()
    assert answered(fleet, INIT, auth_event(fleet, fleet.management_url(INIT), key=stranger)) == 200


def refused_event_cached(fleet: SimFleet) -> None:
    event = auth_event(fleet, fleet.management_url(INIT))
    assert answered(fleet, INIT, event, b'{"method": "node.info", "params": {"x": 1}}') == 401
    response = fleet.plain.post(
        fleet.management_url(INIT),
        content=INFO,
        headers={"Authorization": authorization_header(event), "Content-Type": "application/json"},
    )
    assert response.status_code == 401 and response.json()["error"] == "replayed-auth-event"


def servers_of(fleet: SimFleet, name: str) -> dict[str, dict[str, object]]:
    return {s["url"]: s for s in fleet.call(name, "sync.status")["servers"]}


def generation_paths(fleet: SimFleet, name: str) -> list[str]:
    return [g["path"] for g in fleet.call(name, "generation.status")["generations"]]


def scope_narrowed(fleet: SimFleet) -> None:
    legion_row = next(m for m in fleet.legion.snapshot()["clusterMembership"] if m["node"] == INIT)
    assert legion_row["scope"] == "full", legion_row
    assert rows_on(fleet, INIT)[INIT]["scope"] == "control"


def peer_transport_https(fleet: SimFleet) -> None:
    legion_address = fleet.records()[JOIN]["transport_address"]
    assert legion_address.startswith("http://"), legion_address
    assert rows_on(fleet, JOIN)[JOIN]["transport_address"] == legion_address
    assert rows_on(fleet, INIT)[JOIN]["transport_address"] == "https://" + legion_address[7:]


def decommissioned_still_synced(fleet: SimFleet) -> None:
    address = fleet.records()[JOIN]["transport_address"]
    fleet.legion.decommission(JOIN)

    def still_a_server() -> None:
        assert rows_on(fleet, INIT)[JOIN]["status"] == "decommissioned"
        assert address in servers_of(fleet, INIT), servers_of(fleet, INIT)

    eventually(still_a_server)
    consistently(still_a_server, duration=0.5)


def replace_skips_decommission(fleet: SimFleet) -> None:
    replacement = fleet.legion.replace(JOIN, "ovh")
    assert fleet.records()[JOIN]["status"] == "decommissioned"
    for name in (INIT, replacement["name"]):
        assert rows_on(fleet, name)[JOIN]["status"] == "active", name


def late_peer_not_subscribed(fleet: SimFleet) -> None:
    address = fleet.records()[JOIN]["transport_address"]

    def not_subscribed() -> None:
        assert rows_on(fleet, INIT)[JOIN]["status"] == "active"
        assert address not in servers_of(fleet, INIT), servers_of(fleet, INIT)

    consistently(not_subscribed, duration=1.0)
    init_address = fleet.records()[INIT]["transport_address"]
    assert init_address in servers_of(fleet, JOIN)  # the joiner did subscribe to the init node


def joiner_skips_tribe(fleet: SimFleet) -> None:
    assert fleet.call(INIT, "tribe.status")["version"] >= 1
    assert rows_on(fleet, JOIN)[JOIN]["status"] == "active"
    fleet.refused(JOIN, "tribe.status", None, 409, "tribe-unknown")


def outage_never_repairs(fleet: SimFleet) -> None:
    fleet.install_supertest([INIT, JOIN])
    run = uuid.uuid4().hex
    fleet.legion.nemesis("outage", node=JOIN, active=True)
    held = fleet.create_case(JOIN, run, "written-during-the-outage")
    fleet.legion.nemesis("outage", node=JOIN, active=False)

    def still_held() -> None:
        assert held["id"] not in plugin_ids(fleet, INIT, run)[0]

    consistently(still_held, duration=1.5)


def interrupt_leaves_half_member(fleet: SimFleet) -> None:
    fleet.legion.plan_join("scaleway", 1)
    leftover = fleet.legion.plan_join("ovh", 1)[0]["name"]
    run = fleet.legion.materialize(interrupt_after=1)
    assert run["state"] == "interrupted", run
    assert leftover not in run["materialized"]
    assert fleet.records()[leftover]["status"] == "planned"
    # Pushed before the run stopped: the row stays (the node may even have turned it active).
    assert leftover in rows_on(fleet, INIT), rows_on(fleet, INIT)


def selected_from_wrong_link(fleet: SimFleet) -> None:
    fleet.install_supertest([INIT])
    baseline, plugin = generation_paths(fleet, INIT)
    link = fleet.directory / "nodes" / INIT / "root" / "var" / "guix" / "profiles" / "system"
    assert link.resolve().name == plugin.rsplit("/", 1)[-1]  # the profile points at the plugin
    status = fleet.call(INIT, "generation.status")
    assert status["selected"] == baseline and status["running"] == plugin, status


def preview_hides_restart(fleet: SimFleet) -> None:
    preview = fleet.call(INIT, "rollout.preview", {"plugins": [SUPERTEST]})
    assert preview["delta"]["plugins_added"] == ["supertest"]
    assert preview["requires_restart"] == [], preview


def substitutes_unreported(fleet: SimFleet) -> None:
    plugins = [{"name": "not-a-plugin", "commit": "0" * 40}]
    preview = fleet.call(INIT, "rollout.preview", {"plugins": plugins})
    assert preview["substitutes"] == {"available": True, "missing": []}, preview


def rollback_not_restarted(fleet: SimFleet) -> None:
    fleet.install_supertest([INIT])
    baseline, plugin = generation_paths(fleet, INIT)
    job = fleet.wait_job(INIT, fleet.call(INIT, "generation.rollback", {"generation": 1})["job_id"])
    assert job["state"] == "succeeded", job
    status = fleet.call(INIT, "generation.status")
    assert status["selected"] == baseline and status["running"] == plugin, status


def plugin_runtime_survives_rollback(fleet: SimFleet) -> None:
    fleet.install_supertest([INIT])
    job = fleet.wait_job(INIT, fleet.call(INIT, "generation.rollback", {"generation": 1})["job_id"])
    assert job["state"] == "succeeded", job
    assert "supertest_cases" not in fleet.sqlite_tables(INIT)
    assert fleet.plugin_get(INIT, "/health").status_code == 200


def rollback_replays_plan(fleet: SimFleet) -> None:
    fleet.install_supertest([INIT])
    baseline, plugin = generation_paths(fleet, INIT)
    job = fleet.wait_job(INIT, fleet.call(INIT, "generation.rollback", {"generation": 1})["job_id"])
    assert job["state"] == "succeeded", job
    assert fleet.call(INIT, "generation.status")["running"] == baseline
    fleet.legion.nemesis("restart", node=INIT)

    def plugin_back() -> None:
        status = fleet.call(INIT, "generation.status")
        assert status["selected"] == status["running"] == plugin, status

    eventually(plugin_back)


def sync_stopped_after_rollback(fleet: SimFleet) -> None:
    fleet.install_supertest([INIT, JOIN])
    job = fleet.wait_job(INIT, fleet.call(INIT, "generation.rollback", {"generation": 1})["job_id"])
    assert job["state"] == "succeeded", job

    def isolated() -> None:
        assert fleet.call(INIT, "cluster_status")["status"] == "isolated"

    eventually(isolated)
    consistently(isolated, duration=1.0)


def cases_not_replicated(fleet: SimFleet) -> None:
    fleet.install_supertest([INIT, JOIN])
    run = uuid.uuid4().hex
    case = fleet.create_case(INIT, run, "from-init")
    fleet.create_event(INIT, run, case["id"], "marker")  # events still replicate

    def event_arrives() -> None:
        assert plugin_ids(fleet, JOIN, run)[1], "the marker event has not arrived"

    eventually(event_arrives)
    assert case["id"] not in plugin_ids(fleet, JOIN, run)[0]


def increments_not_replicated(fleet: SimFleet) -> None:
    fleet.install_supertest([INIT, JOIN])
    run = uuid.uuid4().hex
    case = fleet.create_case(INIT, run, "counted")
    eventually(sees_case(fleet, JOIN, run, case["id"]))
    fleet.increment(JOIN, case["id"], 3)
    marker = fleet.create_case(JOIN, run, "after-the-increment")
    eventually(sees_case(fleet, INIT, run, marker["id"]))
    counters = {c["id"]: c["counter"] for c in fleet.plugin_state(INIT, run)["cases"]}
    assert counters[case["id"]] == 0, counters


def partition_leaks_publishes(fleet: SimFleet) -> None:
    fleet.install_supertest([INIT, JOIN])
    run = uuid.uuid4().hex
    fleet.legion.nemesis("partition", node=JOIN)
    leaked = fleet.create_case(INIT, run, "written-on-the-other-side")
    eventually(sees_case(fleet, JOIN, run, leaked["id"]))  # crossed the partition
    fleet.legion.nemesis("heal")


def graph_run_one_node(fleet: SimFleet) -> None:
    first = fleet.legion.plan_join("scaleway", 1)[0]["name"]
    second = fleet.legion.plan_join("ovh", 1)[0]["name"]
    run = fleet.legion.materialize()
    assert run["state"] == "succeeded" and run["materialized"] == [first], run
    assert fleet.records()[second]["status"] == "planned"


def status_counts_peers(fleet: SimFleet) -> None:
    rows = rows_on(fleet, INIT)
    assert sum(1 for row in rows.values() if row["status"] == "active") == 2
    assert fleet.call(INIT, "cluster_status")["active"] == 1


def _init_answers(fleet: SimFleet, count: int = 6) -> list[dict[str, dict[str, object]]]:
    """``count`` answers of the init node's cluster_nodes.list in a row (the flicker faults
    distort one of the first answers in which the joined node is active)."""
    return [rows_on(fleet, INIT) for _ in range(count)]


def row_flaps(fleet: SimFleet) -> None:
    statuses = [rows[JOIN]["status"] for rows in _init_answers(fleet)]
    flapped = [i for i, s in enumerate(statuses) if s == "syncing" and "active" in statuses[:i]]
    assert len(flapped) == 1, statuses
    assert statuses[-1] == "active", statuses


def activation_stamp_regresses(fleet: SimFleet) -> None:
    stamps = [str(rows[JOIN]["activated_at"]) for rows in _init_answers(fleet)]
    older = [i for i in range(1, len(stamps)) if stamps[i] < stamps[i - 1]]
    assert len(older) == 1, stamps
    assert stamps[-1] == stamps[0], stamps


def ghost_row(fleet: SimFleet) -> None:
    answers = [sorted(rows) for rows in _init_answers(fleet)]
    ghosts = [ids for ids in answers if set(ids) - {INIT, JOIN}]
    assert ghosts == [[INIT, JOIN, f"{JOIN}-ghost"]], answers
    assert answers[-1] == [INIT, JOIN], answers


def decommissioned_server_flickers(fleet: SimFleet) -> None:
    _decommission_join(fleet)
    address = rows_on(fleet, INIT)[JOIN]["transport_address"]
    answers = [
        [server["url"] for server in fleet.call(INIT, "sync.status")["servers"]] for _ in range(6)
    ]
    back = [i for i, urls in enumerate(answers) if address in urls]
    assert len(back) == 1 and back[0] > 0, answers
    assert address not in answers[-1], answers


def malformed_authorization_accepted(fleet: SimFleet) -> None:
    assert answered(fleet, INIT, None, Authorization="Nostr !!not-base64!!") == 200
    response = fleet.plain.post(
        fleet.management_url(INIT), content=INFO, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 401 and response.json()["error"] == "auth-required"


def allowlist_checked_first(fleet: SimFleet) -> None:
    event = auth_event(fleet, fleet.management_url(INIT), key=AdminKey.generate())
    sig = str(event["sig"])
    event["sig"] = ("1" if sig[0] == "0" else "0") + sig[1:]
    response = fleet.plain.post(
        fleet.management_url(INIT),
        content=INFO,
        headers={"Authorization": authorization_header(event), "Content-Type": "application/json"},
    )
    assert response.status_code == 401 and response.json()["error"] == "forbidden-pubkey"


def snapshot_drops_decommissioned(fleet: SimFleet) -> None:
    fleet.legion.decommission(JOIN)
    assert fleet.records()[JOIN]["status"] == "decommissioned"
    membership = fleet.legion.snapshot()["clusterMembership"]
    assert [row["node"] for row in membership] == [INIT], membership


def decommissioned_forgets_own_row(fleet: SimFleet) -> None:
    fleet.legion.decommission(JOIN)

    def archived_elsewhere_and_gone_on_itself() -> None:
        assert rows_on(fleet, INIT)[JOIN]["status"] == "decommissioned"
        assert JOIN not in rows_on(fleet, JOIN)
        assert fleet.records()[JOIN]["status"] == "decommissioned"

    eventually(archived_elsewhere_and_gone_on_itself)


def rollback_not_resumed(fleet: SimFleet) -> None:
    job_id = fleet.call(INIT, "generation.rollback", {"generation": 1})["job_id"]
    fleet.legion.nemesis("restart", node=INIT)
    job = fleet.wait_job(INIT, job_id)
    assert job["state"] == "failed", job
    assert "interrupted by a restart" in job["error"]["message"], job


def graph_run_allows_decommission(fleet: SimFleet) -> None:
    fleet.legion.nemesis("outage", node=JOIN, active=True)
    fleet.call(JOIN, "sync.resync", {"full": True})  # its own new events are held back
    third = fleet.legion.plan_join("ovh", 1)[0]["name"]
    with ThreadPoolExecutor(1) as pool:
        run = pool.submit(fleet.legion.materialize)  # waits for a join the outage holds

        def joining() -> None:
            assert fleet.records()[third]["status"] == "provisioning"

        eventually(joining)
        record = fleet.legion.decommission(INIT)  # a healthy Legion refuses: graph run running
        assert record["status"] == "decommissioned", record
        fleet.legion.nemesis("outage", node=JOIN, active=False)
        # With its init node gone mid-join the run may fail: only the decommission is checked.
        with pytest.raises(LegionClientError, match="join-timeout"):
            run.result(timeout=30)


def success_report_stale_generation(fleet: SimFleet) -> None:
    baseline = fleet.call(INIT, "generation.status")["running"]
    job_id = fleet.start_rollout(INIT)
    first = fleet.wait_job(INIT, job_id)
    assert first["state"] == "succeeded", first
    assert first["selected"] == first["running"] == baseline, first
    again = fleet.call(INIT, "rollout.status", {"job_id": job_id})
    status = fleet.call(INIT, "generation.status")
    assert again["running"] == status["running"] == status["selected"] != baseline, (again, status)


def case_counter_flickers_back(fleet: SimFleet) -> None:
    fleet.install_supertest([INIT])
    run = uuid.uuid4().hex
    case = fleet.create_case(INIT, run, "counted")
    fleet.increment(INIT, case["id"], 2)
    answers = [
        next(c for c in fleet.plugin_state(INIT, run)["cases"] if c["id"] == case["id"])
        for _ in range(6)
    ]
    assert [i for i, c in enumerate(answers) if c["counter"] == 0] == [1], answers
    assert answers[1]["updated_at"] < answers[0]["updated_at"], answers
    assert answers[-1] == answers[0], answers


def acknowledged_event_id_differs(fleet: SimFleet) -> None:
    fleet.install_supertest([INIT])
    run = uuid.uuid4().hex
    case = fleet.create_case(INIT, run, "case")
    event = fleet.create_event(INIT, run, case["id"], "created")
    _, events = plugin_ids(fleet, INIT, run)
    assert len(events) == 1 and event["id"] not in events, (event, events)


# A rollback long enough for a restart to land inside it.
SLOW_MIGRATE = {"pull": 0.05, "build": 0.05, "switch": 0.05, "migrate": 3.0, "restart": 0.15}


# name -> (nodes, extra config, check)
CHECKS: dict[str, tuple[int, dict[str, object], Callable[[SimFleet], None]]] = {
    "stuck-syncing": (1, {"legion_wait_active_s": 1.0}, stuck_syncing),
    "decommission-deletes-row": (2, {}, decommission_deletes_row),
    "rollback-keeps-tables": (1, {}, rollback_keeps_tables),
    "one-way-sync": (2, {}, one_way_sync),
    "heal-loses-writes": (2, {}, heal_loses_writes),
    "wrong-transport-address": (1, {}, wrong_transport_address),
    "backdated-decommission": (2, {}, backdated_decommission),
    "stale-activated-at": (2, {}, stale_activated_at),
    "selected-not-running": (1, {}, selected_not_running),
    "replay-accepted": (1, {}, replay_accepted),
    "counter-not-merged": (2, {}, counter_not_merged),
    "sync-mode-stuck-catching-up": (1, {}, sync_mode_stuck_catching_up),
    "restart-moves-transport": (2, {}, restart_moves_transport),
    "stale-connected-status": (2, {}, stale_connected_status),
    "decommissioned-keeps-syncing": (2, {}, decommissioned_keeps_syncing),
    "decommissioned-reports-active": (2, {}, decommissioned_reports_active),
    "decommissioned-still-receives": (2, {}, decommissioned_still_receives),
    "resync-rejoins-decommissioned": (2, {}, resync_rejoins_decommissioned),
    "unknown-method-500": (1, {}, unknown_method_500),
    "invalid-params-accepted": (1, {}, invalid_params_accepted),
    "rollout-ignores-missing-substitutes": (1, {}, rollout_ignores_missing_substitutes),
    "concurrent-rollout-accepted": (1, {}, concurrent_rollout_accepted),
    "unknown-job-200": (1, {}, unknown_job_200),
    "sync-status-miscounted": (1, {}, sync_status_miscounted),
    "snapshot-leaks-secret": (1, {}, snapshot_leaks_secret),
    "snapshot-drops-membership": (2, {}, snapshot_drops_membership),
    "non-json-body-500": (1, {}, non_json_body_500),
    "unknown-plan-accepted": (1, {}, unknown_plan_accepted),
    "rollback-unknown-generation-accepted": (1, {}, rollback_unknown_generation_accepted),
    "healthz-plain-text": (1, {}, healthz_plain_text),
    "plugin-health-before-install": (1, {}, plugin_health_before_install),
    "plugin-schema-incomplete": (1, {}, plugin_schema_incomplete),
    "last-node-decommission-accepted": (1, {}, last_node_decommission_accepted),
    "interrupted-run-leaves-provisioning": (1, {}, interrupted_run_leaves_provisioning),
    "host-header-trusted": (2, {}, host_header_trusted),
    "auth-optional": (1, {}, auth_optional),
    "auth-signature-unchecked": (1, {}, auth_signature_unchecked),
    "stale-auth-accepted": (1, {}, stale_auth_accepted),
    "auth-url-unchecked": (2, {}, auth_url_unchecked),
    "auth-method-unchecked": (1, {}, auth_method_unchecked),
    "auth-payload-unchecked": (1, {}, auth_payload_unchecked),
    "allowlist-open": (1, {}, allowlist_open),
    "refused-event-cached": (1, {}, refused_event_cached),
    "scope-narrowed": (1, {}, scope_narrowed),
    "peer-transport-https": (2, {}, peer_transport_https),
    "decommissioned-still-synced": (2, {}, decommissioned_still_synced),
    "replace-skips-decommission": (2, {}, replace_skips_decommission),
    "late-peer-not-subscribed": (2, {}, late_peer_not_subscribed),
    "joiner-skips-tribe": (2, {}, joiner_skips_tribe),
    "outage-never-repairs": (2, {}, outage_never_repairs),
    "interrupt-leaves-half-member": (1, {}, interrupt_leaves_half_member),
    "selected-from-wrong-link": (1, {}, selected_from_wrong_link),
    "preview-hides-restart": (1, {}, preview_hides_restart),
    "substitutes-unreported": (1, {}, substitutes_unreported),
    "rollback-not-restarted": (1, {}, rollback_not_restarted),
    "plugin-runtime-survives-rollback": (1, {}, plugin_runtime_survives_rollback),
    "rollback-replays-plan": (1, {}, rollback_replays_plan),
    "sync-stopped-after-rollback": (2, {}, sync_stopped_after_rollback),
    "cases-not-replicated": (2, {}, cases_not_replicated),
    "increments-not-replicated": (2, {}, increments_not_replicated),
    "partition-leaks-publishes": (2, {}, partition_leaks_publishes),
    "graph-run-one-node": (1, {}, graph_run_one_node),
    "status-counts-peers": (2, {}, status_counts_peers),
    "row-flaps": (2, {}, row_flaps),
    "activation-stamp-regresses": (2, {}, activation_stamp_regresses),
    "ghost-row": (2, {}, ghost_row),
    "decommissioned-server-flickers": (2, {}, decommissioned_server_flickers),
    "malformed-authorization-accepted": (1, {}, malformed_authorization_accepted),
    "allowlist-checked-first": (1, {}, allowlist_checked_first),
    "snapshot-drops-decommissioned": (2, {}, snapshot_drops_decommissioned),
    "decommissioned-forgets-own-row": (2, {}, decommissioned_forgets_own_row),
    "rollback-not-resumed": (1, {"stage_s": SLOW_MIGRATE}, rollback_not_resumed),
    "graph-run-allows-decommission": (
        2,
        {"legion_wait_active_s": 5.0},
        graph_run_allows_decommission,
    ),
    "success-report-stale-generation": (1, {}, success_report_stale_generation),
    "case-counter-flickers-back": (1, {}, case_counter_flickers_back),
    "acknowledged-event-id-differs": (1, {}, acknowledged_event_id_differs),
}


def test_every_catalogue_fault_has_a_check() -> None:
    assert sorted(CHECKS) == sorted(CATALOGUE)


def test_every_nip98_check_a_fault_switches_off_is_a_catalogue_fault() -> None:
    assert set(SKIPPABLE_CHECKS) <= set(CATALOGUE)


@pytest.mark.parametrize("fault", sorted(CATALOGUE))
def test_fault_is_observable(fault: str, fleets: FleetRegistry) -> None:
    nodes, config, check = CHECKS[fault]
    # Both nodes in one host process keeps these small fleets cheap (no crash is involved).
    fleet = fleets.start(
        f"fault-{fault}",
        nodes=nodes,
        faults=[fault],
        nodes_per_host=2,
        **{**FAST_ROLLOUT, **config},
    )
    try:
        check(fleet)
    finally:
        fleets.release(fleet)
