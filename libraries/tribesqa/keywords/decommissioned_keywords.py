"""The decommissioned node's own view: what it reports about itself, and that it has left the
sync mesh (it neither pulls from the active nodes nor receives their new events).

Both waits go through ``ConvergenceBase._wait`` with the judges of ``checks/decommissioned.py``:
a failure names the node and the property, with the table, the timeline and the artifacts."""

from __future__ import annotations

from datetime import timedelta

from robot.api.deco import keyword

from tribesqa.checks.decommissioned import (
    NoNewWritesJudge,
    SelfView,
    SelfViewJudge,
    describe_self_view,
)
from tribesqa.contract import SyncStatus
from tribesqa.diagnostics import TribesFailure
from tribesqa.keywords.convergence_base import ConvergenceBase, _WaitSpec


class DecommissionedKeywords(ConvergenceBase):
    """What a decommissioned node reports about itself, and that it no longer syncs."""

    TAGS = ("convergence", "node")  # keyword tags in libdoc: this component's domain

    def _self_view(self, node: str) -> SelfView:
        """One poll of the node's view of itself (a booting node is "not yet", at once)."""
        client = self._poll_client(node)
        return SelfView(
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
        of its view that is still wrong, and the timeout used with where it came from. The
        report in log.html shows its view (table), each wrong field expected vs actual, the
        timeline of the polls and links to the failure snapshot.

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
        spec = _WaitSpec(
            f"decommissioned node {node} not out of the cluster",
            f"decommissioned node {node} out of the cluster",
            timing,
            "view \\ node",
        )
        judge = SelfViewJudge({node: self.ctx.node_id(node)})
        self._wait([node], self._self_view, judge, spec, describe=describe_self_view)

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
        overrides ``poll_interval`` for this call. Fails at the first poll that shows a new
        event (or cannot read ``sync.status``), naming the node, the origins and the counts;
        the report shows the version vector before and now per origin, with the artifacts.

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
        if before.version_vector is None:
            raise TribesFailure(
                f"node {node}: its sync.status carries no version_vector, so new writes cannot be told apart"
            )
        spec = _WaitSpec(
            f"decommissioned node {node} not cut off from new writes",
            f"decommissioned node {node} receives no new writes",
            timing,
            "origin \\ node",
        )
        judge = NoNewWritesJudge({node: self.ctx.node_id(node)}, {node: before.version_vector})
        self._wait([node], self._version_vector, judge, spec, hold=True)

    def _version_vector(self, node: str) -> dict[str, int]:
        """One read of the window: every read counts, so the client waits out a 503."""
        sync = self.ctx.client(node).call_typed("sync.status")
        return dict(sync.version_vector or {})  # type: ignore[attr-defined]
