"""Keywords over the plugin tables of every node: converged state, items visible, staying absent."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from robot.api import logger
from robot.api.deco import keyword

from tribesqa.checks.judgement import _short_error
from tribesqa.checks.plugin_state import (
    ItemVisibleJudge,
    PluginStateJudge,
    StaysAbsentJudge,
    _find_item,
    describe_plugin_state,
)
from tribesqa.contract import (
    Case,
    Event,
)
from tribesqa.diagnostics import TribesFailure
from tribesqa.keywords.convergence_base import ConvergenceBase, _WaitSpec
from tribesqa.timing import WaitTiming
from tribesqa.waiting import (
    ConvergenceFailure,
    consistently,
)


class PluginStateKeywords(ConvergenceBase):
    """Plugin tables on every node: converged state, a case or event visible, an id staying absent."""

    TAGS = ("plugin", "convergence")  # keyword tags in libdoc: this component's domain

    # -- plugin state --------------------------------------------------------------------------
    @keyword
    def wait_until_plugin_state_converged(
        self,
        run_id: str,
        *nodes: str,
        expected_cases: int | None = None,
        expected_events: int | None = None,
        timeout: timedelta | None = None,
        poll: timedelta | None = None,
    ) -> dict[str, Any]:
        """Wait until every node holds the same supertest cases, events and counters for ``run_id``.

        Optional ``expected_cases`` / ``expected_events``: how many each node must hold. Polls
        the plugin API (HTTP or SSH, per target) up to ``plugin_state_converged`` (``timeout=``
        and ``poll=`` override the table for this call); the report
        shows ``case:<id>`` / ``event:<id>`` rows x nodes. Returns the converged state
        (``cases``, ``events``). Nodes: every active node, or the ones given.

        Example:
        | Wait Until Plugin State Converged    ${run_id}    expected_cases=2    expected_events=3
        | Wait Until Plugin State Converged    ${run_id}    hetzner-1    ovh-1    timeout=10 min
        """
        names = self.nodes_or_active(nodes)
        judge = PluginStateJudge(expected_cases, expected_events)
        timing = self.ctx.wait_timing(
            "plugin_state_converged", timeout, poll, keyword="Wait Until Plugin State Converged"
        )
        spec = _WaitSpec(
            f"plugin state of run {run_id} not converged",
            f"plugin state of run {run_id} converged",
            timing,
            "item \\ node",
        )
        result = self._wait(
            names,
            lambda n: self._plugin_state(n, str(run_id)),
            judge,
            spec,
            describe=describe_plugin_state,
        )
        return dict(result.values()[names[0]])

    def _wait_item(
        self,
        node: str,
        run_id: str,
        kind: str,
        item_id: str,
        counter: int | None,
        timing: WaitTiming,
    ) -> dict[str, Any]:
        judge = ItemVisibleJudge(kind, item_id, counter)
        spec = _WaitSpec(
            f"run {run_id}",
            f"run {run_id}: {kind[:-1]} {item_id} visible on {node}",
            timing,
            "item \\ node",
        )

        def describe(state: Any) -> str:
            found = _find_item(state, item_id) if isinstance(state, Mapping) else None
            if found is None:
                return f"absent ({describe_plugin_state(state)})"
            return f"present counter={found[1].get('counter')}" if kind == "cases" else "present"

        result = self._wait(
            [node], lambda n: self._plugin_state(n, run_id), judge, spec, describe=describe
        )
        found = _find_item(result.values()[node], item_id)
        assert found is not None
        return dict(found[1])

    @keyword
    def wait_until_case_is_visible_on_node(
        self,
        node: str,
        run_id: str,
        case_id: str,
        counter: int | None = None,
        *,
        timeout: timedelta | None = None,
        poll: timedelta | None = None,
    ) -> Case:
        """Wait until ``node`` holds case ``case_id`` of ``run_id`` (with ``counter`` when given).

        Polls up to ``case_visible`` (``timeout=`` / ``poll=`` override the table for this
        call); returns the case (``${case.counter}``, ``${case.name}``).

        Example:
        | ${case}=    Wait Until Case Is Visible On Node    ovh-1    ${run}    ${id}    counter=3
        | Wait Until Case Is Visible On Node    ovh-1    ${run}    ${id}    timeout=1 min    poll=2 s
        """
        timing = self.ctx.wait_timing(
            "case_visible", timeout, poll, keyword="Wait Until Case Is Visible On Node"
        )
        item = self._wait_item(str(node), str(run_id), "cases", str(case_id), counter, timing)
        return Case.model_validate(item)

    @keyword
    def wait_until_event_is_visible_on_node(
        self,
        node: str,
        run_id: str,
        event_id: str,
        *,
        timeout: timedelta | None = None,
        poll: timedelta | None = None,
    ) -> Event:
        """Wait until ``node`` holds event ``event_id`` of ``run_id``; returns the event.

        Polls up to ``case_visible`` (``timeout=`` / ``poll=`` override the table for this call).

        Example:
        | Wait Until Event Is Visible On Node    scaleway-1    ${run}    ${event.id}
        | Wait Until Event Is Visible On Node    scaleway-1    ${run}    ${event.id}    timeout=1 min
        """
        timing = self.ctx.wait_timing(
            "case_visible", timeout, poll, keyword="Wait Until Event Is Visible On Node"
        )
        item = self._wait_item(str(node), str(run_id), "events", str(event_id), None, timing)
        return Event.model_validate(item)

    @keyword
    def node_should_stay_stale_for(
        self,
        node: str,
        run_id: str,
        case_or_event_id: str,
        duration: timedelta | None = None,
        *,
        poll: timedelta | None = None,
    ) -> None:
        """``case_or_event_id`` stays ABSENT on ``node`` for ``duration`` ("consistently").

        Default duration: the ``stays_stale`` timeout (``duration`` is this keyword's
        ``timeout=``); ``poll=`` overrides ``poll_interval`` for this call. Fails at the first
        poll where the id appears (or the plugin state cannot be read), naming the node and when
        it appeared.

        Example:
        | Node Should Stay Stale For    ovh-1    ${run}    ${case.id}    duration=2
        | Node Should Stay Stale For    ovh-1    ${run}    ${case.id}    duration=5 min    poll=10 s
        """
        node, run_id, item_id = str(node), str(run_id), str(case_or_event_id)
        timeouts = self.ctx.require_timeouts()
        timing = self.ctx.wait_timing(
            "stays_stale",
            duration,
            poll,
            keyword="Node Should Stay Stale For",
            timeout_arg="duration",
        )
        seconds = timing.timeout_s
        judge = StaysAbsentJudge(item_id)
        what = f"{node} did not stay stale for {seconds:g} s"

        def describe(state: Any) -> str:
            found = _find_item(state, item_id) if isinstance(state, Mapping) else None
            return "absent" if found is None else f"PRESENT ({found[0][:-1]})"

        # One read before the window opens the node's transport (an SSH login can take longer
        # than a poll): inside the window every read counts, and a slow first one is no evidence.
        try:
            self._plugin_state(node, run_id)
        except Exception as error:
            raise TribesFailure(
                f"{what}: could not read the plugin state of {node} before the window "
                f"({_short_error(str(error))})"
            ) from None
        try:
            result = consistently(
                [node],
                lambda n: self._plugin_state(n, run_id),
                judge,
                what=what,
                duration_s=seconds,
                interval_s=timing.interval_s,
                clock=self.clock,
                describe=describe,
                # A read that cannot answer within a whole management call is a failed read.
                probe_timeout_s=max(self._probe_timeout(), timeouts.management_call),
            )
        except ConvergenceFailure as failure:
            judgement = judge.last
            assert judgement is not None
            message = (
                f"{judgement.problem} after {failure.result.elapsed_s:.1f} s "
                f"(expected it to stay absent for {seconds:g} s; run {run_id}) [{timing.origin}]"
            )
            raise self._failure(message, judgement, failure.result, title="item \\ node") from None
        logger.info(
            f"{item_id} stayed absent on {node} for {result.elapsed_s:.1f} s ({result.attempts} polls)"
        )
