"""Generation checks: selected equals running (and an expected generation) on a node, now and
for a whole window after a rollback or a restart."""

from __future__ import annotations

from datetime import timedelta

from robot.api import logger
from robot.api.deco import keyword

from tribesqa.checks.generations import GenerationStaysJudge
from tribesqa.contract import GenerationStatus
from tribesqa.diagnostics import TribesFailure
from tribesqa.keywords.component import Component
from tribesqa.waiting import ConvergenceFailure, consistently


class GenerationKeywords(Component):
    """Whether a node's selected and running generations agree, now or for a window."""

    TAGS = ("node",)  # keyword tags in libdoc: this component's domain

    def _generation_status(self, node: str) -> GenerationStatus:
        return self.ctx.client(node).call_typed("generation.status")  # type: ignore[return-value]

    @keyword
    def generation_should_be_converged(
        self, node: str, expected: str | None = None
    ) -> GenerationStatus:
        """``selected`` equals ``running`` on ``node`` (and equals ``expected`` when given).

        ``expected`` is a store path or a generation number.

        Example:
        | ${status}=    Generation Should Be Converged    hetzner-1
        | Generation Should Be Converged    hetzner-1    1
        | Generation Should Be Converged    hetzner-1    ${BASELINE}
        """
        status = self._generation_status(node)
        if status.selected != status.running:
            raise TribesFailure(
                f"node {node}: selected generation {status.selected} but running {status.running}"
            )
        if expected is not None:
            try:
                want = (
                    status.generation(expected).path if str(expected).isdigit() else str(expected)
                )
            except LookupError as error:
                raise TribesFailure(f"node {node}: {error}") from None
            if status.running != want:
                raise TribesFailure(f"node {node}: running {status.running}, expected {want}")
        return status

    @keyword
    def generations_should_be_converged_on_nodes(
        self, expected: str | None = None, *nodes: str
    ) -> None:
        """``Generation Should Be Converged`` on every node at once.

        Example:
        | Generations Should Be Converged On Nodes    ${BASELINE}    hetzner-1    scaleway-1
        | Generations Should Be Converged On Nodes    # every active node, selected == running
        """
        self.on_each(
            self.nodes_or_active(nodes),
            lambda n: self.generation_should_be_converged(n, expected),
            what="generation check",
        )

    @keyword
    def generation_should_stay_at(
        self,
        node: str,
        generation: str,
        duration: timedelta | None = None,
        *,
        poll: timedelta | None = None,
    ) -> None:
        """Selected and running stay at ``generation`` (a store path) on ``node`` for ``stays_stale``.

        The "consistently" check after a rollback and a restart: no rollout plan is replayed
        behind the runner's back. Fails at the first poll where either moves, naming the node.
        ``duration`` is this keyword's ``timeout=`` (default: ``stays_stale``); ``poll=``
        overrides ``poll_interval`` for this call.

        Example:
        | Restart Node    hetzner-1
        | Generation Should Stay At    hetzner-1    ${BASELINE}
        | Generation Should Stay At    hetzner-1    ${BASELINE}    duration=10 min    poll=30 s
        """
        node, path = str(node), str(generation)
        timing = self.ctx.wait_timing(
            "stays_stale",
            duration,
            poll,
            keyword="Generation Should Stay At",
            timeout_arg="duration",
        )
        try:
            consistently(
                [node],
                lambda name: self._generation_status(name).model_dump(mode="json"),
                GenerationStaysJudge(path),
                what=f"node {node} stays at generation {path}",
                duration_s=timing.timeout_s,
                interval_s=timing.interval_s,
            )
        except ConvergenceFailure as failure:
            raise TribesFailure(f"{failure.message} [{timing.origin}]") from None
        logger.info(f"node {node}: selected and running stayed at {path}")
