"""Keywords that wait for every node to agree: membership, a node active everywhere, health, tribe.

The archive, activation and sync endpoint checks of one node's lifecycle are ``lifecycle_keywords``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from robot.api.deco import keyword

from tribesqa.checks.health import TRIBE_UNKNOWN, ClusterHealthJudge, TribeJudge
from tribesqa.checks.membership_judges import (
    MembershipJudge,
    NodeActiveJudge,
    describe_membership,
    normalize_expected,
)
from tribesqa.clients.management_client import ManagementError
from tribesqa.contract import (
    LegionNodeStatus,
)
from tribesqa.diagnostics import TribesFailure
from tribesqa.keywords.convergence_base import ConvergenceBase, _WaitSpec
from tribesqa.timing import WaitTiming


class ConvergenceKeywords(ConvergenceBase):
    """Membership, node activation, cluster health and tribe convergence on every node."""

    TAGS = ("convergence",)  # keyword tags in libdoc: this component's domain

    # -- membership ----------------------------------------------------------------------------
    @keyword
    def wait_until_cluster_converged(
        self,
        *nodes: str,
        expected: dict[str, Any] | list[dict[str, Any]] | None = None,
        timeout: timedelta | None = None,
        poll: timedelta | None = None,
    ) -> list[dict[str, Any]]:
        """Wait until every active node reports the same membership, with every member ``active``.

        Polls ``cluster_nodes.list`` on all nodes at once (Legion's ``ready`` nodes, or the
        given ``nodes``) every ``poll_interval`` up to ``membership_converged`` (``timeout=`` and
        ``poll=`` override the table for this call, e.g. ``timeout=5 min``). Done when all
        views are equal, no member row is ``syncing`` and, when ``expected`` is given (node ->
        ``{status, transport_address, scope}``, or node -> status), every view matches it.

        Fails at once when a row goes backwards (``active -> syncing`` written during the wait)
        or a member is decommissioned although ``expected`` does not say so. On failure: one
        message naming node(s) and property, one table of rows x nodes with the differing cells
        marked, the timeline and links to the snapshot taken then. Returns the converged rows.

        Example:
        | ${rows}=    Wait Until Cluster Converged
        | &{ovh}=    Create Dictionary    status=decommissioned
        | &{expected}=    Create Dictionary    hetzner-1=active    scaleway-1=active    ovh-1=${ovh}
        | Wait Until Cluster Converged    hetzner-1    scaleway-1    expected=${expected}
        | Wait Until Cluster Converged    timeout=10 min    poll=30 s
        """
        table = normalize_expected(expected, self.ctx.node_id)
        timing = self.ctx.wait_timing(
            "membership_converged", timeout, poll, keyword="Wait Until Cluster Converged"
        )
        return self._membership(table, list(nodes), once=False, timing=timing)

    @keyword
    def membership_should_match(
        self,
        expected: dict[str, Any] | list[dict[str, Any]],
        *nodes: str,
    ) -> list[dict[str, Any]]:
        """One look (no waiting): every node's membership equals the others' and ``expected``.

        Same judge and same report as ``Wait Until Cluster Converged``, probing once.

        Example:
        | &{expected}=    Create Dictionary    hetzner-1=active    scaleway-1=active
        | Membership Should Match    ${expected}
        """
        table = normalize_expected(expected, self.ctx.node_id)
        timing = self.ctx.wait_timing("membership_converged", keyword="Membership Should Match")
        return self._membership(table, list(nodes), once=True, timing=timing)

    def _membership(
        self,
        expected: dict[str, dict[str, Any]],
        nodes: Sequence[str],
        *,
        once: bool,
        timing: WaitTiming,
    ) -> list[dict[str, Any]]:
        names = self.nodes_or_active(nodes)
        skew = self.ctx.require_timeouts().clock_skew
        members = [self.ctx.node_id(name) for name in names]
        judge = MembershipJudge(members, expected, started_at=self.clock.wall(), skew_s=skew)
        spec = _WaitSpec(
            "membership differs" if once else "membership not converged",
            "membership matches" if once else "membership converged",
            timing,
            "membership row \\ observer",
        )
        probe = self._membership_rows_patient if once else self._membership_rows
        result = self._wait(names, probe, judge, spec, describe=describe_membership, once=once)
        return list(result.values()[names[0]])

    @keyword
    def wait_until_node_is_active_everywhere(
        self, node: str, *, timeout: timedelta | None = None, poll: timedelta | None = None
    ) -> None:
        """Wait until the membership row of ``node`` is ``active`` on every active member and on itself.

        Fails at once if the row is decommissioned anywhere or goes backwards during the wait;
        otherwise after ``node_active`` (or ``timeout=``; ``poll=`` overrides ``poll_interval``)
        with e.g. ``node ovh-1 still syncing on hetzner-1 after 20.0 s; 2 of 3 nodes agree``
        and the timeout used with where it came from.

        Example:
        | Wait Until Node Is Active Everywhere    ovh-1
        | Wait Until Node Is Active Everywhere    ovh-1    timeout=30 min    poll=10 s
        """
        node = str(node)
        timing = self.ctx.wait_timing(
            "node_active", timeout, poll, keyword="Wait Until Node Is Active Everywhere"
        )
        record = self.ctx.refresh_records().get(node)
        if record is None or record.status in (
            LegionNodeStatus.FAILED,
            LegionNodeStatus.DESTROYED,
            LegionNodeStatus.PLANNED,
        ):
            # Nothing to wait for: fail at once rather than after node_active.
            state = "not known to Legion" if record is None else f"{record.status.value} in Legion"
            raise TribesFailure(f"node {node} cannot become active everywhere: it is {state}")
        self._learn_node_ids()
        observers = [n for n in self.ctx.active_names() if n != node] + [node]
        timeouts = self.ctx.require_timeouts()
        judge = NodeActiveJudge(
            self.ctx.node_id(node), started_at=self.clock.wall(), skew_s=timeouts.clock_skew
        )
        spec = _WaitSpec(
            f"node {node} not active everywhere",
            f"node {node} active everywhere",
            timing,
            "membership row \\ observer",
        )
        self._wait(observers, self._membership_rows, judge, spec, describe=describe_membership)

    @keyword
    def cluster_status_should_be_healthy_on_nodes(
        self, *nodes: str, timeout: timedelta | None = None, poll: timedelta | None = None
    ) -> None:
        """``cluster_status.status`` is ``healthy`` on every node, polled up to ``membership_converged``.

        ``timeout=`` / ``poll=`` override the table for this call.

        Example:
        | Cluster Status Should Be Healthy On Nodes    hetzner-1    scaleway-1
        | Cluster Status Should Be Healthy On Nodes    timeout=5 min
        """
        names = self.nodes_or_active(nodes)
        timing = self.ctx.wait_timing(
            "membership_converged",
            timeout,
            poll,
            keyword="Cluster Status Should Be Healthy On Nodes",
        )

        def probe(node: str) -> dict[str, Any]:
            return self._poll_client(node).call_typed("cluster_status").model_dump(mode="json")

        spec = _WaitSpec(
            "cluster_status not healthy",
            "cluster_status healthy",
            timing,
            "field \\ node",
        )
        self._wait(
            names,
            probe,
            ClusterHealthJudge(),
            spec,
            describe=lambda v: f"{v.get('status')} ({v.get('self_status')})",
        )

    @keyword
    def wait_until_tribe_converged(
        self, *nodes: str, timeout: timedelta | None = None, poll: timedelta | None = None
    ) -> None:
        """Every node answers ``tribe.status`` with the same digest and version.

        A node answering 409 ``tribe-unknown`` has not replayed the tribe yet: it is waited
        for, not an error. Polls up to ``membership_converged``; ``timeout=`` / ``poll=``
        override the table for this call.

        Example:
        | Wait Until Tribe Converged
        | Wait Until Tribe Converged    hetzner-1    ovh-1    timeout=20 min    poll=15 s
        """
        names = self.nodes_or_active(nodes)
        timing = self.ctx.wait_timing(
            "membership_converged", timeout, poll, keyword="Wait Until Tribe Converged"
        )

        def probe(node: str) -> dict[str, Any]:
            try:
                return self._poll_client(node).call_typed("tribe.status").model_dump(mode="json")
            except ManagementError as error:
                if error.code == "tribe-unknown":
                    return dict(TRIBE_UNKNOWN)
                raise

        def describe(view: Any) -> str:
            if view == TRIBE_UNKNOWN:
                return "tribe-unknown"
            return f"v{view.get('version')} {str(view.get('digest'))[:8]}"

        spec = _WaitSpec(
            "tribe not converged",
            "tribe converged",
            timing,
            "field \\ node",
        )
        self._wait(names, probe, TribeJudge(), spec, describe=describe)
