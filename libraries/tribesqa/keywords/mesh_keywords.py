"""Keywords about the derived sync mesh: who each node syncs from, against its membership view."""

from __future__ import annotations

from typing import Any

from robot.api.deco import keyword

from tribesqa.checks.mesh import DerivedServersJudge
from tribesqa.keywords.convergence_base import ConvergenceBase, _WaitSpec, fetch_membership_rows


class MeshKeywords(ConvergenceBase):
    """The derived sync servers of every active node."""

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
        timeouts = self.ctx.require_timeouts()

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
            timeouts.membership_converged,
            timeouts.poll_interval,
            "sync servers \\ node",
        )
        judge = DerivedServersJudge({name: self.ctx.node_id(name) for name in names})
        self._wait(names, probe, judge, spec, describe=describe)
