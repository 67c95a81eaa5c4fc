"""Node management API: status, sync, tribe, generations, rollout and rollback, auth checks."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

from robot.api import logger
from robot.api.deco import keyword

from tribesqa.clients.management_client import ManagementError
from tribesqa.clients.nip98 import authorization_for
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
from tribesqa.keywords.component import Component
from tribesqa.waiting import WaitTerminal, WaitTimeout, all_nodes_satisfy, poll_until


def _job_summary(node: str, job: RolloutJob) -> str:
    return f"{node} {job.kind.value} job {job.job_id} {job.state.value}: " + " | ".join(
        job.log[-10:]
    )


def _job_line(job: RolloutJob) -> str:
    return f"{job.state.value}@{job.stage.value}"


class NodeKeywords(Component):
    # -- reads ----------------------------------------------------------------------------------
    @keyword
    def get_node_info(self, node: str) -> NodeInfo:
        """``node.info`` of ``node``: id, pubkey, provider, region, version, transport address."""
        return self.ctx.client(node).call_typed("node.info")  # type: ignore[return-value]

    @keyword
    def get_cluster_nodes(self, node: str) -> ClusterNodesList:
        """``cluster_nodes.list`` as ``node`` sees it; ``${view.nodes}`` are the membership rows."""
        return self.ctx.client(node).call_typed("cluster_nodes.list")  # type: ignore[return-value]

    @keyword
    def get_cluster_status(self, node: str) -> ClusterStatus:
        """``cluster_status`` of ``node`` (``${status.status}``, ``${status.self_status}``, digest...)."""
        return self.ctx.client(node).call_typed("cluster_status")  # type: ignore[return-value]

    @keyword
    def get_sync_status(self, node: str) -> SyncStatus:
        """``sync.status`` of ``node``: mode, derived sync servers, high-water mark, pending events."""
        return self.ctx.client(node).call_typed("sync.status")  # type: ignore[return-value]

    @keyword
    def get_tribe_status(self, node: str) -> TribeStatus:
        """The singleton tribe as ``node`` holds it."""
        return self.ctx.client(node).call_typed("tribe.status")  # type: ignore[return-value]

    @keyword
    def get_generation_status(self, node: str) -> GenerationStatus:
        """``generation.status``: ``selected`` and ``running`` store paths, and the generations."""
        return self.ctx.client(node).call_typed("generation.status")  # type: ignore[return-value]

    @keyword
    def get_node_diagnostics(self, node: str) -> Diagnostics:
        """``diagnostics`` of ``node``: readiness, migration log, services, generation compare, logs."""
        return self.ctx.client(node).call_typed("diagnostics")  # type: ignore[return-value]

    @keyword
    def call_management_method(
        self, node: str, method: str, params: dict[str, Any] | None = None
    ) -> Any:
        """Call any management ``method`` with ``params`` on ``node``; returns the raw ``result``.

        Example: ``${result}=    Call Management Method    hetzner-1    plugins.list``
        """
        return self.ctx.client(node).call(method, dict(params or {}))

    @keyword
    def management_call_should_be_refused(
        self, node: str, method: str, error: str, params: dict[str, Any] | None = None
    ) -> str:
        """``method`` on ``node`` must fail with contract error ``error``; returns the node's message."""
        try:
            result = self.ctx.client(node).call(method, dict(params or {}))
        except ManagementError as refusal:
            if refusal.code != error:
                raise TribesFailure(
                    f"node {node} / {method} failed with {refusal.code}, expected {error}: {refusal.reason}"
                ) from None
            return refusal.reason
        raise TribesFailure(
            f"node {node} / {method} succeeded but should have been refused with {error}: {json.dumps(result)[:200]}"
        )

    # -- sync ------------------------------------------------------------------------------------
    @keyword
    def force_full_resync(self, node: str) -> str:
        """``sync.resync {full: true}`` on ``node``: replay from zero; returns the job id."""
        ref = self.ctx.client(node).call_typed("sync.resync", {"full": True})
        assert isinstance(ref, JobRef)
        return ref.job_id

    @keyword
    def force_full_resync_on_nodes(self, *nodes: str) -> dict[str, str]:
        """Full resync on each node (all active nodes when none are given)."""
        return self.on_each(self.nodes_or_active(nodes), self.force_full_resync, what="sync.resync")

    # -- rollout and rollback ------------------------------------------------------------------
    @keyword
    def preview_rollout(self, node: str, plugin: str, commit: str) -> RolloutPreview:
        """``rollout.preview`` of installing ``plugin`` at ``commit`` on ``node``."""
        params = {"plugins": [{"name": plugin, "commit": commit}]}
        return self.ctx.client(node).call_typed("rollout.preview", params)  # type: ignore[return-value]

    @keyword
    def start_rollout(self, node: str, plan_id: str) -> str:
        """``rollout.start`` of a previewed plan; returns the job id. Refusals fail with their reason."""
        ref = self.ctx.client(node).call_typed("rollout.start", {"plan_id": plan_id})
        assert isinstance(ref, JobRef)
        return ref.job_id

    @keyword
    def get_rollout_job(self, node: str, job_id: str) -> RolloutJob:
        """``rollout.status`` of one job."""
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
    def roll_out_plugin_to_nodes(
        self, plugin: str, commit: str, *nodes: str
    ) -> dict[str, RolloutJob]:
        """Preview, start and wait for ``plugin`` at ``commit`` on every node (all active nodes by default).

        Fails before switching anything when a node's preview reports missing substitutes.
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
        done = self.on_each(names, lambda n: self.wait_for_rollout(n, jobs[n]), what="rollout")
        for name, job in done.items():
            logger.info(_job_summary(name, job))
        return done

    @keyword
    def roll_back_to_generation(self, node: str, generation: str) -> str:
        """``generation.rollback`` to a generation number or store path; returns the job id."""
        target: int | str = int(generation) if str(generation).isdigit() else str(generation)
        ref = self.ctx.client(node).call_typed("generation.rollback", {"generation": target})
        assert isinstance(ref, JobRef)
        return ref.job_id

    @keyword
    def roll_back_nodes_to_generation(self, generation: str, *nodes: str) -> dict[str, RolloutJob]:
        """Roll every node back to ``generation`` and wait for each job."""
        names = self.nodes_or_active(nodes)
        jobs = self.on_each(
            names, lambda n: self.roll_back_to_generation(n, generation), what="generation.rollback"
        )
        done = self.on_each(names, lambda n: self.wait_for_rollout(n, jobs[n]), what="rollback")
        for name, job in done.items():
            logger.info(_job_summary(name, job))
        return done

    @keyword
    def generation_should_be_converged(
        self, node: str, expected: str | None = None
    ) -> GenerationStatus:
        """``selected`` equals ``running`` on ``node`` (and equals ``expected`` when given).

        ``expected`` is a store path or a generation number.
        """
        status = self.get_generation_status(node)
        if status.selected != status.running:
            raise TribesFailure(
                f"node {node}: selected generation {status.selected} but running {status.running}"
            )
        if expected is not None:
            try:
                want = (
                    status.generation(expected).path if str(expected).isdigit() else str(expected)
                )
            except LookupError as error:
                raise TribesFailure(f"node {node}: {error}") from None
            if status.running != want:
                raise TribesFailure(f"node {node}: running {status.running}, expected {want}")
        return status

    @keyword
    def generations_should_be_converged_on_nodes(
        self, expected: str | None = None, *nodes: str
    ) -> None:
        """``Generation Should Be Converged`` on every node at once."""
        self.on_each(
            self.nodes_or_active(nodes),
            lambda n: self.generation_should_be_converged(n, expected),
            what="generation check",
        )

    @keyword
    def get_generation_links_over_ssh(self, node: str) -> dict[str, str]:
        """Read the selected and running system links on the node itself over SSH.

        Uses the target's command templates (``readlink -f ${TRIBES_ROOT:-}/...``), as an
        operator would; returns ``{"selected": path, "running": path}``.
        """
        commands = self.ctx.require_target().node_commands()
        links = {}
        for name in ("selected", "running"):
            result = self.ctx.ssh().run(
                node,
                self.ctx.ssh_endpoint(node),
                commands[f"{name}_generation"],
                purpose=f"read {name} generation",
            )
            if result.rc != 0:
                raise TribesFailure(
                    f"node {node}: reading the {name} generation over SSH failed (exit {result.rc}): {result.stderr.strip()[-200:]}"
                )
            links[name] = result.stdout.strip()
        return links

    @keyword
    def generation_links_should_match_api(self, node: str) -> None:
        """The symlinks on disk (over SSH) agree with ``generation.status`` from the API."""
        links = self.get_generation_links_over_ssh(node)
        status = self.get_generation_status(node)
        api = {"selected": status.selected, "running": status.running}
        if links != api:
            raise TribesFailure(
                f"node {node}: generation links on disk {links} differ from the API {api}"
            )

    # -- authentication ---------------------------------------------------------------------------
    @keyword
    def unsigned_management_request_should_be_refused(self, node: str) -> None:
        """A request without NIP-98 authorization is refused with 401 ``auth-required``."""
        response = self.ctx.client(node).raw(
            b'{"method":"cluster_status","params":{}}', {"content-type": "application/json"}
        )
        self._expect_refusal(node, response, "auth-required")

    @keyword
    def replayed_management_request_should_be_refused(self, node: str) -> None:
        """Send one signed request twice: the first is accepted, the replay refused (``replayed-auth-event``)."""
        client = self.ctx.client(node)
        body = b'{"method":"cluster_status","params":{}}'
        header = authorization_for(self.ctx.admin_key(), client.endpoint, "POST", body)
        headers = {"content-type": "application/json", "authorization": header}
        first = client.raw(body, headers)
        if first.status_code != 200:
            raise TribesFailure(
                f"node {node}: the original signed request was not accepted (HTTP {first.status_code}: {first.text[:200]})"
            )
        self._expect_refusal(node, client.raw(body, headers), "replayed-auth-event")

    @staticmethod
    def _expect_refusal(node: str, response: Any, code: str) -> None:
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if response.status_code != 401 or payload.get("error") != code:
            raise TribesFailure(
                f"node {node}: expected 401 {code}, got HTTP {response.status_code} {payload.get('error') or response.text[:120]}"
            )
