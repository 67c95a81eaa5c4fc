"""What the convergence keywords share: contract-checked membership probes, the one wait with
its failure report (message, diff table, timeline, snapshot links), one-look fan-outs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from robot.api import logger

from tribesqa.checks.judgement import _MAX_REPORT_MISMATCHES, Judgement, Rows, _Judge
from tribesqa.clients.management_client import ManagementClient
from tribesqa.contract import (
    PluginState,
    parse_method_result,
    parse_payload,
)
from tribesqa.diagnostics import TribesFailure, fail
from tribesqa.fan_out import fan_out
from tribesqa.keywords.component import Component
from tribesqa.timing import WaitTiming
from tribesqa.waiting import (
    SYSTEM_CLOCK,
    Clock,
    ConvergenceFailure,
    WaitResult,
    consistently,
    poll_until,
    short_repr,
)

MAX_PROBE_WORKERS = 64
"""Concurrent probes per attempt: a 50-node fleet is polled in one wave."""

_POLL_CLIENT_SUFFIX = "#poll"


class _CheckedRows:
    """Membership rows already contract-checked, by their exact content as a node sent them.

    In one poll of a converged 50-node fleet the 50 views carry the same 50 rows: checking
    each distinct row once instead of 2,500 times is most of a poll's CPU time. A view whose
    every row is known is returned from here; any unknown row sends the whole view through the
    models, so errors (and the one-row-per-node rule) are reported exactly as before.
    """

    LIMIT = 20_000

    def __init__(self) -> None:
        self._rows: dict[tuple[tuple[str, Any], ...], dict[str, Any]] = {}

    @staticmethod
    def _key(row: Any) -> tuple[tuple[str, Any], ...] | None:
        if not isinstance(row, dict):
            return None
        key = tuple(row.items())
        try:
            hash(key)
        except TypeError:  # a nested value: not a row this memo can vouch for
            return None
        return key

    def known(self, result: Any) -> Rows | None:
        rows = result.get("nodes") if isinstance(result, dict) else None
        if not isinstance(rows, list):
            return None
        checked = []
        for row in rows:
            key = self._key(row)
            known = self._rows.get(key) if key is not None else None
            if known is None:
                return None
            checked.append(dict(known))
        if len({row["node_id"] for row in checked}) != len(checked):
            return None  # duplicates: let the model say so
        return checked

    def remember(self, result: dict[str, Any], checked: Rows) -> None:
        if len(self._rows) > self.LIMIT:
            self._rows.clear()
        for raw, row in zip(result["nodes"], checked, strict=True):
            key = self._key(raw)
            if key is not None:
                self._rows[key] = dict(row)


_CHECKED_ROWS = _CheckedRows()


def fetch_membership_rows(client: Any) -> Rows:
    """One observer's ``cluster_nodes.list`` (contract-checked) as JSON-shaped rows."""
    result = client.call("cluster_nodes.list")
    known = _CHECKED_ROWS.known(result)
    if known is not None:
        return known
    view = parse_method_result("cluster_nodes.list", result, source=f"node {client.node}")
    checked = [row.model_dump(mode="json") for row in view.nodes]
    _CHECKED_ROWS.remember(result, checked)
    return checked


# ---------------------------------------------------------------------------------------------
# Keywords
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _WaitSpec:
    what: str
    """Failure prefix, e.g. ``membership not converged``."""
    done: str
    """Success prefix, e.g. ``membership converged``."""
    timing: WaitTiming
    """Deadline and poll interval (the table's, or the call's ``timeout=`` / ``poll=``)."""
    title: str = "row \\ node"


