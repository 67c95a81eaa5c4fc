"""Scenario-level checks the suites phrase in one line: expected tables, previews, graph runs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from robot.api import logger
from robot.api.deco import keyword
from robot.libraries.BuiltIn import BuiltIn

from tribesqa.context import LibraryContext
from tribesqa.contract import (
    GenerationStatus,
    GraphRun,
    LegionNodeStatus,
    MemberStatus,
    RolloutPreview,
)
from tribesqa.diagnostics import TribesFailure
from tribesqa.guard import destructive
from tribesqa.keywords.component import Component
from tribesqa.waiting import (
    ConvergenceFailure,
    Observation,
    Verdict,
    WaitTerminal,
    WaitTimeout,
    all_nodes_satisfy,
    consistently,
    poll_until,
)


class ScenarioKeywords(Component):
    TAGS = ("scenario",)  # keyword tags in libdoc: this component's domain

    def __init__(self, ctx: LibraryContext) -> None:
        super().__init__(ctx)
        self.failed_steps: list[str] = []

    def on_suite_start(self) -> None:
        self.failed_steps = []

    def on_test_end(self, result: Any = None) -> None:
        if result is not None and getattr(result, "failed", False):
            self.failed_steps.append(result.name)

    @keyword
    def skip_if_an_earlier_step_failed(self) -> None:
        """Test setup of scenario suites whose tests are consecutive steps of one runbook.

        When an earlier step of this suite failed, the cluster is not in the state this step
        starts from: skip it with the name of the step that failed, instead of failing again
        with a confusing secondary error.

        Example:
        | Test Setup    Skip If An Earlier Step Failed
        """
        if self.failed_steps:
            BuiltIn().skip(
                f"skipped: the earlier step '{self.failed_steps[0]}' failed, and this step builds on it"
            )

    @keyword
    def expected_membership_from_legion(self, *statuses: str) -> dict[str, dict[str, Any]]:
        """Build an expected membership table from ``node:status`` pairs and Legion's records.

        Each entry expects the status given, the transport address Legion reports for the node and
        the ``full`` replication scope. With no pairs, every node Legion lists as ready or
        decommissioned is expected with that status.

        Example: ``${expected}=    Expected Membership From Legion    hetzner-1:active    ovh-1:syncing``
        """
        records = self.ctx.refresh_records()
        pairs: list[tuple[str, str]] = []
        for item in statuses:
            node, separator, status = str(item).partition(":")
            if not separator or status not in {s.value for s in MemberStatus}:
                raise TribesFailure(
                    f"expected membership entry {item!r} must be node:status with status syncing, active or decommissioned"
                )
            pairs.append((node, status))
        if not pairs:
            legion_to_member = {
                LegionNodeStatus.READY: MemberStatus.ACTIVE,
                LegionNodeStatus.DECOMMISSIONED: MemberStatus.DECOMMISSIONED,
            }
            pairs = [
                (name, legion_to_member[r.status].value)
                for name, r in records.items()
                if r.status in legion_to_member
            ]
        expected: dict[str, dict[str, Any]] = {}
        for node, status in pairs:
            record = records.get(node)
            if record is None:
                raise TribesFailure(f"expected membership names {node}, which Legion does not know")
            expected[node] = {
                "status": status,
                "transport_address": record.transport_address,
                "scope": "full",
            }
        return expected

    @keyword
    @destructive("plan one join node on each of {providers}")
    def plan_one_join_node_per_provider(self, *providers: str) -> list[str]:
        """Plan one join node on each provider (in order); returns the planned names.

        Example:
        | ${names}=    Plan One Join Node Per Provider    scaleway    ovh
        | Materialize Planned Nodes
        """
        legion = self.ctx.require_target().legion
        return [
            self.ctx.provisioned_node(legion.plan_join(str(provider).lower(), 1)[0]).name
            for provider in providers
        ]

    @keyword
    def preview_should_install_plugin(
        self, node: str, preview: RolloutPreview, plugin: str, commit: str = ""
    ) -> None:
        """The ``preview`` of ``node`` (from ``Preview Rollout``) adds ``plugin``, removes
        nothing, needs a restart and has every substitute.

        Example:
        | ${preview}=    Preview Rollout    hetzner-1    supertest    ${COMMIT}
        | Preview Should Install Plugin    hetzner-1    ${preview}    supertest    ${COMMIT}
        """
        problems = []
        if plugin not in preview.delta.plugins_added:
            problems.append(
                f"plugins_added is {preview.delta.plugins_added}, not including {plugin}"
            )
        if preview.delta.plugins_removed:
            problems.append(f"it would remove {preview.delta.plugins_removed}")
        if not preview.substitutes.available or preview.substitutes.missing:
            problems.append(f"substitutes missing: {preview.substitutes.missing}")
        if not preview.requires_restart:
            problems.append("it does not list the services that need a restart")
        if problems:
            raise TribesFailure(
                f"node {node}: rollout preview of {plugin}{'@' + commit if commit else ''}: "
                + "; ".join(problems)
            )

    @keyword
    def preview_should_report_missing_substitutes(
        self, node: str, preview: RolloutPreview, *packages: str
    ) -> None:
        """The ``preview`` of ``node`` (from ``Preview Rollout``) says substitutes are not all
        available and lists each of ``packages`` in ``substitutes.missing``: the run can fail
        before any switch instead of after a long build.

        Example:
        | ${preview}=    Preview Rollout    hetzner-1    not-a-plugin    ${COMMIT}
        | Preview Should Report Missing Substitutes    hetzner-1    ${preview}    tribes-plugin-not-a-plugin
        """
        unreported = [name for name in packages if name not in preview.substitutes.missing]
        if preview.substitutes.available or unreported:
            raise TribesFailure(
                f"node {node}: rollout preview {preview.plan_id} reports substitutes "
                f"available={preview.substitutes.available}, missing="
                f"{preview.substitutes.missing}; substitutes missing for "
                f"{', '.join(unreported or packages)} are not reported"
            )

    def _wait_until_node_reports_own_row(
        self, node: str, timeout_s: float, interval_s: float
    ) -> None:
        """A join in flight: wait until Legion has started the node and it holds its own row."""

        def state(_: str) -> str:
            record = self.ctx.refresh_records().get(node)
            if record is None:
                return "not known to Legion"
            if record.status in (LegionNodeStatus.FAILED, LegionNodeStatus.DESTROYED):
                return f"{record.status.value} in Legion"
            if not record.admin_url:
                return f"{record.status.value} in Legion"
            rows = self.ctx.client(node).call_typed("cluster_nodes.list").by_id()  # type: ignore[attr-defined]
            own = self.ctx.node_id(node) in rows
            return "syncing" if own else "running but without its own membership row"

        def gone(_: str, seen: str) -> str | None:
            if seen.endswith(("failed in Legion", "destroyed in Legion")):
                return f"node {node} is {seen.removesuffix(' in Legion')} in Legion, so it cannot be syncing"
            return None

        try:
            poll_until(
                [node],
                state,
                all_nodes_satisfy(lambda seen: seen == "syncing", label="syncing", terminal=gone),
                what=f"node {node} started syncing",
                timeout_s=timeout_s,
                interval_s=interval_s,
                max_workers=1,
            )
        except WaitTerminal as failure:
            raise TribesFailure(str(failure.result.verdict.terminal)) from None
        except WaitTimeout as timeout:
            seen = timeout.result.observations[node]
            last = seen.value if seen.error is None else f"not answering ({seen.error})"
            raise TribesFailure(
                f"node {node} never started syncing within {timeout_s:g} s: {last}"
            ) from None

    @keyword
    def node_should_stay_syncing_for(
        self, node: str, duration: timedelta | None = None, *, poll: timedelta | None = None
    ) -> None:
        """The own row of ``node`` stays ``syncing`` (never ``active``) on every node that has it, for ``duration`` s.

        The "consistently" check for a join that must not complete yet (e.g. while a peer it
        must replay from withholds events). Defaults to the ``stays_stale`` timeout (``duration``
        is this keyword's ``timeout=``); ``poll=`` overrides ``poll_interval`` for this call.

        Example:
        | Node Should Stay Syncing For    ovh-1    duration=3 s
        | Node Should Stay Syncing For    ovh-1    duration=5 min    poll=10 s
        """
        timeouts = self.ctx.require_timeouts()
        timing = self.ctx.wait_timing(
            "stays_stale",
            duration,
            poll,
            keyword="Node Should Stay Syncing For",
            timeout_arg="duration",
        )
        self._wait_until_node_reports_own_row(node, timeouts.node_ready, timeouts.poll_interval)
        observers = [*self.ctx.active_names(), node]

        def probe(observer: str) -> str:
            rows = self.ctx.client(observer).call_typed("cluster_nodes.list").by_id()  # type: ignore[attr-defined]
            row = rows.get(self.ctx.node_id(node))
            return row.status.value if row is not None else "absent"

        def judge(observations: dict[str, Observation]) -> Verdict:
            # The joining node itself must hold its row as syncing; no observer may hold it
            # active, and an observer that cannot answer or lacks the row is a deviation too.
            problems = []
            for observer, seen in observations.items():
                if seen.error is not None:
                    problems.append(f"{observer} unreachable ({seen.error})")
                elif seen.value == "active":
                    problems.append(f"{observer} already sees it active")
                elif observer == node and seen.value != "syncing":
                    problems.append(f"{node} itself reports {seen.value}")
            if problems:
                return Verdict(False, f"node {node}: " + "; ".join(problems), list(observations))
            return Verdict(True, f"node {node} still syncing")

        try:
            consistently(
                list(dict.fromkeys(observers)),
                probe,
                judge,
                what=f"node {node} stays syncing",
                duration_s=timing.timeout_s,
                interval_s=timing.interval_s,
            )
        except ConvergenceFailure as failure:
            raise TribesFailure(f"{failure.message} [{timing.origin}]") from None
        logger.info(f"node {node} stayed syncing on every observer for the whole window")

    @keyword
    def running_generation_should_hold_plugin(
        self, node: str, status: GenerationStatus, plugin: str, baseline: str | None = None
    ) -> None:
        """The running generation in the ``status`` of ``node`` (from
        ``Generation Should Be Converged``) holds ``plugin``, and it is not the ``baseline``
        store path when one is given.

        Example:
        | ${status}=    Generation Should Be Converged    hetzner-1
        | Running Generation Should Hold Plugin    hetzner-1    ${status}    supertest    baseline=${BASELINE}
        """
        running = next((g for g in status.generations if g.path == status.running), None)
        if running is None:
            raise TribesFailure(
                f"node {node}: running generation {status.running} is not in its generation list"
            )
        if plugin not in running.plugins:
            raise TribesFailure(
                f"node {node}: running generation {running.number} has plugins {running.plugins}, not {plugin}"
            )
        if baseline and status.running == baseline:
            raise TribesFailure(f"node {node}: still runs the baseline generation {baseline}")

    @keyword
    def graph_run_should_have_materialized(self, run: GraphRun, *nodes: str) -> None:
        """The graph ``run`` (from ``Materialize Planned Nodes``) succeeded and materialized every
        one of ``nodes`` (the names planned for it): one run took them all.

        Example:
        | ${names}=    Plan One Join Node Per Provider    scaleway    ovh
        | ${run}=    Materialize Planned Nodes
        | Graph Run Should Have Materialized    ${run}    @{names}
        """
        left = [str(name) for name in nodes if str(name) not in run.materialized]
        if run.state.value != "succeeded" or left:
            records = self.ctx.refresh_records()
            shown = ", ".join(
                f"{n} ({records[n].status.value})" if n in records else n for n in left
            )
            raise TribesFailure(
                f"graph run {run.id} is {run.state.value} and materialized "
                f"{', '.join(run.materialized) or 'nothing'}"
                + (f"; not materialized in this run: {shown}" if left else "")
            )
        logger.info(f"graph run {run.id} materialized {', '.join(run.materialized)}")

    @keyword
    def graph_run_should_have_stopped_half_way(self, run: GraphRun) -> None:
        """An interrupted graph run: state ``interrupted``, something left unmaterialized, and
        every node it did not materialize back to ``planned`` in Legion and on no node's
        membership.

        Example:
        | ${run}=    Interrupt Graph Run After    1
        | Graph Run Should Have Stopped Half Way    ${run}
        """
        if run.state.value != "interrupted":
            raise TribesFailure(f"graph run {run.id} is {run.state.value}, expected interrupted")
        leftover = [name for name in run.planned if name not in run.materialized]
        if not leftover:
            raise TribesFailure(
                f"graph run {run.id} materialized everything it planned; nothing was interrupted"
            )
        records = self.ctx.refresh_records()
        not_planned = [
            f"{n} ({records[n].status.value})"
            for n in leftover
            if n in records and records[n].status is not LegionNodeStatus.PLANNED
        ]
        if not_planned:
            raise TribesFailure(
                f"graph run {run.id}: nodes it did not materialize are not back to planned: {', '.join(not_planned)}"
            )
        for observer in self.ctx.active_names():
            rows = self.ctx.client(observer).call_typed("cluster_nodes.list").by_id()  # type: ignore[attr-defined]
            half = [n for n in leftover if self.ctx.node_id(n) in rows]
            if half:
                raise TribesFailure(
                    f"node {observer} holds a membership row for {', '.join(half)}, which the interrupted run never materialized"
                )

    @keyword
    def nodes_to_decommission_except(self, keep: str) -> list[str]:
        """Every ready node but ``keep``, when this suite provisioned them all; else it fails.

        Only nodes this suite provisioned are ever decommissioned: if the fleet has a ready
        node the suite did not provision (a shared or long-lived fleet), it fails before
        anything is touched, naming those nodes, since ``keep`` cannot become the last
        active node without decommissioning someone else's node.

        Example: ``${others}=    Nodes To Decommission Except    hetzner-1``
        """
        keep = str(keep)
        others = [name for name in self.ctx.active_names() if name != keep]
        foreign = [name for name in others if name not in self.ctx.provisioned]
        if foreign:
            raise TribesFailure(
                f"will not decommission {', '.join(foreign)}: not provisioned by this suite "
                f"(it provisioned {', '.join(self.ctx.provisioned) or 'nothing'}); point this "
                "suite at a fleet it owns"
            )
        return others
