"""The decommissioned node's own view: what it reports about itself, and that it has left the
sync mesh (it neither pulls from the active nodes nor receives their new events)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from robot.api import logger
from robot.api.deco import keyword

from tribesqa.checks.conformance import (
    decommissioned_view_problems,
    describe_received,
    events_received_since,
)
from tribesqa.contract import ClusterNodesList, ClusterStatus, SyncStatus
from tribesqa.diagnostics import TribesFailure
from tribesqa.keywords.component import Component
from tribesqa.waiting import (
    ConvergenceFailure,
    Observation,
    Verdict,
    consistently,
    poll_until,
)


@dataclass(frozen=True)
class _SelfView:
    status: ClusterStatus
    rows: ClusterNodesList
    sync: SyncStatus


class DecommissionedKeywords(Component):
    """What a decommissioned node reports about itself, and that it no longer syncs."""

    TAGS = ("convergence", "node")  # keyword tags in libdoc: this component's domain

    def _self_view(self, node: str) -> _SelfView:
        client = self.ctx.client(node)
        return _SelfView(
            client.call_typed("cluster_status"),  # type: ignore[arg-type]
            client.call_typed("cluster_nodes.list"),  # type: ignore[arg-type]
            client.call_typed("sync.status"),  # type: ignore[arg-type]
        )

    @keyword
    def decommissioned_node_should_report_itself_out_of_the_cluster(
        self, node: str, *, timeout: timedelta | None = None, poll: timedelta | None = None
    ) -> None:
        """``node``, decommissioned, says so itself: ``cluster_status.self_status`` is
        ``decommissioned``, its own row in ``cluster_nodes.list`` is ``decommissioned``, and
        ``sync.status`` is mode ``stopped`` with no sync servers.

        Waits (up to ``membership_converged``; ``timeout=`` / ``poll=`` override the table for
        this call) for the node to apply its decommission; fails naming the node and every part
        of its view that is still wrong, and the timeout used with where it came from.

        Example:
        | Decommissioned Node Should Report Itself Out Of The Cluster    scaleway-1
        | Decommissioned Node Should Report Itself Out Of The Cluster    scaleway-1    timeout=5 min    poll=10 s
        """
        node = str(node)
        timing = self.ctx.wait_timing(
            "membership_converged",
            timeout,
            poll,
            keyword="Decommissioned Node Should Report Itself Out Of The Cluster",
        )
        node_id = self.ctx.node_id(node)

        def judge(observations: dict[str, Observation]) -> Verdict:
            seen = observations[node]
            if seen.error is not None:
                return Verdict(
                    False, f"node {node}: could not read its view ({seen.error})", [node]
                )
            view: _SelfView = seen.value
            problems = decommissioned_view_problems(
                node, node_id, view.status, view.rows, view.sync
            )
            if problems:
                return Verdict(
                    False, f"node {node} is decommissioned but " + "; ".join(problems), [node]
                )
            return Verdict(True, f"node {node} reports itself decommissioned and out of sync")

        def describe(view: _SelfView) -> str:
            return (
                f"self_status={view.status.self_status.value} sync={view.sync.mode.value} "
                f"servers={len(view.sync.servers)}"
            )

        try:
            poll_until(
                [node],
                self._self_view,
                judge,
                what=f"node {node} reports itself decommissioned",
                timeout_s=timing.timeout_s,
                interval_s=timing.interval_s,
                describe=describe,
            )
        except ConvergenceFailure as failure:
            summary = failure.result.verdict.summary
            raise TribesFailure(
                f"{summary} (after {failure.result.elapsed_s:.1f} s) [{timing.origin}]"
            ) from None
        logger.info(f"node {node} reports itself decommissioned; sync.status stopped, no servers")

    @keyword
    def decommissioned_node_should_receive_no_new_writes(
        self,
        node: str,
        before: SyncStatus,
        duration: timedelta | None = None,
        *,
        poll: timedelta | None = None,
    ) -> None:
        """Events the active nodes wrote after ``before`` (``node``'s ``Get Sync Status`` taken
        once it was decommissioned) never reach ``node``: for the ``stays_stale`` window its
        version vector gains nothing from any other origin (Legion's own writes excepted:
        Legion writes to every machine it runs).

        ``duration`` is this keyword's ``timeout=`` (default: ``stays_stale``); ``poll=``
        overrides ``poll_interval`` for this call.

        Example:
        | ${before}=    Get Sync Status    scaleway-1
        | Force Full Resync    hetzner-1
        | Decommissioned Node Should Receive No New Writes    scaleway-1    ${before}
        | Decommissioned Node Should Receive No New Writes    scaleway-1    ${before}    duration=2 min    poll=5 s
        """
        node = str(node)
        timing = self.ctx.wait_timing(
            "stays_stale",
            duration,
            poll,
            keyword="Decommissioned Node Should Receive No New Writes",
            timeout_arg="duration",
        )
        node_id = self.ctx.node_id(node)
        if before.version_vector is None:
            raise TribesFailure(
                f"node {node}: its sync.status carries no version_vector, so new writes cannot be told apart"
            )
        was = dict(before.version_vector)

        def probe(name: str) -> dict[str, int]:
            sync = self.ctx.client(name).call_typed("sync.status")
            return dict(sync.version_vector or {})  # type: ignore[attr-defined]

        def judge(observations: dict[str, Observation]) -> Verdict:
            seen = observations[node]
            if seen.error is not None:
                return Verdict(
                    False, f"node {node}: could not read its view ({seen.error})", [node]
                )
            received = events_received_since(node_id, was, seen.value)
            if received:
                return Verdict(False, describe_received(node, received), [node])
            return Verdict(True, f"node {node} received nothing new")

        try:
            consistently(
                [node],
                probe,
                judge,
                what=f"node {node} receives no new writes",
                duration_s=timing.timeout_s,
                interval_s=timing.interval_s,
            )
        except ConvergenceFailure as failure:
            raise TribesFailure(
                f"{failure.result.verdict.summary} (after {failure.result.elapsed_s:.1f} s) "
                f"[{timing.origin}]"
            ) from None
        logger.info(f"node {node} received no new event from the active nodes")
