"""Keywords that hold a node's runtime reports (derived sync servers, cluster_status) against its
own membership view."""

from __future__ import annotations

from typing import Any

from robot.api.deco import keyword

from tribesqa.checks.health import StatusAgreesJudge
from tribesqa.checks.mesh import DerivedServersJudge
from tribesqa.keywords.convergence_base import ConvergenceBase, _WaitSpec, fetch_membership_rows


class MeshKeywords(ConvergenceBase):
    """The derived sync servers and cluster_status of every active node, against its membership."""

    TAGS = ("convergence",)  # keyword tags in libdoc: this component's domain

    @keyword
    def derived_sync_servers_should_match_membership(self, *nodes: str) -> None:
        """Every node syncs from exactly the other ``active`` members of its own membership view.

        Polls ``cluster_nodes.list`` and ``sync.status`` on every node (Legion's ready nodes, or
        the given ``nodes``) up to ``membership_converged``. Done when each node's ``servers``
        are the transport addresses of the other ``active`` rows it lists (none missing, no
        decommissioned or syncing peer, nothing else), each ``connected`` with no
        ``failing_reason``. On failure the message names the node and the peer, e.g.
        ``hetzner-1 does not sync from active peer ovh-1 (http://127.0.0.1:24022)``, with a
        table of expected vs actual servers per node.

        Example: ``Derived Sync Servers Should Match Membership``
        """
        names = self.nodes_or_active(nodes)

        def probe(node: str) -> dict[str, Any]:
            client = self._poll_client(node)
            rows = fetch_membership_rows(client)
            status = client.call_typed("sync.status").model_dump(mode="json")
            return {"rows": rows, "servers": status["servers"]}

        def describe(view: Any) -> str:
            if not isinstance(view, dict):
                return str(view)[:80]
            servers = view.get("servers") or []
            connected = sum(1 for s in servers if s.get("connected"))
            return f"{len(servers)} servers, {connected} connected"

        spec = _WaitSpec(
            "derived sync servers do not match membership",
            "derived sync servers match membership",
            self.ctx.wait_timing(
                "membership_converged", keyword="Derived Sync Servers Should Match Membership"
            ),
            "sync servers \\ node",
        )
        judge = DerivedServersJudge({name: self.ctx.node_id(name) for name in names})
        self._wait(names, probe, judge, spec, describe=describe)

    @keyword
    def cluster_status_should_agree_with_membership(self, *nodes: str) -> None:
        """Each node's ``cluster_status`` counts match its ``cluster_nodes.list``; one digest everywhere.

        Polls up to ``membership_converged`` (Legion's ready nodes, or the given ``nodes``): the
        ``active``, ``syncing`` and ``decommissioned`` counts equal the rows of that status the
        node lists, and every node reports the same ``membership_digest``. On failure, e.g.
        ``hetzner-1 cluster_status says active 2 but 3 active rows listed``.

        Example: ``Cluster Status Should Agree With Membership``
        """
        names = self.nodes_or_active(nodes)

        def probe(node: str) -> dict[str, Any]:
            client = self._poll_client(node)
            rows = fetch_membership_rows(client)
            status = client.call_typed("cluster_status").model_dump(mode="json")
            return {"status": status, "rows": rows}

        spec = _WaitSpec(
            "cluster_status does not agree with membership",
            "cluster_status agrees with membership",
            self.ctx.wait_timing(
                "membership_converged", keyword="Cluster Status Should Agree With Membership"
            ),
            "field \\ node",
        )
        self._wait(
            names,
            probe,
            StatusAgreesJudge(),
            spec,
            describe=lambda v: (
                f"active {v['status'].get('active')} of {len(v['rows'])} rows"
                if isinstance(v, dict)
                else str(v)[:80]
            ),
        )
