"""The per-node fleet gate: preconditions, lifecycle checks and destructive checks per roster node.

As in the multinode fleet plan, the gate runs *on each node of an existing roster*; each check is
a library keyword run through BuiltIn so log.html shows every step under the node it ran on. The
partition check (``Node Should Be Cut From The Sync Mesh``) is a mesh wait: ``mesh_keywords.py``.
"""

from __future__ import annotations

from robot.api import logger
from robot.api.deco import keyword
from robot.libraries.BuiltIn import BuiltIn
from robot.utils import is_truthy

from tribesqa.contract import SyncMode
from tribesqa.diagnostics import TribesFailure
from tribesqa.guard import destructive
from tribesqa.keywords.component import Component


class GateKeywords(Component):
    TAGS = ("gate",)  # keyword tags in libdoc: this component's domain

    @keyword
    def get_gate_nodes(self, node: str = "") -> list[str]:
        """The roster nodes this gate run covers: ``node`` alone (a pabot process per node) or the whole roster.

        Example:
        | ${nodes}=    Get Gate Nodes    ${GATE_NODE}
        | Gate Preconditions Should Hold    @{nodes}
        """
        roster = self.ctx.roster
        if not roster:
            raise TribesFailure(
                "the target has no ROSTER: the fleet gate needs one (see variables/sim.yaml)"
            )
        names = [entry.node for entry in roster]
        if node:
            if node not in names:
                raise TribesFailure(f"GATE_NODE {node} is not in the roster ({', '.join(names)})")
            return [node]
        return names

    @keyword
    def skip_unless_destructive_checks_are_allowed(self, allowed: str | bool = False) -> None:
        """Skip the current test unless ``allowed`` (``${ALLOW_DESTRUCTIVE}``) is true.

        Accepts what a command line gives: ``--variable ALLOW_DESTRUCTIVE:true``, ``:yes``, ``:1``,
        ``:false``, ``:no``... (Robot's truth rules).

        Example:
        | Skip Unless Destructive Checks Are Allowed    ${ALLOW_DESTRUCTIVE}
        """
        if not is_truthy(allowed):
            BuiltIn().skip("ALLOW_DESTRUCTIVE is off: destructive checks not run")

    @keyword
    def gate_preconditions_should_hold(self, *nodes: str) -> None:
        """Per node: ready (``/healthz`` 200), selected == running, sync live with no failing server,
        and the plugins installed are the ones its roster entry expects.

        Checks every node and fails once, listing each node's problems.

        Example:
        | Gate Preconditions Should Hold    hetzner-1    scaleway-1    ovh-1
        | Gate Preconditions Should Hold    @{GATE_NODES}
        """
        expected_plugins = {
            entry.node: sorted(pin.partition("@")[0] for pin in entry.plugins)
            for entry in self.ctx.roster
        }
        problems: dict[str, list[str]] = {}

        def check(node: str) -> None:
            found: list[str] = []
            client = self.ctx.client(node)
            status, body = client.healthz()
            if status != 200:
                found.append(f"not ready (/healthz {status} {body})")
            generation = client.call_typed("generation.status")
            if generation.selected != generation.running:  # type: ignore[attr-defined]
                found.append(f"selected {generation.selected} != running {generation.running}")  # type: ignore[attr-defined]
            sync = client.call_typed("sync.status")
            if sync.mode is not SyncMode.LIVE:  # type: ignore[attr-defined]
                found.append(f"sync mode {sync.mode.value}")  # type: ignore[attr-defined]
            failing = [
                f"{s.node_id}: {s.failing_reason}"
                for s in sync.servers
                if s.failing_reason or not s.connected
            ]  # type: ignore[attr-defined]
            if failing:
                found.append("failing sync servers: " + ", ".join(failing))
            plugins = sorted(p.name for p in client.call_typed("plugins.list").plugins)  # type: ignore[attr-defined]
            if plugins != expected_plugins.get(node, []):
                found.append(f"plugins {plugins}, roster expects {expected_plugins.get(node, [])}")
            if found:
                problems[node] = found

        self.on_each(nodes, check, what="gate preconditions")
        if problems:
            raise TribesFailure(
                "gate preconditions fail: "
                + "; ".join(f"{n}: {', '.join(p)}" for n, p in problems.items())
            )
        logger.info(f"gate preconditions hold on {', '.join(nodes)}")

    @keyword
    @destructive("write a case into the plugin tables of {node}")
    def plugin_write_on_node_should_reach_its_plugin_peers(self, node: str, name: str) -> None:
        """Where ``node`` runs the supertest plugin: a case written on it (named ``name``) becomes
        visible on every other active node that runs the plugin. Nothing to check elsewhere.

        Example: ``Plugin Write On Node Should Reach Its Plugin Peers    hetzner-1    gate 1``
        """
        if "supertest" not in self._plugins_of(node):
            logger.info(f"{node} does not run the supertest plugin: no plugin write to check")
            return
        builtin = BuiltIn()
        run_id = builtin.run_keyword("New Run Id")
        case = builtin.run_keyword("Create Case", node, run_id, name)
        peers = [
            other
            for other in self.ctx.active_names()
            if other != node and "supertest" in self._plugins_of(other)
        ]
        for other in peers:
            builtin.run_keyword("Wait Until Case Is Visible On Node", other, run_id, case.id)

    def _plugins_of(self, node: str) -> list[str]:
        return [p.name for p in self.ctx.client(node).call_typed("plugins.list").plugins]  # type: ignore[attr-defined]

    @keyword
    def get_transport_address_of_node(self, node: str) -> str:
        """``node.info`` ``transport_address`` as the node itself reports it.

        Example: ``${address}=    Get Transport Address Of Node    ovh-1``
        """
        return str(self.ctx.client(node).call_typed("node.info").transport_address)  # type: ignore[attr-defined]

    @keyword
    def transport_address_of_node_should_be(self, node: str, expected: str) -> None:
        """``node`` still reports ``expected`` as its transport address (e.g. across a restart).

        Example: ``Transport Address Of Node Should Be    ovh-1    ${address}``
        """
        actual = self.get_transport_address_of_node(node)
        if actual != expected:
            raise TribesFailure(
                f"node {node}: transport address changed across restart: {expected} -> {actual}"
            )
