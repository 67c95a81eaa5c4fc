"""Keywords over the sync mesh: a node's runtime reports (derived sync servers, cluster_status)
against its own membership view, and a partitioned node cut from the mesh. One wait plumbing
(``_wait_on_mesh``) serves all three."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from robot.api.deco import keyword

from tribesqa.checks.health import StatusAgreesJudge
from tribesqa.checks.judgement import _Judge
from tribesqa.checks.mesh import CutFromMeshJudge, DerivedServersJudge, describe_servers
from tribesqa.keywords.convergence_base import ConvergenceBase, _WaitSpec, fetch_membership_rows
from tribesqa.waiting import short_repr


@dataclass(frozen=True)
class _MeshWait:
    """One mesh wait's wording and what its probe reads: ``method``'s answer (JSON-shaped) put
    under ``key`` (``pick`` takes the part judged), next to the node's membership ``rows``."""

    keyword: str
    entry: str
    """The timeouts table entry (``timeout=`` overrides it)."""
    what: str
    done: str
    title: str
    method: str
    key: str
    pick: Callable[[dict[str, Any]], Any] = lambda answer: answer
    rows: bool = True


def _servers(status: dict[str, Any]) -> Any:
    """The ``servers`` of a ``sync.status`` answer."""
    return status["servers"]


class MeshKeywords(ConvergenceBase):
    """The sync mesh of every active node: derived servers and cluster_status against its
    membership, and a partitioned node cut from the mesh."""

    TAGS = ("convergence",)  # keyword tags in libdoc: this component's domain

    def _wait_on_mesh(
        self,
        names: Sequence[str],
        wait: _MeshWait,
        judge: _Judge,
        *,
        timeout: timedelta | None,
        poll: timedelta | None,
        describe: Callable[[Any], str] = short_repr,
    ) -> None:
        """Poll every node's ``wait.method`` (and membership) until ``judge`` is done."""
        timing = self.ctx.wait_timing(wait.entry, timeout, poll, keyword=wait.keyword)

        def probe(node: str) -> dict[str, Any]:
            client = self._poll_client(node)
            view = {"rows": fetch_membership_rows(client)} if wait.rows else {}
            view[wait.key] = wait.pick(client.call_typed(wait.method).model_dump(mode="json"))
            return view

        spec = _WaitSpec(wait.what, wait.done, timing, wait.title)
        self._wait(names, probe, judge, spec, describe=describe)

    @keyword
    def derived_sync_servers_should_match_membership(
        self, *nodes: str, timeout: timedelta | None = None, poll: timedelta | None = None
    ) -> None:
        """Every node syncs from exactly the other ``active`` members of its own membership view.

        Polls ``cluster_nodes.list`` and ``sync.status`` on every node (Legion's ready nodes, or
        the given ``nodes``) up to ``membership_converged`` (``timeout=`` / ``poll=`` override
        the table for this call). Done when each node's ``servers``
        are the transport addresses of the other ``active`` rows it lists (none missing, no
        decommissioned or syncing peer, nothing else), each ``connected`` with no
        ``failing_reason``. On failure the message names the node and the peer, e.g.
        ``hetzner-1 does not sync from active peer ovh-1 (http://127.0.0.1:24022)``, with a
        table of expected vs actual servers per node.

        Example:
        | Derived Sync Servers Should Match Membership
        | Derived Sync Servers Should Match Membership    hetzner-1    ovh-1    timeout=5 min    poll=10 s
        """
        names = self.nodes_or_active(nodes)
        wait = _MeshWait(
            keyword="Derived Sync Servers Should Match Membership",
            entry="membership_converged",
            what="derived sync servers do not match membership",
            done="derived sync servers match membership",
            title="sync servers \\ node",
            method="sync.status",
            key="servers",
            pick=_servers,
        )
        judge = DerivedServersJudge({name: self.ctx.node_id(name) for name in names})
        self._wait_on_mesh(
            names, wait, judge, timeout=timeout, poll=poll, describe=describe_servers
        )

    @keyword
    def cluster_status_should_agree_with_membership(
        self, *nodes: str, timeout: timedelta | None = None, poll: timedelta | None = None
    ) -> None:
        """Each node's ``cluster_status`` counts match its ``cluster_nodes.list``; one digest everywhere.

        Polls up to ``membership_converged`` (Legion's ready nodes, or the given ``nodes``;
        ``timeout=`` / ``poll=`` override the table for this call): the
        ``active``, ``syncing`` and ``decommissioned`` counts equal the rows of that status the
        node lists, and every node reports the same ``membership_digest``. On failure, e.g.
        ``hetzner-1 cluster_status says active 2 but 3 active rows listed``.

        Example:
        | Cluster Status Should Agree With Membership
        | Cluster Status Should Agree With Membership    timeout=2 min    poll=5 s
        """
        wait = _MeshWait(
            keyword="Cluster Status Should Agree With Membership",
            entry="membership_converged",
            what="cluster_status does not agree with membership",
            done="cluster_status agrees with membership",
            title="field \\ node",
            method="cluster_status",
            key="status",
        )
        self._wait_on_mesh(
            self.nodes_or_active(nodes),
            wait,
            StatusAgreesJudge(),
            timeout=timeout,
            poll=poll,
            describe=lambda v: (
                f"active {v['status'].get('active')} of {len(v['rows'])} rows"
                if isinstance(v, dict)
                else str(v)[:80]
            ),
        )

    @keyword
    def node_should_be_cut_from_the_sync_mesh(
        self, node: str, *, timeout: timedelta | None = None, poll: timedelta | None = None
    ) -> None:
        """Proves a partition took effect: ``node`` reports none of its sync servers connected, and
        no other active node reports ``node`` as a connected server (waits up to ``node_active``;
        ``timeout=`` / ``poll=`` override the table for this call).

        On failure the message names each node still linked and the sync server, e.g.
        ``hetzner-1 still reports ovh-1 as a connected sync server: ovh-1 (http://...)``, with
        a table of each node's link with ``node``, the timeline and the failure snapshot.

        Example:
        | Partition Node From Peers    ovh-1
        | Node Should Be Cut From The Sync Mesh    ovh-1
        | Node Should Be Cut From The Sync Mesh    ovh-1    timeout=2 min    poll=5 s
        """
        node = str(node)
        wait = _MeshWait(
            keyword="Node Should Be Cut From The Sync Mesh",
            entry="node_active",
            what=f"node {node} not cut from the sync mesh (the partition did not take effect)",
            done=f"node {node} cut from the sync mesh",
            title="sync mesh \\ node",
            method="sync.status",
            key="servers",
            pick=_servers,
            rows=False,  # a partitioned node's membership is not in question, its links are
        )
        observers = list(dict.fromkeys([node, *self.ctx.active_names()]))
        judge = CutFromMeshJudge(node, self.ctx.node_id(node))
        self._wait_on_mesh(
            observers, wait, judge, timeout=timeout, poll=poll, describe=describe_servers
        )