class ConvergenceBase(Component):
    """Plumbing of the convergence keywords: probes, the wait with its report, one-look checks."""

    clock: Clock = SYSTEM_CLOCK

    # -- plumbing ----------------------------------------------------------------------------
    def nodes_or_active(self, nodes: Sequence[str] | None) -> list[str]:
        self._learn_node_ids()
        return super().nodes_or_active(nodes)

    def _learn_node_ids(self) -> None:
        """Map Legion node names to membership node ids (they differ on a real fleet)."""
        try:
            snapshot = self.ctx.require_target().legion.snapshot()
        except Exception as error:  # the mapping is an aid; names stay usable as ids
            logger.debug(f"node ids not refreshed from Legion: {error}")
            return
        self.ctx.learn_node_ids({m.node: m.node_id for m in snapshot.cluster_membership})

    def _probe_timeout(self) -> float:
        timeouts = self.ctx.require_timeouts()
        return max(1.0, 2 * timeouts.poll_interval)

    def _failure_links(self) -> dict[str, str]:
        """Capture the failure snapshot now (ArtifactKeywords' hook) and link it from the report."""
        hook = getattr(self.ctx, "capture_failure", None)
        if hook is None:
            return {}
        try:
            return dict(hook())
        except Exception as error:  # capturing must never hide the real failure
            logger.warn(f"failure snapshot not captured: {error}")
            return {}

    def _failure(
        self,
        message: str,
        judgement: Judgement | None,
        result: WaitResult | None,
        *,
        title: str,
    ) -> TribesFailure:
        if judgement is not None:
            judgement.explained()
        mismatches = list(judgement.mismatches) if judgement else []
        if len(mismatches) > _MAX_REPORT_MISMATCHES:
            logger.info(
                f"{len(mismatches)} mismatches; the report shows the first {_MAX_REPORT_MISMATCHES}"
            )
            mismatches = mismatches[:_MAX_REPORT_MISMATCHES]
        return fail(
            message,
            matrix=judgement.matrix if judgement else None,
            timeline=result.timeline if result is not None and result.attempts > 1 else None,
            mismatches=mismatches,
            links=self._failure_links(),
            title=title,
        )

    def _wait(
        self,
        nodes: Sequence[str],
        probe: Callable[[str], Any],
        judge: _Judge,
        spec: _WaitSpec,
        *,
        describe: Callable[[Any], str] = short_repr,
        once: bool = False,
        hold: bool = False,
    ) -> WaitResult:
        """poll_until (or one attempt when ``once``) with the report on failure.

        ``hold``: ``consistently`` instead, for the window ``spec.timing`` gives ("stays X for
        D s"): fails at the first poll the judge does not find done, with the same report.
        """
        pacing: dict[str, Any] = {
            "what": spec.done,  # the goal (console progress lines); failures use spec.what
            "interval_s": spec.timing.interval_s,
            "clock": self.clock,
            "describe": describe,
            "max_workers": MAX_PROBE_WORKERS,
            "probe_timeout_s": self._engine_probe_timeout(once=once, hold=hold),
        }
        try:
            if hold:
                result = consistently(
                    list(nodes), probe, judge, duration_s=spec.timing.timeout_s, **pacing
                )
            else:
                timeout_s = 0.0 if once else spec.timing.timeout_s
                result = poll_until(list(nodes), probe, judge, timeout_s=timeout_s, **pacing)
        except ConvergenceFailure as failure:
            judgement = judge.last
            if judgement is None:  # cannot happen: the engine judges before it fails
                raise TribesFailure(failure.message) from None
            message = judgement.message(spec.what, None if once else failure.result.elapsed_s)
            raise self._failure(
                message
                if once
                else f"{message} [{spec.timing.origin}; {failure.result.attempts} polls]",
                judgement,
                failure.result,
                title=spec.title,
            ) from None
        logger.info(
            f"{spec.done}: {result.verdict.summary} after {result.elapsed_s:.1f} s "
            f"({result.attempts} poll{'s' if result.attempts != 1 else ''}; {spec.timing.origin})"
        )
        return result

    def _engine_probe_timeout(self, *, once: bool, hold: bool) -> float | None:
        """How long one attempt waits for its probes.

        One look is patient (the client retries a 503 up to node_ready): a slow answer is an
        answer, not "unreachable". Polls are bounded so a slow node cannot stall the others.
        In a hold every read counts, so a read may take a whole management call first.
        """
        if once:
            return None
        if hold:
            return max(self._probe_timeout(), self.ctx.require_timeouts().management_call)
        return self._probe_timeout()

    def _poll_client(self, node: str) -> ManagementClient:
        """A management client for polls: same signing and timeout, but no readiness retry.

        The context's client retries a 503 (booting, restarting) for up to ``node_ready``; in
        a poll that would hold the whole attempt while the other nodes' answers go stale, so
        here a 503 is just "not yet" and the next attempt asks again. Kept in the context's
        client table (under a suffixed key) so that closing the target closes it.
        """
        record = self.ctx.record(node)
        if record.admin_url is None:
            raise AssertionError(
                f"node {node} has no admin URL yet (Legion status {record.status.value})"
            )
        key = f"{node}{_POLL_CLIENT_SUFFIX}"
        client = self.ctx.clients.get(key)
        if client is not None and client.admin_url == record.admin_url.rstrip("/"):
            return client
        client = self.ctx.new_client(node, record.admin_url, patient=False)
        previous = self.ctx.clients.get(key)
        self.ctx.clients[key] = client
        if previous is not None:
            previous.close()
        return client

    def _membership_rows(self, node: str) -> Rows:
        """Membership probe of the waits (a booting node is "not yet", at once)."""
        return fetch_membership_rows(self._poll_client(node))

    def _membership_rows_patient(self, node: str) -> Rows:
        """Membership probe of the one-look checks (a restarting node gets ``node_ready``)."""
        return fetch_membership_rows(self.ctx.client(node))

    def _plugin_state(self, node: str, run_id: str) -> dict[str, Any]:
        status, payload = self.ctx.plugins().request(
            node, "GET", f"state?run_id={quote(str(run_id), safe='')}"
        )
        if status != 200:
            detail = payload.get("error") if isinstance(payload, Mapping) else short_repr(payload)
            raise AssertionError(f"plugin API state answered HTTP {status}: {detail}")
        state = parse_payload(PluginState, payload, source=f"node {node} / plugin state")
        return state.model_dump(mode="json")

    def _once(
        self, nodes: Sequence[str], probe: Callable[[str], Any]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Probe every node once, concurrently; errors are data (the view is None)."""
        results, errors = fan_out(nodes, probe, max_workers=MAX_PROBE_WORKERS)
        folded = {node: " ".join(text.split()) for node, text in errors.items()}
        return {node: results.get(node) for node in nodes}, folded
