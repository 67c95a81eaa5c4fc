"""Rollout and rollback with plugin migrations on one node, observed while they run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fleetkit import SUPERTEST, FleetRegistry, SimFleet, Watcher, eventually

pytestmark = pytest.mark.timeout(120)

NODE = "hetzner-1"
# Slow enough stages that "selected != running", the refusals while a job runs and the
# restart's 503 are easy to observe, even on a loaded machine.
STAGES = {"pull": 0.05, "build": 0.05, "switch": 0.1, "migrate": 1.5, "restart": 0.2}


@pytest.fixture(scope="module")
def fleet(fleets: FleetRegistry) -> Iterator[SimFleet]:
    fleet = fleets.start("rollout", nodes=1, stage_s=STAGES, restart_s=1.0)
    yield fleet
    fleets.release(fleet)


def test_missing_substitute_is_refused_without_switching(fleet: SimFleet) -> None:
    before = fleet.call(NODE, "generation.status")
    preview = fleet.call(
        NODE, "rollout.preview", {"plugins": [{"name": "unknown-plugin", "commit": "abc1234"}]}
    )
    assert preview["substitutes"] == {
        "available": False,
        "missing": ["tribes-plugin-unknown-plugin"],
    }
    assert preview["delta"]["plugins_added"] == ["unknown-plugin"]
    fleet.refused(
        NODE, "rollout.start", {"plan_id": preview["plan_id"]}, 409, "substitutes-missing"
    )
    assert fleet.call(NODE, "generation.status") == before
    fleet.refused(NODE, "rollout.start", {"plan_id": "plan-nope"}, 409, "unknown-plan")
    fleet.refused(NODE, "rollout.status", {"job_id": "job-nope"}, 409, "unknown-job")
    fleet.refused(NODE, "generation.rollback", {"generation": 42}, 409, "unknown-generation")


def test_rollout_then_rollback(fleet: SimFleet) -> None:
    baseline = fleet.call(NODE, "generation.status")
    assert baseline["selected"] == baseline["running"]
    assert [g["number"] for g in baseline["generations"]] == [1]
    assert fleet.plugin_get(NODE, "/health").status_code == 404
    assert "supertest_cases" not in fleet.sqlite_tables(NODE)

    preview = fleet.call(NODE, "rollout.preview", {"plugins": [SUPERTEST]})
    assert preview["delta"]["plugins_added"] == ["supertest"]
    assert preview["delta"]["plugins_removed"] == []
    assert preview["substitutes"] == {"available": True, "missing": []}
    assert preview["requires_restart"]

    with Watcher(lambda: fleet.healthz(NODE)) as health:
        job_id = fleet.call(NODE, "rollout.start", {"plan_id": preview["plan_id"]})["job_id"]
        # A second start while the job runs is refused.
        again = fleet.call(NODE, "rollout.preview", {"plugins": [SUPERTEST]})
        fleet.refused(
            NODE, "rollout.start", {"plan_id": again["plan_id"]}, 409, "rollout-in-progress"
        )
        fleet.refused(NODE, "generation.rollback", {"generation": 1}, 409, "rollout-in-progress")
        split: list[dict[str, Any]] = []

        def done() -> dict[str, Any]:
            job = fleet.call(NODE, "rollout.status", {"job_id": job_id})
            if job["selected"] != job["running"]:
                split.append(job)
            assert job["state"] in ("succeeded", "failed")
            return job

        job = eventually(done, timeout=20, interval=0.01)
    assert job["state"] == "succeeded" and job["stage"] == "done", job
    assert job["kind"] == "rollout" and job["error"] is None
    assert split, "never saw selected != running while the rollout ran"
    assert split[0]["running"] == baseline["running"]
    assert split[0]["stage"] in ("switch", "migrate", "restart"), split[0]
    started = [line.split("stage ")[1].split()[0] for line in job["log"] if " started" in line]
    assert started == ["pull", "build", "switch", "migrate", "restart"], job["log"]
    assert any("up migrations" in line for line in job["log"]), job["log"]
    assert 503 in health.seen and health.seen[-1] == 200, health.seen

    after = fleet.call(NODE, "generation.status")
    assert after["selected"] == after["running"] == job["selected"] == job["running"]
    assert after["running"] != baseline["running"]
    new_generation = next(g for g in after["generations"] if g["path"] == after["running"])
    assert new_generation["number"] == 2 and new_generation["plugins"] == ["supertest"]
    assert after["reboot_required"] is False
    health_body = fleet.plugin_get(NODE, "/health").json()
    assert health_body["status"] == "ok" and health_body["plugin"] == "supertest"
    schema = fleet.plugin_get(NODE, "/schema").json()
    assert sorted(schema["tables"]) == ["supertest_cases", "supertest_events"]
    assert len(schema["migrations"]) == 2
    plugins = fleet.call(NODE, "plugins.list")["plugins"]
    assert [p["name"] for p in plugins] == ["supertest"] and plugins[0]["state"] == "running"
    case = fleet.create_case(NODE, "rollout", "works")
    assert case["counter"] == 0

    # -- rollback to generation 1: down migrations, back to the baseline, plugin gone
    def plugin_answers() -> tuple[int, int]:
        read = fleet.plugin_get(NODE, "/state", run_id="rollout").status_code
        write = fleet.plugin_post(NODE, "/cases", {"run_id": "rollout", "name": "n"}).status_code
        return read, write

    with Watcher(plugin_answers) as plugin:
        rollback_id = fleet.call(NODE, "generation.rollback", {"generation": 1})["job_id"]
        rollback = fleet.wait_job(NODE, rollback_id)
    # While the rollback runs the plugin is there or gone, never half there (no 500).
    assert {code for pair in plugin.seen for code in pair} <= {200, 201, 404}, plugin.seen
    assert plugin.seen[-1] == (404, 404), plugin.seen
    assert rollback["state"] == "succeeded" and rollback["kind"] == "rollback", rollback
    assert any("down migrations" in line for line in rollback["log"]), rollback["log"]
    final = fleet.call(NODE, "generation.status")
    assert final["selected"] == final["running"] == baseline["running"]
    assert fleet.plugin_get(NODE, "/health").status_code == 404
    assert fleet.plugin_get(NODE, "/schema").status_code == 404
    tables = fleet.sqlite_tables(NODE)
    assert not [t for t in tables if t.startswith("supertest_")], tables
    assert fleet.call(NODE, "plugins.list")["plugins"] == []

    # The rollback does not replay the rollout plan, not even across a restart.
    fleet.legion.nemesis("restart", node=NODE)
    eventually(lambda: _assert_healthy(fleet))
    restarted = fleet.call(NODE, "generation.status")
    assert restarted["selected"] == restarted["running"] == baseline["running"]
    assert len(restarted["generations"]) == 2
    assert fleet.plugin_get(NODE, "/health").status_code == 404


def _assert_healthy(fleet: SimFleet) -> None:
    assert fleet.healthz(NODE) == 200
