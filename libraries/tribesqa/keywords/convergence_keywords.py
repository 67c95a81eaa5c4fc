"""Keywords that every node agrees: membership, activation, archive, sync endpoints, health, tribe."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from robot.api import logger
from robot.api.deco import keyword

from tribesqa.checks.health import TRIBE_UNKNOWN, ClusterHealthJudge, TribeJudge
from tribesqa.checks.judgement import (
    SYNC_HEALTH_PATH,
    Judgement,
    _agree_phrase,
    _by_id,
    _iso,
    _short_error,
    parse_time,
)
from tribesqa.checks.lifecycle import ArchiveJudge, activation_problems, sync_endpoint_problems
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
from tribesqa.keywords.convergence_base import ConvergenceBase, _WaitSpec, fetch_membership_rows
from tribesqa.reporting.diffing import (
    Matrix,
    membership_matrix,
)
from tribesqa.timing import WaitTiming
from tribesqa.waiting import (
    short_repr,
)


class ConvergenceKeywords(ConvergenceBase):
    """Membership, activation, archive, sync endpoint, health and tribe checks on every node."""

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
    def node_should_be_archived_as_decommissioned(
        self,
        node: str,
        since: str | datetime | None = None,
        *,
        timeout: timedelta | None = None,
        poll: timedelta | None = None,
    ) -> None:
        """Every remaining active node keeps the row of ``node`` as ``decommissioned`` and no longer syncs with it.

        Polls up to ``membership_converged`` (``timeout=`` / ``poll=`` override the table for
        this call): the row exists with status ``decommissioned`` and
        ``decommissioned_at`` set (not before ``since``, an RFC 3339 time or a datetime, less
        the ``clock_skew`` allowance of the timeouts table), and the transport address of ``node`` is
        none of the observers' ``sync.status`` servers.

        Example:
        | ${before}=    Get Current Time UTC
        | Decommission Node    ovh-1
        | Node Should Be Archived As Decommissioned    ovh-1    since=${before}    timeout=2 min
        """
        node = str(node)
        timing = self.ctx.wait_timing(
            "membership_converged",
            timeout,
            poll,
            keyword="Node Should Be Archived As Decommissioned",
        )
        moment = None if since is None else parse_time(since, "since")
        records = self.ctx.refresh_records()
        observers = [
            n for n, r in records.items() if r.status is LegionNodeStatus.READY and n != node
        ]
        if not observers:
            raise TribesFailure(f"node {node}: no remaining active node to check the archive on")
        record = records.get(node)
        timeouts = self.ctx.require_timeouts()
        address = record.transport_address if record else None
        judge = ArchiveJudge(self.ctx.node_id(node), address, moment, timeouts.clock_skew)

        def probe(observer: str) -> dict[str, Any]:
            client = self._poll_client(observer)
            rows = fetch_membership_rows(client)
            status = client.call_typed("sync.status")
            return {"rows": rows, "servers": [s.url for s in status.servers]}  # type: ignore[attr-defined]

        def describe(view: Any) -> str:
            if not isinstance(view, Mapping):
                return short_repr(view)
            row = _by_id(view["rows"]).get(self.ctx.node_id(node))
            state = "no row" if row is None else str(row.get("status"))
            return f"{node}:{state}, {len(view['servers'])} servers"

        spec = _WaitSpec(
            f"node {node} not archived as decommissioned",
            f"node {node} archived as decommissioned",
            timing,
            "membership row \\ observer",
        )
        self._wait(observers, probe, judge, spec, describe=describe)

    @keyword
    def activation_should_be_fresh(self, node: str, after: str | datetime) -> None:
        """The ``activated_at`` of ``node`` is later than ``after`` on every active node (one look).

        Use it after a reactivation or replacement: take the time before the step with
        ``Get Current Time UTC``. ``after`` is moved back by the ``clock_skew`` of the timeouts
        table (node clocks against the runner's; 0 on the simulator).

        Example:
        | ${before}=    Get Current Time UTC
        | Reactivate Node    ovh-1
        | Activation Should Be Fresh    ovh-1    ${before}
        """
        node = str(node)
        skew = self.ctx.require_timeouts().clock_skew
        moment = parse_time(after, "after")
        observers = self.nodes_or_active(())
        if node not in observers:
            observers.append(node)
        views, errors = self._once(observers, self._membership_rows_patient)
        problems, mismatches = activation_problems(
            self.ctx.node_id(node), views, errors, moment, skew
        )
        if problems:
            good = len(observers) - len({m.node for m in mismatches} | set(errors))
            judgement = Judgement(
                False,
                "; ".join(problems),
                _agree_phrase(good, len(observers)),
                matrix=membership_matrix(views),
                mismatches=mismatches,
            )
            allowance = f", allowing {skew:g} s of clock skew" if skew else ""
            message = (
                f"activation of {node} is not fresh (before {_iso(moment)} at the node's "
                f"precision{allowance}): "
                f"{judgement.problem}; {judgement.agreement}"
            )
            raise self._failure(message, judgement, None, title="membership row \\ observer")
        logger.info(f"{node}: activated_at after {_iso(moment)} on {len(observers)} node(s)")

    @keyword("Get Current Time UTC")
    def get_current_time_utc(self) -> datetime:
        """The current time as an aware UTC datetime (for ``since`` / ``after`` arguments).

        Example: ``${before}=    Get Current Time UTC``
        """
        return self.clock.wall()

    @keyword
    def sync_endpoints_should_match_transport_addresses(self, *nodes: str) -> None:
        """Legion's ``sync_endpoint`` of each active node equals what every peer reports, and serves.

        For each node: Legion's value equals the ``transport_address`` of its row on every
        active node, the URL is ``http`` or ``https`` with an explicit port, and
        the endpoint answers on its scheme and port (any HTTP answer below 500: a real mesh endpoint
        may refuse a plain GET). One look, all nodes at once.

        Example: ``Sync Endpoints Should Match Transport Addresses``
        """
        names = self.nodes_or_active(nodes)
        records = self.ctx.refresh_records()
        views, errors = self._once(names, self._membership_rows_patient)
        timeout = min(self.ctx.require_timeouts().management_call, 5.0)
        target = self.ctx.require_target()

        def reach(name: str) -> str | None:
            record = records.get(name)
            endpoint = record.sync_endpoint if record else None
            if not endpoint:
                return None
            # ws/wss endpoints are HTTP(S) servers until the upgrade.
            url = re.sub(r"^ws", "http", endpoint.rstrip("/")) + SYNC_HEALTH_PATH
            return target.sync_endpoint_problem(url, timeout)

        reachability, _ = self._once(names, reach)
        failures: list[str] = []
        cells: dict[tuple[str, str], dict[str, Any] | None] = {}
        columns = ["Legion", *names]
        for name in names:
            record = records.get(name)
            endpoint = record.sync_endpoint if record else None
            cells[(name, "Legion")] = {
                "transport_address": endpoint,
                "health": "ok" if reachability.get(name) is None else "unreachable",
            }
            for observer in names:
                rows = views.get(observer)
                if rows is None:
                    continue
                row = _by_id(rows).get(self.ctx.node_id(name))
                cells[(name, observer)] = (
                    None if row is None else {"transport_address": row.get("transport_address")}
                )
            problems = sync_endpoint_problems(name, endpoint, views, reachability.get(name))
            if problems:
                failures.append(f"{name}: " + "; ".join(problems))
        for observer, error in errors.items():
            failures.append(f"{observer} unreachable ({_short_error(error)})")
        if failures:
            matrix = Matrix(
                list(names),
                columns,
                cells,
                ["transport_address", "health"],
                [n for n in names if views.get(n) is None],
            )
            message = "sync endpoints do not match transport addresses: " + " | ".join(failures)
            raise self._failure(
                message,
                Judgement(False, message, "", matrix=matrix),
                None,
                title="node \\ Legion and observers",
            )
        logger.info(
            f"sync endpoints of {len(names)} node(s) match and answer on their scheme and port"
        )

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
