"""Node management API: status, sync, tribe, generations, rollout and rollback.

The NIP-98 refusals (unsigned, replayed and every other bad request) are ``security_keywords``.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from robot.api import logger
from robot.api.deco import keyword

from tribesqa.contract import (
    ClusterNodesList,
    ClusterStatus,
    Diagnostics,
    GenerationStatus,
    JobRef,
    JobState,
    NodeInfo,
    RolloutJob,
    RolloutPreview,
    SyncStatus,
    TribeStatus,
)
from tribesqa.diagnostics import TribesFailure
from tribesqa.guard import MUTATING_METHODS, destructive
from tribesqa.keywords.component import Component
from tribesqa.waiting import (
    WaitTerminal,
    WaitTimeout,
    all_nodes_satisfy,
    poll_until,
)


def _job_summary(node: str, job: RolloutJob) -> str:
    return f"{node} {job.kind.value} job {job.job_id} {job.state.value}: " + " | ".join(
        job.log[-10:]
    )


def _job_line(job: RolloutJob) -> str:
    return f"{job.state.value}@{job.stage.value}"


class NodeKeywords(Component):
    TAGS = ("node",)  # keyword tags in libdoc: this component's domain

    # -- reads ----------------------------------------------------------------------------------
    @keyword
    def get_node_info(self, node: str) -> NodeInfo:
        """``node.info`` of ``node``: id, pubkey, provider, region, version, transport address.

        Example:
        | ${info}=    Get Node Info    hetzner-1
        | Should Be Equal    ${info.provider.value}    hetzner
        """
        return self.ctx.client(node).call_typed("node.info")  # type: ignore[return-value]

    @keyword
    def get_cluster_nodes(self, node: str) -> ClusterNodesList:
        """``cluster_nodes.list`` as ``node`` sees it; ``${view.nodes}`` are the membership rows.

        Example:
        | ${view}=    Get Cluster Nodes    hetzner-1
        | Should Be Equal    ${view.nodes[0].status.value}    active
        """
        return self.ctx.client(node).call_typed("cluster_nodes.list")  # type: ignore[return-value]

    @keyword
    def get_cluster_status(self, node: str) -> ClusterStatus:
        """``cluster_status`` of ``node`` (``${status.status}``, ``${status.self_status}``, digest...).

        Example:
        | ${status}=    Get Cluster Status    hetzner-1
        | Should Be Equal    ${status.self_status.value}    active
        """
        return self.ctx.client(node).call_typed("cluster_status")  # type: ignore[return-value]

    @keyword
    def get_sync_status(self, node: str) -> SyncStatus:
        """``sync.status`` of ``node``: mode, derived sync servers, high-water mark, pending events.

        Example:
        | ${sync}=    Get Sync Status    hetzner-1
        | Should Not Be Empty    ${sync.servers}
        """
        return self.ctx.client(node).call_typed("sync.status")  # type: ignore[return-value]

    @keyword
    def get_tribe_status(self, node: str) -> TribeStatus:
        """The singleton tribe as ``node`` holds it.

        Example:
        | ${tribe}=    Get Tribe Status    hetzner-1
        | Should Be Equal As Integers    ${tribe.version}    1
        """
        return self.ctx.client(node).call_typed("tribe.status")  # type: ignore[return-value]

    @keyword
    def get_generation_status(self, node: str) -> GenerationStatus:
        """``generation.status``: ``selected`` and ``running`` store paths, and the generations.

        Example:
        | ${status}=    Get Generation Status    hetzner-1
        | Should Be Equal    ${status.selected}    ${status.running}
        """
        return self.ctx.client(node).call_typed("generation.status")  # type: ignore[return-value]

    @keyword
    def get_node_diagnostics(self, node: str) -> Diagnostics:
        """``diagnostics`` of ``node``: readiness, migration log, services, generation compare, logs.

        Example:
        | ${diagnostics}=    Get Node Diagnostics    hetzner-1
        | Log    ${diagnostics}
        """
        return self.ctx.client(node).call_typed("diagnostics")  # type: ignore[return-value]

    @keyword
    def call_management_method(
        self, node: str, method: str, params: dict[str, Any] | None = None
    ) -> Any:
        """Call any management ``method`` with ``params`` on ``node``; returns the raw ``result``.

        A method that changes the node (``sync.resync``, ``rollout.start``,
        ``generation.rollback``, ``control.*``) is a destructive act: on a real fleet it needs
        ``ALLOW_DESTRUCTIVE``.

        Example: ``${result}=    Call Management Method    hetzner-1    plugins.list``
        """
        if method in MUTATING_METHODS:
            self.ctx.require_destructive_allowed(
                "Call Management Method", f"call {method} on {node}"
            )
        return self.ctx.client(node).call(method, dict(params or {}))

    # -- sync ------------------------------------------------------------------------------------
    @keyword
    @destructive("force a full resync on {node}")
    def force_full_resync(self, node: str) -> str:
        """``sync.resync {full: true}`` on ``node``: replay from zero; returns the job id.

        Example:
        | ${job_id}=    Force Full Resync    scaleway-1
        | Wait Until Cluster Converged
        """
        ref = self.ctx.client(node).call_typed("sync.resync", {"full": True})
        assert isinstance(ref, JobRef)
        return ref.job_id

    @keyword
    @destructive("force a full resync on {nodes}")
    def force_full_resync_on_nodes(self, *nodes: str) -> dict[str, str]:
        """Full resync on each node (all active nodes when none are given).

        Example:
        | Heal All Partitions
        | Force Full Resync On Nodes    hetzner-1    scaleway-1
        | Force Full Resync On Nodes    # every active node
        """
        return self.on_each(self.nodes_or_active(nodes), self.force_full_resync, what="sync.resync")

    # -- rollout and rollback ------------------------------------------------------------------
    @keyword
    def preview_rollout(self, node: str, plugin: str, commit: str) -> RolloutPreview:
        """``rollout.preview`` of installing ``plugin`` at ``commit`` on ``node``.

        Example:
        | ${preview}=    Preview Rollout    hetzner-1    supertest    ${COMMIT}
        | Should Be True    ${preview.substitutes.available}
        """
        params = {"plugins": [{"name": plugin, "commit": commit}]}
        return self.ctx.client(node).call_typed("rollout.preview", params)  # type: ignore[return-value]

    @keyword
    @destructive("start rollout {plan_id} on {node}")
    def start_rollout(self, node: str, plan_id: str) -> str:
        """``rollout.start`` of a previewed plan; returns the job id. Refusals fail with their reason.

        Example:
        | ${preview}=    Preview Rollout    hetzner-1    supertest    ${COMMIT}
        | ${job_id}=    Start Rollout    hetzner-1    ${preview.plan_id}
        | Wait For Rollout    hetzner-1    ${job_id}
        """
        ref = self.ctx.client(node).call_typed("rollout.start", {"plan_id": plan_id})
        assert isinstance(ref, JobRef)
        return ref.job_id

    @keyword
    def get_rollout_job(self, node: str, job_id: str) -> RolloutJob:
        """``rollout.status`` of one job.

        Example:
        | ${job}=    Get Rollout Job    hetzner-1    ${job_id}
        | Should Be Equal    ${job.kind.value}    rollout
        """
        return self.ctx.client(node).call_typed("rollout.status", {"job_id": job_id})  # type: ignore[return-value]

    @keyword
    def wait_for_rollout(
        self,
        node: str,
        job_id: str,
        *,
        timeout: timedelta | None = None,
        poll: timedelta | None = None,
    ) -> RolloutJob:
        """Wait until job ``job_id`` on ``node`` succeeds; fail at once if it fails, with its log.

        Polls every ``poll_interval`` up to the ``rollout`` timeout (``timeout=`` / ``poll=``
        override the table for this call); logs the final attempt and the job's stage
        timeline, not every poll.

        Example:
        | ${job}=    Start Rollout    hetzner-1    ${preview.plan_id}
        | Wait For Rollout    hetzner-1    ${job}    timeout=2 h    poll=30 s
        """
        timing = self.ctx.wait_timing("rollout", timeout, poll, keyword="Wait For Rollout")

        def probe(name: str) -> RolloutJob:
            return self.get_rollout_job(name, job_id)

        def failed(name: str, job: RolloutJob) -> str | None:
            if job.state is JobState.FAILED:
                error = job.error.message if job.error else "no error given"
                return (
                    f"node {name}: job {job_id} failed at stage {job.stage.value}: {error}\n"
                    + "\n".join(job.log[-15:])
                )
            return None

        try:
            result = poll_until(
                [node],
                probe,
                all_nodes_satisfy(
                    lambda job: job.state is JobState.SUCCEEDED,
                    label="job succeeded",
                    terminal=failed,
                ),
                what=f"rollout job {job_id} on {node}",
                timeout_s=timing.timeout_s,
                interval_s=timing.interval_s,
                describe=_job_line,
            )
        except WaitTimeout as failure:
            raise TribesFailure(f"{failure.message} [{timing.origin}]") from None
        except WaitTerminal as failure:
            raise TribesFailure(failure.message) from None
        job = result.observations[node].value
        if threading.current_thread() is threading.main_thread():
            # Robot drops messages logged from worker threads; multi-node callers log instead.
            logger.info(_job_summary(node, job))
        return job

    @keyword
    @destructive("roll {plugin} at {commit} out to {nodes}")
    def roll_out_plugin_to_nodes(
        self,
        plugin: str,
        commit: str,
        *nodes: str,
        timeout: timedelta | None = None,
        poll: timedelta | None = None,
    ) -> dict[str, RolloutJob]:
        """Preview, start and wait for ``plugin`` at ``commit`` on every node (all active nodes by default).

        Fails before switching anything when a node's preview reports missing substitutes.
        Each job is waited for as ``Wait For Rollout`` does (``timeout=`` / ``poll=`` override
        the table's ``rollout`` and ``poll_interval`` for this call).

        Example:
        | Roll Out Plugin To Nodes    supertest    ${COMMIT}    hetzner-1
        | Roll Out Plugin To Nodes    supertest    ${COMMIT}    # every active node
        | Roll Out Plugin To Nodes    supertest    ${COMMIT}    timeout=2 h    poll=30 s
        """
        names = self.nodes_or_active(nodes)
        previews = self.on_each(
            names, lambda n: self.preview_rollout(n, plugin, commit), what="rollout.preview"
        )
        missing = {n: p.substitutes.missing for n, p in previews.items() if p.substitutes.missing}
        if missing:
            raise TribesFailure(
                "substitutes missing, nothing switched: "
                + "; ".join(f"{n}: {', '.join(m)}" for n, m in missing.items())
            )
        jobs = self.on_each(
            names, lambda n: self.start_rollout(n, previews[n].plan_id), what="rollout.start"
        )
        done = self.on_each(
            names,
            lambda n: self.wait_for_rollout(n, jobs[n], timeout=timeout, poll=poll),
            what="rollout",
        )
        for name, job in done.items():
            logger.info(_job_summary(name, job))
        return done

    @keyword
    @destructive("roll {node} back to generation {generation}")
    def roll_back_to_generation(self, node: str, generation: str) -> str:
        """``generation.rollback`` to a generation number or store path; returns the job id.

        Example:
        | ${job_id}=    Roll Back To Generation    hetzner-1    1
        | Wait For Rollout    hetzner-1    ${job_id}
        """
        target: int | str = int(generation) if str(generation).isdigit() else str(generation)
        ref = self.ctx.client(node).call_typed("generation.rollback", {"generation": target})
        assert isinstance(ref, JobRef)
        return ref.job_id

    @keyword
    @destructive("roll {nodes} back to generation {generation}")
    def roll_back_nodes_to_generation(
        self,
        generation: str,
        *nodes: str,
        timeout: timedelta | None = None,
        poll: timedelta | None = None,
    ) -> dict[str, RolloutJob]:
        """Roll every node back to ``generation`` and wait for each job.

        Each job is waited for as ``Wait For Rollout`` does (``timeout=`` / ``poll=`` override
        the table's ``rollout`` and ``poll_interval`` for this call).

        Example:
        | Roll Back Nodes To Generation    ${BASELINE}    hetzner-1    scaleway-1
        | Roll Back Nodes To Generation    1    # every active node
        | Roll Back Nodes To Generation    1    timeout=1 h
        """
        names = self.nodes_or_active(nodes)
        jobs = self.on_each(
            names, lambda n: self.roll_back_to_generation(n, generation), what="generation.rollback"
        )
        done = self.on_each(
            names,
            lambda n: self.wait_for_rollout(n, jobs[n], timeout=timeout, poll=poll),
            what="rollback",
        )
        for name, job in done.items():
            logger.info(_job_summary(name, job))
        return done
