"""Plugin rollouts and generation rollbacks: plans, jobs and their stages (pull, build, switch,
migrate, restart), resumed after a restart. Mixed into ``SimNode``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tribes_sim.generations import system_store_path
from tribes_sim.node.spec import BASELINE_COMMIT, PLUGIN_CATALOGUE, NodeRefused
from tribes_sim.node.timestamps import utc_now


class RolloutMixin:
    """SimNode's part: rollout and rollback jobs (uses the attributes SimNode sets up)."""

    def preview(self, params: dict[str, Any]) -> dict[str, Any]:
        plugins = params.get("plugins")
        if not isinstance(plugins, list) or not plugins:
            raise NodeRefused(
                400, "invalid-params", "rollout.preview: params.plugins must be a non-empty list"
            )
        requested: list[dict[str, str]] = []
        for index, item in enumerate(plugins):
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("name"), str)
                or not isinstance(item.get("commit"), str)
            ):
                raise NodeRefused(
                    400,
                    "invalid-params",
                    f"rollout.preview: params.plugins[{index}] needs name and commit strings",
                )
            requested.append({"name": item["name"], "commit": item["commit"]})
        added = sorted({item["name"] for item in requested} - set(self.running_plugins()))
        missing = self.missing_substitutes(requested)
        plan_id = f"plan-{self.ids.token_hex('plan', 6)}"
        self.store.save_plan(plan_id, requested, utc_now())
        return {
            "plan_id": plan_id,
            "delta": {
                "plugins_added": added,
                "plugins_removed": [],
                "channel_changed": bool(added),
            },
            "requires_restart": (
                ["tribes"] if added and not self.config.has_fault("preview-hides-restart") else []
            ),
            "substitutes": (
                # Fault: the preview says every substitute is there although some are missing.
                {"available": True, "missing": []}
                if self.config.has_fault("substitutes-unreported")
                else {"available": not missing, "missing": missing}
            ),
        }

    def missing_substitutes(self, plan: list[dict[str, Any]]) -> list[str]:
        """The packages of the plugins ``plan`` adds that no substitute server has."""
        added = {item["name"] for item in plan} - set(self.running_plugins())
        return sorted(
            f"tribes-plugin-{name}"
            for name in added
            if name not in PLUGIN_CATALOGUE
            or f"tribes-plugin-{name}" in self.config.missing_substitutes
        )

    def _active_job(self) -> str | None:
        if self.config.has_fault("concurrent-rollout-accepted"):
            return None  # Fault: a second job starts beside the running one.
        for job_id, task in self.jobs.items():
            if not task.done():
                return job_id
        return None

    def start_rollout(self, params: dict[str, Any]) -> dict[str, Any]:
        plan_id = params.get("plan_id")
        if not isinstance(plan_id, str):
            raise NodeRefused(
                400, "invalid-params", "rollout.start: params.plan_id must be a string"
            )
        plan = self.store.plan(plan_id)
        if plan is None and self.config.has_fault("unknown-plan-accepted"):
            plan = []  # Fault: an unknown plan reads as an empty one and a rollout starts.
        if plan is None:
            raise NodeRefused(
                409, "unknown-plan", f"rollout.start: no plan {plan_id!r} on {self.name}"
            )
        missing = self.missing_substitutes(plan)
        # Fault: the plan switches although its packages cannot be substituted.
        if missing and not self.config.has_fault("rollout-ignores-missing-substitutes"):
            raise NodeRefused(
                409,
                "substitutes-missing",
                "refusing to switch: substitutes missing for " + ", ".join(missing),
            )
        running_job = self._active_job()
        if running_job:
            raise NodeRefused(409, "rollout-in-progress", f"job {running_job} is still running")
        plugins = sorted({*self.running_plugins(), *(item["name"] for item in plan)})
        commits = {item["name"]: item["commit"] for item in plan}
        target = {
            "plugins": plugins,
            "commits": commits,
            "path": system_store_path(
                (name, commits.get(name, BASELINE_COMMIT)) for name in plugins
            ),
        }
        return self._new_job("rollout", target)

    def start_rollback(self, params: dict[str, Any]) -> dict[str, Any]:
        wanted = params.get("generation")
        if not isinstance(wanted, int | str) or isinstance(wanted, bool):
            raise NodeRefused(
                400,
                "invalid-params",
                "generation.rollback: params.generation must be a number or a path",
            )
        match = next(
            (
                g
                for g in self.store.generations()
                if wanted in (g["number"], g["path"], str(g["number"]))
            ),
            None,
        )
        if match is None and self.config.has_fault("rollback-unknown-generation-accepted"):
            # Fault: an unknown generation reads as the running one and a rollback starts.
            running = self.tree.running()
            match = next((g for g in self.store.generations() if g["path"] == running), None)
        if match is None:
            raise NodeRefused(
                409,
                "unknown-generation",
                f"generation.rollback: no generation {wanted!r} on {self.name}",
            )
        running_job = self._active_job()
        if running_job:
            raise NodeRefused(409, "rollout-in-progress", f"job {running_job} is still running")
        target = {"plugins": match["plugins"], "path": match["path"], "number": match["number"]}
        return self._new_job("rollback", target)

    def _new_job(self, kind: str, target: dict[str, Any]) -> dict[str, Any]:
        job_id = f"{kind}-{self.ids.token_hex('job', 6)}"
        target = {**target, "from": self.tree.running()}  # what the node ran when it was asked
        first = "pull" if kind == "rollout" else "switch"
        job = {
            "job_id": job_id,
            "kind": kind,
            "state": "pending",
            "stage": first,
            "target": target,
            "error": None,
            "log": [f"{utc_now()} {kind} to {target['path']} queued"],
            "created_at": utc_now(),
        }
        self.store.save_job(job)
        self.jobs[job_id] = self.spawn(self._run_job(job_id))
        return {"job_id": job_id}

    def job_status(self, params: dict[str, Any]) -> dict[str, Any]:
        job_id = params.get("job_id")
        if not isinstance(job_id, str):
            raise NodeRefused(
                400, "invalid-params", "rollout.status: params.job_id must be a string"
            )
        job = self.store.job(job_id)
        if job is None and self.config.has_fault("unknown-job-200"):
            # Fault: an id the node never issued reads as a job that has not started yet.
            job = {"job_id": job_id, "kind": "rollout", "state": "pending", "stage": "pull"}
            job |= {"error": None, "log": []}
        if job is None:
            raise NodeRefused(
                409, "unknown-job", f"rollout.status: no job {job_id!r} on {self.name}"
            )
        answer = {
            "job_id": job["job_id"],
            "kind": job["kind"],
            "state": job["state"],
            "stage": job["stage"],
            "selected": self.tree.selected(),
            "running": self.tree.running(),
            "error": job["error"],
            "log": job["log"],
        }
        return self.reported_job(answer, job)

    async def _run_job(self, job_id: str) -> None:
        job = self.store.job(job_id)
        assert job is not None
        stages = (
            ["pull", "build", "switch", "migrate", "restart"]
            if job["kind"] == "rollout"
            else ["switch", "migrate", "restart"]
        )
        job["state"] = "running"
        try:
            for stage in stages[stages.index(job["stage"]) if job["stage"] in stages else 0 :]:
                job["stage"] = stage
                job["log"].append(f"{utc_now()} stage {stage} started")
                self.store.save_job(job)
                await asyncio.sleep(self.config.stage_s.get(stage, 0.05))
                await self._do_stage(job, stage)
                job["log"].append(f"{utc_now()} stage {stage} finished")
                self.store.save_job(job)
            job["stage"] = "done"
            job["state"] = "succeeded"
        except asyncio.CancelledError:
            raise
        except Exception as error:
            job["state"] = "failed"
            job["error"] = {"code": "stage-failed", "message": f"{job['stage']}: {error}"}
            job["log"].append(f"{utc_now()} failed: {error}")
        self.store.save_job(job)
        self.note(f"{job['kind']} job {job_id}: {job['state']}")

    async def _do_stage(self, job: dict[str, Any], stage: str) -> None:
        target = job["target"]
        path = target["path"]
        now = utc_now()
        if stage == "build":
            self.tree.create_system(path, target["plugins"])
        elif stage == "switch":
            if job["kind"] == "rollout":
                existing = next((g for g in self.store.generations() if g["path"] == path), None)
                number = (
                    existing["number"]
                    if existing
                    else max((g["number"] for g in self.store.generations()), default=0) + 1
                )
                self.tree.link_generation(number, path)
                self.store.add_generation(number, path, target["plugins"], now)
            else:
                number = target["number"]
            self.tree.select(number)
        elif stage == "migrate":
            has_tables = bool(self.store.plugin_tables_present())
            if "supertest" in target["plugins"] and not has_tables:
                applied = self.store.migrate_plugin_up(now)
                replayed = self.store.replay_plugin_events()
                job["log"].append(
                    f"{now} up migrations {applied}; replayed {replayed} plugin events"
                )
            elif "supertest" not in target["plugins"] and has_tables:
                if self.config.has_fault("rollback-keeps-tables"):
                    job["log"].append(f"{now} down migrations skipped")
                else:
                    reverted = self.store.migrate_plugin_down(now)
                    job["log"].append(f"{now} down migrations {reverted}")
        elif stage == "restart":
            self.restarting = True
            self.note("restarting services")
            try:
                await asyncio.sleep(self.config.restart_s)
                rollback = job["kind"] == "rollback"
                if not self.config.has_fault("selected-not-running") and not (
                    rollback and self.config.has_fault("rollback-not-restarted")
                ):
                    self.tree.run_system(self.tree.selected())
                if rollback and self.config.has_fault("sync-stopped-after-rollback"):
                    self.stop_sync_client("sync client not restarted after the rollback")
            finally:
                self.restarting = False
