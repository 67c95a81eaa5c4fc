"""One node's lifecycle as every other node sees it: its archived row after a decommission, a
fresh activation after a reactivation, and sync endpoints that match the transport addresses."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from robot.api import logger
from robot.api.deco import keyword

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
from tribesqa.contract import LegionNodeStatus
from tribesqa.diagnostics import TribesFailure
from tribesqa.keywords.convergence_base import ConvergenceBase, _WaitSpec, fetch_membership_rows
from tribesqa.reporting.diffing import Matrix, membership_matrix
from tribesqa.waiting import short_repr


class LifecycleKeywords(ConvergenceBase):
    """The archive, activation and sync endpoint of a node, checked on every active node."""

    TAGS = ("convergence",)  # keyword tags in libdoc: this component's domain

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
