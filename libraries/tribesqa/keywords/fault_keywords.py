"""Faults (the nemesis): partition, crash, restart, publish outage; every fault heals itself.

Each injection registers its heal with the context BEFORE it injects anything, so the heal runs
at the latest when the test ends (library listener), else when the suite ends or ``Close
Target`` runs, even after a failure and even when the injection itself half-failed. Heals run
newest first; a failing heal is reported and never stops the others.

The faults go through ``target.nemesis``: the simulator's nemesis over Legion HTTP, or the real
strategy's command templates (``TARGET.real.faults``) over SSH on the node or run locally.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from robot.api import logger
from robot.api.deco import keyword

from tribesqa.diagnostics import TribesFailure
from tribesqa.guard import destructive
from tribesqa.keywords.component import Component
from tribesqa.targets.base import Nemesis
from tribesqa.timing import WaitTiming
from tribesqa.waiting import WaitTimeout, all_nodes_satisfy, poll_until


@dataclass(frozen=True)
class FaultHeal:
    """A registered heal that knows which fault it undoes (so a manual heal can retire it)."""

    kind: str  # "partition" | "crash" | "outage"
    node: str
    action: Callable[[], None]

    def __call__(self) -> None:
        self.action()


class FaultKeywords(Component):
    TAGS = ("fault",)  # keyword tags in libdoc: this component's domain

    # -- plumbing ---------------------------------------------------------------------------------
    def _nemesis(self) -> Nemesis:
        return self.ctx.require_target().nemesis

    def _register(self, kind: str, node: str, description: str, action: Callable[[], None]) -> None:
        self.ctx.register_heal(description, FaultHeal(kind, node, action))

    def _retire(self, kind: str, node: str | None = None) -> list[str]:
        """Drop registered heals of ``kind`` (for ``node``) that a manual heal made pointless."""
        retired = []
        for entry in list(self.ctx.heals):
            heal = entry.heal
            if (
                isinstance(heal, FaultHeal)
                and heal.kind == kind
                and (node is None or heal.node == node)
            ):
                self.ctx.heals.remove(entry)
                retired.append(entry.description)
        return retired

    def _wait_healthy(self, node: str, after: str, timing: WaitTiming) -> float:
        """Poll ``node``'s ``/healthz`` until 200 (up to ``timing``); returns seconds waited."""
        # A node restarted after a crash may listen on new ports: forget the old client and
        # re-read Legion's record before polling.
        stale = self.ctx.clients.pop(node, None)
        if stale is not None:
            stale.close()
        self.ctx.refresh_records()

        def healthy(_: str) -> tuple[int, Any]:
            return self.ctx.client(node).healthz()

        try:
            result = poll_until(
                [node],
                healthy,
                all_nodes_satisfy(lambda answer: answer[0] == 200, label="healthy"),
                what=f"node {node} healthy after {after}",
                timeout_s=timing.timeout_s,
                interval_s=timing.interval_s,
                max_workers=1,
            )
        except WaitTimeout as timeout:
            seen = timeout.result.observations[node]
            last = seen.error or f"HTTP {seen.value[0]} {seen.value[1]}"
            raise TribesFailure(
                f"node {node} not healthy {timing.timeout_s:g} s after {after}: "
                f"last /healthz answer: {last} [{timing.origin}]"
            ) from None
        return result.elapsed_s

    def _crashed(self, node: str) -> bool:
        """Whether a crash of ``node`` is registered and not healed yet."""
        return any(
            isinstance(entry.heal, FaultHeal)
            and entry.heal.kind == "crash"
            and entry.heal.node == node
            for entry in self.ctx.heals
        )

    def _restart_and_wait(
        self,
        nemesis: Nemesis,
        node: str,
        after: str,
        timing: WaitTiming | None = None,
        *,
        crashed: bool = False,
    ) -> None:
        # A crashed node is brought back (recover); a running one restarted gracefully.
        if crashed:
            nemesis.recover(node)
        else:
            nemesis.restart(node)
        if timing is None:
            timing = self.ctx.wait_timing("node_ready", keyword="Restart Node")
        waited = self._wait_healthy(node, after, timing)
        logger.info(f"node {node} healthy again ({waited:.1f} s after the restart returned)")

    # -- partitions -------------------------------------------------------------------------------
    @keyword
    @destructive("partition {node} from its peers")
    def partition_node_from_peers(self, node: str, *peers: str) -> None:
        """Cut ``node`` off from ``peers`` in both directions (default: from every other node).

        Neither side subscribes to, publishes to or serves the other; the control channel
        (management API, SSH) stays up. Registers ``Heal All Partitions`` as the heal.

        Example: ``Partition Node From Peers    ovh-1`` or
        ``Partition Node From Peers    ovh-1    hetzner-1``
        """
        node = str(node)
        names = [str(peer) for peer in peers]
        if node in names:
            raise TribesFailure(f"cannot partition {node} from itself (peers: {', '.join(names)})")
        nemesis = self._nemesis()
        whom = ", ".join(names) if names else "every other node"
        self._register("partition", node, f"heal partition of {node} from {whom}", nemesis.heal_all)
        nemesis.partition(node, names)
        logger.info(f"partitioned {node} from {whom}")

    @keyword
    def heal_all_partitions(self) -> None:
        """Heal every partition; the partition heals registered so far are then retired.

        Example: ``Heal All Partitions``
        """
        self._nemesis().heal_all()
        retired = self._retire("partition")
        logger.info(f"healed all partitions (retired {len(retired)} registered heal(s))")

    # -- crash and restart ----------------------------------------------------------------------
    @keyword
    @destructive("crash {node}")
    def crash_node(self, node: str) -> None:
        """Kill ``node`` abruptly (``SIGKILL``, nothing flushed); it stays down until restarted.

        Registers the heal: restart the node and wait until its ``/healthz`` answers 200.

        Example: ``Crash Node    scaleway-1``
        """
        node = str(node)
        nemesis = self._nemesis()
        self._register(
            "crash",
            node,
            f"restart crashed node {node}",
            lambda: self._restart_and_wait(nemesis, node, "the heal's restart", crashed=True),
        )
        nemesis.crash(node)
        logger.info(f"crashed {node}")

    @keyword
    @destructive("restart {node}")
    def restart_node(
        self, node: str, *, timeout: timedelta | None = None, poll: timedelta | None = None
    ) -> None:
        """Restart ``node`` gracefully (or bring a crashed node back) and wait until it is healthy.

        Waits for ``/healthz`` 200 up to the ``node_ready`` timeout (``timeout=`` / ``poll=``
        override the table for this call); a crash heal registered for the node is then retired.

        Example:
        | Restart Node    scaleway-1
        | Restart Node    scaleway-1    timeout=10 min    poll=5 s
        """
        node = str(node)
        timing = self.ctx.wait_timing("node_ready", timeout, poll, keyword="Restart Node")
        self._restart_and_wait(
            self._nemesis(), node, "the restart", timing, crashed=self._crashed(node)
        )
        self._retire("crash", node)

    # -- publish outage ---------------------------------------------------------------------------
    @keyword
    @destructive("start a publish outage on {node}")
    def start_publish_outage(self, node: str) -> None:
        """``node`` keeps serving but neither publishes nor serves its own new events.

        Its high-water mark still advertises them. Registers ``Stop Publish Outage`` as the heal.

        Example: ``Start Publish Outage    scaleway-1``
        """
        node = str(node)
        nemesis = self._nemesis()
        self._register(
            "outage",
            node,
            f"stop publish outage on {node}",
            lambda: nemesis.outage(node, False),
        )
        nemesis.outage(node, True)
        logger.info(f"publish outage started on {node}")

    @keyword
    def stop_publish_outage(self, node: str) -> None:
        """End the publish outage on ``node`` (its held events flow again).

        Example: ``Stop Publish Outage    scaleway-1``
        """
        node = str(node)
        self._nemesis().outage(node, False)
        self._retire("outage", node)
        logger.info(f"publish outage stopped on {node}")

    # -- the registry -----------------------------------------------------------------------------
    @keyword
    def heal_all_registered_faults(self) -> None:
        """Run every registered heal now (newest first) and clear the registry.

        Every heal is attempted; the keyword then fails listing the heals that failed.

        Example: ``[Teardown]    Heal All Registered Faults``
        """
        pending = [entry.description for entry in reversed(self.ctx.heals)]
        problems = self.ctx.run_heals()
        if pending:
            logger.info("ran heal(s): " + "; ".join(pending))
        if problems:
            raise TribesFailure(
                f"{len(problems)} of {len(pending)} heal(s) failed: " + "; ".join(problems)
            )

    @keyword
    def get_registered_heals(self) -> list[str]:
        """Descriptions of the heals registered and not yet run, oldest first.

        Example: ``${heals}=    Get Registered Heals``
        """
        return [entry.description for entry in self.ctx.heals]

    @keyword
    def registered_heals_should_be_empty(self) -> None:
        """No fault is waiting for its heal (every fault was healed or retired).

        Example: ``Registered Heals Should Be Empty``
        """
        pending = self.get_registered_heals()
        if pending:
            raise TribesFailure(f"{len(pending)} heal(s) still registered: " + "; ".join(pending))
