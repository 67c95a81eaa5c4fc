"""Legion: provision, plan, materialize, decommission, replace, reactivate, destroy, snapshot."""

from __future__ import annotations

import json
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import timedelta

from robot.api import logger
from robot.api.deco import keyword

from tribesqa.checks.conformance import membership_record_problems, snapshot_secret_problems
from tribesqa.context import LibraryContext
from tribesqa.contract import (
    GraphRun,
    GraphRunState,
    LegionSnapshot,
    MemberStatus,
    NodeRecord,
    Provider,
)
from tribesqa.diagnostics import TribesFailure
from tribesqa.guard import destructive
from tribesqa.keywords.component import Component
from tribesqa.targets.base import LegionError


class LegionKeywords(Component):
    TAGS = ("legion",)  # keyword tags in libdoc: this component's domain

    def __init__(self, ctx: LibraryContext) -> None:
        super().__init__(ctx)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="graph-run")
        self._background: Future[GraphRun] | None = None

    def _provisioned(self, record: NodeRecord) -> NodeRecord:
        return self.ctx.provisioned_node(record)

    @keyword
    @destructive("provision an init node on {provider}")
    def provision_init_node(self, provider: Provider = Provider.HETZNER) -> NodeRecord:
        """Provision the cluster's first node on ``provider``; returns its Legion record.

        Example: ``${init}=    Provision Init Node    hetzner`` then use ``${init.name}``.
        """
        return self._provisioned(self.ctx.require_target().legion.provision_init(provider.value))

    @keyword
    @destructive("plan {count} join node(s) on {provider}")
    def plan_join_nodes(self, provider: Provider, count: int = 1) -> list[NodeRecord]:
        """Plan ``count`` join nodes on ``provider`` (status ``planned``); materialize them later.

        Example:
        | ${planned}=    Plan Join Nodes    scaleway    2
        | Materialize Planned Nodes
        """
        planned = self.ctx.require_target().legion.plan_join(provider.value, count)
        for record in planned:
            self._provisioned(record)
        return planned

    @keyword
    @destructive("materialize the planned nodes")
    def materialize_planned_nodes(self) -> GraphRun:
        """Materialize every planned node in ONE Legion graph run.

        Legion waits until each new peer is ``active`` on every node before it proceeds; a
        failed run fails this keyword with Legion's reason.

        Example:
        | Plan Join Nodes    scaleway    1
        | ${run}=    Materialize Planned Nodes
        | Should Be Equal    ${run.state.value}    succeeded
        """
        run = self.ctx.require_target().legion.materialize()
        self.ctx.refresh_records()
        return _succeeded(run)

    @keyword
    @destructive("start materializing the planned nodes")
    def start_materializing_planned_nodes(self) -> None:
        """Start the graph run of the planned nodes in the background (Legion blocks until each is active).

        Lets a test act while a membership change is in flight, e.g. end a fault it injected;
        ``Wait For Graph Run To Finish`` collects the result.

        Example:
        | Plan Join Nodes    ovh    1
        | Start Materializing Planned Nodes
        | Stop Publish Outage    scaleway-1
        | Wait For Graph Run To Finish
        """
        if self._background is not None and not self._background.done():
            raise TribesFailure("a background graph run is already in progress")
        legion = self.ctx.require_target().legion
        self._background = self._pool.submit(legion.materialize)

    @keyword
    def wait_for_graph_run_to_finish(self, *, timeout: timedelta | None = None) -> GraphRun:
        """Wait for the background graph run; fails with Legion's reason if it did not succeed.

        Waits up to ``legion_operation`` (``timeout=`` overrides it for this call). Nothing is
        polled: Legion answers the run's own request when the run ends, so there is no ``poll=``.

        Example:
        | Start Materializing Planned Nodes
        | ${run}=    Wait For Graph Run To Finish    timeout=30 min
        """
        if self._background is None:
            raise TribesFailure(
                "no background graph run was started (use Start Materializing Planned Nodes)"
            )
        timing = self.ctx.wait_timing(
            "legion_operation", timeout, keyword="Wait For Graph Run To Finish"
        )
        future, self._background = self._background, None
        try:
            run = future.result(timeout=timing.timeout_s)
        except FutureTimeout:
            raise TribesFailure(
                f"the background graph run did not finish within {timing.timeout_s:g} s "
                f"[{timing.timeout_note}]"
            ) from None
        self.ctx.refresh_records()
        return _succeeded(run)

    @keyword
    def graph_run_should_still_be_running(self) -> None:
        """The background graph run has not finished yet (Legion is still waiting for its joins).

        Example:
        | Plan Join Nodes    ovh    1
        | Start Materializing Planned Nodes
        | Graph Run Should Still Be Running
        """
        if self._background is None:
            raise TribesFailure(
                "no background graph run was started (use Start Materializing Planned Nodes)"
            )
        if self._background.done():
            error = self._background.exception()
            outcome = (
                f"failed: {error}"
                if error
                else f"finished: {self._background.result().state.value}"
            )
            raise TribesFailure(
                f"the background graph run already {outcome}, but it should still be waiting"
            )

    def on_test_end(self, result: object = None) -> None:
        """A graph run a failed test left behind is collected (bounded) so it cannot leak."""
        future, self._background = self._background, None
        if future is not None:
            try:
                future.result(timeout=self.ctx.require_timeouts().legion_operation)
            except Exception as error:  # the test already failed or passed; just report
                logger.warn(f"background graph run left by the test ended with: {error}")

    @keyword
    @destructive("materialize the planned nodes (interrupted after {nodes})")
    def interrupt_graph_run_after(self, nodes: int) -> GraphRun:
        """Materialize planned nodes but stop the graph run after ``nodes`` of them (a partial change).

        Returns the interrupted run (``state`` ``interrupted``, ``materialized`` lists what
        joined). The remaining nodes stay planned.

        Example:
        | Plan Join Nodes    scaleway    2
        | ${run}=    Interrupt Graph Run After    1
        | Should Be Equal    ${run.state.value}    interrupted
        """
        run = self.ctx.require_target().legion.materialize(nodes)
        self.ctx.refresh_records()
        return run

    @keyword
    @destructive("decommission {node}")
    def decommission_node(self, node: str) -> NodeRecord:
        """Ask Legion to decommission ``node``; check the archived rows with ``Node Should Be Archived As Decommissioned``.

        Example:
        | ${before}=    Get Current Time UTC
        | Decommission Node    ovh-1
        | Node Should Be Archived As Decommissioned    ovh-1    since=${before}
        """
        self.ctx.note_node(node)
        return self.ctx.require_target().legion.decommission(node)

    @keyword
    @destructive("ask Legion to decommission {node}")
    def decommission_should_be_refused(self, node: str, reason: str = "unsafe-operation") -> str:
        """Legion must refuse to decommission ``node`` with error ``reason``; returns its message.

        Example:
        | Interrupt Graph Run After    1
        | ${message}=    Decommission Should Be Refused    hetzner-1    unsafe-operation
        """
        self.ctx.note_node(node)
        try:
            record = self.ctx.require_target().legion.decommission(node)
        except LegionError as error:
            if error.code != reason:
                raise TribesFailure(
                    f"decommission {node} was refused with {error.code}, expected {reason}: {error.reason}"
                ) from None
            logger.info(f"Legion refused as expected: {error.reason}")
            return error.reason
        raise TribesFailure(
            f"Legion decommissioned {node} (now {record.status.value}) but should have refused it ({reason})"
        )

    @keyword
    @destructive("replace {node} with a node on {provider}")
    def replace_node(self, node: str, provider: Provider) -> NodeRecord:
        """Replace ``node`` with a new node on ``provider`` (decommission + join); returns the new record.

        Example:
        | ${replacement}=    Replace Node    ovh-1    hetzner
        | Wait Until Node Is Active Everywhere    ${replacement.name}
        """
        self.ctx.note_node(node)
        return self._provisioned(self.ctx.require_target().legion.replace(node, provider.value))

    @keyword
    @destructive("reactivate {node}")
    def reactivate_node(self, node: str) -> NodeRecord:
        """Ask Legion to bring a decommissioned ``node`` back; check it with ``Wait Until Node Is Active Everywhere``.

        Example:
        | ${before}=    Get Current Time UTC
        | Reactivate Node    ovh-1
        | Wait Until Node Is Active Everywhere    ovh-1
        | Activation Should Be Fresh    ovh-1    ${before}
        """
        self.ctx.note_node(node)
        return self.ctx.require_target().legion.reactivate(node)

    @keyword
    @destructive("destroy {node}")
    def destroy_node(self, node: str) -> None:
        """Destroy ``node`` (its server is gone afterwards).

        Example:
        | Destroy Node    hetzner-1
        """
        self.ctx.note_node(node)
        self.ctx.require_target().legion.destroy(node)
        if node in self.ctx.provisioned:
            self.ctx.provisioned.remove(node)
        self.ctx.records.pop(node, None)

    @keyword
    @destructive("destroy every node Legion lists")
    def destroy_all_nodes(self) -> None:
        """Destroy every node Legion knows about (use only on a fleet this run owns).

        Example:
        | Destroy All Nodes
        | Legion Node List Should Be Empty
        """
        self.ctx.require_target().legion.destroy_all()
        self.ctx.provisioned.clear()
        self.ctx.records.clear()

    @keyword
    def legion_node_list_should_be_empty(self) -> None:
        """Legion lists no node at all (after cleanup).

        Example:
        | Destroy All Nodes
        | Legion Node List Should Be Empty
        """
        nodes = self.ctx.require_target().legion.list_nodes()
        if nodes:
            raise TribesFailure(
                "Legion still lists node(s): "
                + ", ".join(f"{n.name} ({n.status.value})" for n in nodes)
            )

    @keyword
    def get_legion_node(self, node: str) -> NodeRecord:
        """Legion's record of ``node`` (provider, region, status, endpoints).

        Example:
        | ${record}=    Get Legion Node    hetzner-1
        | Should Be Equal    ${record.provider.value}    hetzner
        """
        return self.ctx.refresh_records().get(node) or self.ctx.record(node)

    @keyword
    def get_legion_node_names(self) -> list[str]:
        """Names of the nodes Legion reports ``ready`` (active members).

        Example:
        | ${names}=    Get Legion Node Names
        | Should Contain    ${names}    hetzner-1
        """
        return self.ctx.active_names()

    @keyword
    def get_legion_state_snapshot(self) -> LegionSnapshot:
        """Legion's sanitized state: nodes, ``clusterMembership`` (syncing, active, decommissioned rows), graph runs.

        The model rejects any field that looks like secret material, so a leaking Legion fails here.

        Example:
        | ${snapshot}=    Get Legion State Snapshot
        | Length Should Be    ${snapshot.nodes}    3
        """
        snapshot = self.ctx.require_target().legion.snapshot()
        logger.info(
            json.dumps(snapshot.model_dump(mode="json", by_alias=True), indent=1), html=False
        )
        return snapshot

    @keyword
    def legion_snapshot_should_hold_no_secret_material(self) -> None:
        """Legion's snapshot, as Legion answers it, holds no secret material anywhere: no key
        named like a secret (``private_key``, ``nsec``, ``token``, ...) and no ``nsec1`` or PEM
        private-key value. Fails naming the machine whose record leaks and the path, never the
        value.

        Example: ``Legion Snapshot Should Hold No Secret Material``
        """
        leaks = snapshot_secret_problems(self.ctx.require_target().legion.raw_snapshot())
        if leaks:
            raise TribesFailure(
                f"Legion's snapshot is not sanitized: secret material in the {leaks[0]}"
                + (
                    f" (and {len(leaks) - 1} more: {'; '.join(leaks[1:4])})"
                    if len(leaks) > 1
                    else ""
                )
            )

    @keyword
    def legion_snapshot_should_keep_membership_rows(self, *statuses: str) -> LegionSnapshot:
        """Legion's snapshot lists a ``clusterMembership`` row for each ``node:status`` given,
        with that status (``syncing`` rows while a join is under way, ``decommissioned`` rows
        archived); returns the snapshot.

        Example: ``Legion Snapshot Should Keep Membership Rows    hetzner-1:active    ovh-1:syncing``
        """
        expected: dict[str, MemberStatus] = {}
        for item in statuses:
            name, _, status = str(item).rpartition(":")
            try:
                expected[name] = MemberStatus(status)
            except ValueError:
                known = ", ".join(s.value for s in MemberStatus)
                raise TribesFailure(
                    f"expected row {item!r}: give node:status with status one of {known}"
                ) from None
            if not name:
                raise TribesFailure(f"expected row {item!r} names no node (give node:status)")
        snapshot = self.ctx.require_target().legion.snapshot()
        problems = membership_record_problems(snapshot, expected)
        if problems:
            held = ", ".join(f"{r.node}:{r.status.value}" for r in snapshot.cluster_membership)
            raise TribesFailure(
                f"Legion's snapshot lost membership: {'; '.join(problems)} (it holds {held or 'no row'})"
            )
        return snapshot

    @keyword
    def get_sync_endpoint_of(self, node: str) -> str:
        """The sync endpoint Legion exposes for ``node``.

        Example:
        | ${endpoint}=    Get Sync Endpoint Of    hetzner-1
        | ${view}=    Get Cluster Nodes    scaleway-1
        | Should Be Equal    ${view.nodes[0].transport_address}    ${endpoint}
        """
        record = self.get_legion_node(node)
        if not record.sync_endpoint:
            raise TribesFailure(
                f"Legion exposes no sync endpoint for {node} (status {record.status.value})"
            )
        return record.sync_endpoint


def _succeeded(run: GraphRun) -> GraphRun:
    if run.state is not GraphRunState.SUCCEEDED:
        raise TribesFailure(
            f"Legion graph run {run.id} {run.state.value}: {run.error or 'no reason given'}"
        )
    return run
