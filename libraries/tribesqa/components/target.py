"""Opening and closing the target, the roster of an existing fleet."""

from __future__ import annotations

from typing import Any

from robot.api import logger
from robot.api.deco import keyword
from robot.libraries.BuiltIn import BuiltIn

from tribesqa.components.base import Component
from tribesqa.config import RosterEntry
from tribesqa.diagnostics import TribesFailure
from tribesqa.models import NodeRecord


class TargetKeywords(Component):
    @keyword
    def open_target(self, target: Any = None, roster: Any = None) -> None:
        """Open the fleet this run targets: ``${TARGET}`` from the variables file by default.

        On the simulator this starts a private fleet (Legion, no nodes yet) for the suite; on a
        real fleet it runs the target's setup command, if any. Call it in ``Suite Setup``.

        Example: ``Suite Setup    Open Target``
        """
        builtin = BuiltIn()
        raw_target = target if target is not None else builtin.get_variable_value("${TARGET}")
        if raw_target is None:
            raise TribesFailure(
                "no target: pass --variablefile variables/sim.yaml (or another target file)"
            )
        raw_roster = roster if roster is not None else builtin.get_variable_value("${ROSTER}")
        opened = self.ctx.open_target(raw_target, raw_roster, self.ctx.labels.suite)
        logger.info(f"Target: {opened.describe()}")

    @keyword
    def close_target(self) -> None:
        """Heal every registered fault, destroy the nodes this suite provisioned, release the target.

        Safe after any failure and safe to call twice. Fails (after doing everything it can) when
        a node could not be destroyed, so leaked nodes never go unnoticed.
        """
        problems: list[str] = list(self.ctx.run_heals())
        if self.ctx.target is not None:
            for name in reversed(list(self.ctx.provisioned)):
                try:
                    self.ctx.target.legion.destroy(name)
                except Exception as error:
                    if "unknown-node" not in str(error):
                        problems.append(f"destroying {name}: {error}")
        problems.extend(self.ctx.close_target())
        for problem in problems:
            logger.warn(problem)
        leaked = [p for p in problems if p.startswith("destroying")]
        if leaked:
            raise TribesFailure("teardown could not destroy every node: " + "; ".join(leaked))

    @keyword
    def get_roster(self) -> list[RosterEntry]:
        """The roster of the per-node gate (``${ROSTER}``): entries with ``node``, ``role``, ``notes``."""
        self.ctx.require_target()
        if not self.ctx.roster:
            raise TribesFailure("the target has no ROSTER (add one to the variables file)")
        return list(self.ctx.roster)

    @keyword
    def get_roster_node_names(self) -> list[str]:
        """Just the node names of the roster, in roster order."""
        return [entry.node for entry in self.get_roster()]

    @keyword
    def ensure_roster_nodes_exist(self) -> list[NodeRecord]:
        """Make sure every roster node is up in Legion.

        Where the target allows it (the simulator, sim-as-real) missing nodes are provisioned in
        roster order: the first with ``Provision Init Node``, the rest joined in one graph run.
        On a real fleet missing roster nodes fail the keyword, naming them.
        """
        target = self.ctx.require_target()
        roster = self.get_roster()
        records = self.ctx.refresh_records()
        missing = [
            entry
            for entry in roster
            if entry.node not in records or records[entry.node].status.value != "ready"
        ]
        if not missing:
            return [records[e.node] for e in roster]
        may_provision = target.kind == "sim" or bool(
            getattr(getattr(target, "settings", None), "provision_missing_roster_nodes", False)
        )
        if not may_provision:
            raise TribesFailure(
                "roster node(s) not ready in Legion: "
                + ", ".join(
                    f"{e.node} ({records[e.node].status.value if e.node in records else 'absent'})"
                    for e in missing
                )
            )
        planned: list[tuple[RosterEntry, NodeRecord]] = []
        for entry in missing:
            provider = entry.provider.value if entry.provider else entry.node.split("-")[0]
            if (
                not any(r.status.value == "ready" for r in self.ctx.refresh_records().values())
                and not planned
            ):
                record = target.legion.provision_init(provider)
            else:
                record = target.legion.plan_join(provider, 1)[0]
                planned.append((entry, record))
            self.ctx.provisioned.append(record.name)
            if record.name != entry.node:
                raise TribesFailure(
                    f"roster node {entry.node}: Legion named the new {provider} node {record.name}; rename the roster entry"
                )
        if planned:
            run = target.legion.materialize()
            if run.state.value != "succeeded":
                raise TribesFailure(f"roster graph run {run.id} {run.state.value}: {run.error}")
        records = self.ctx.refresh_records()
        return [records[e.node] for e in roster]
