"""Opening and closing the target, the roster of an existing fleet."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from robot.api import logger
from robot.api.deco import keyword
from robot.libraries.BuiltIn import BuiltIn
from robot.result import TestCase

from tribesqa.config import RosterEntry, parse_target
from tribesqa.contract import GraphRunState, LegionNodeStatus, NodeRecord
from tribesqa.default_target import ensure_target_variables, target_origin
from tribesqa.diagnostics import TribesFailure
from tribesqa.history.shared import SharedResets
from tribesqa.keywords.component import Component
from tribesqa.shared_fleet import (
    EXCLUSIVE,
    HoldMode,
    LocalStore,
    SharedFleetGuard,
    SharedHandle,
)

PABOTLIB = "pabot.PabotLib"
NODE_TAG = "node:"


class TargetKeywords(Component):
    TAGS = ("target",)  # keyword tags in libdoc: this component's domain

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._guard: SharedFleetGuard | None = None
        self._resets: SharedResets | None = None
        self._local_store = LocalStore()

    # -- node:<name> tags: the nodes each test reached (read by the fleet matrix view) ---------
    def on_test_start(self) -> None:
        self.ctx.take_touched()

    def on_keyword_end(self, data: Any, result: Any) -> None:
        if not self.ctx.touched:
            return
        names = self.ctx.take_touched()
        parent = getattr(result, "parent", None)
        while parent is not None and not isinstance(parent, TestCase):
            parent = getattr(parent, "parent", None)
        if parent is not None:  # suite setup/teardown contacts belong to no test
            parent.tags.add([NODE_TAG + name for name in names])

    @keyword
    def open_target(self, target: Any = None, roster: Any = None) -> None:
        """Open the fleet this run targets: ``${TARGET}`` from the variables file by default.

        With no ``${TARGET}`` at all (plain ``robot suites/``), the default target
        ``variables/sim.yaml`` is used exactly as if it were given with ``--variablefile``;
        the log says which target was chosen and why.

        On the simulator this starts a private fleet (Legion, no nodes yet) for the suite; on a
        real fleet it runs the target's setup command, if any. Call it in ``Suite Setup``.

        Example: ``Suite Setup    Open Target``
        """
        builtin = BuiltIn()
        if target is not None:
            why = "target given to Open Target"
        else:
            why = ensure_target_variables() or target_origin()
        raw_target = target if target is not None else builtin.get_variable_value("${TARGET}")
        raw_roster = roster if roster is not None else builtin.get_variable_value("${ROSTER}")
        opened = self.ctx.open_target(raw_target, raw_roster, self.ctx.labels.suite)
        logger.info(f"Target: {opened.describe()}; {why}")

    @keyword
    def close_target(self) -> None:
        """Heal every registered fault, destroy the nodes this suite provisioned, release the target.

        Safe after any failure and safe to call twice. Fails (after doing everything it can) when
        a node could not be destroyed, so leaked nodes never go unnoticed.

        Example:
        | Suite Setup       Open Target
        | Suite Teardown    Close Target
        """
        self._heal_destroy_and_close(list(self.ctx.provisioned))

    def _heal_destroy_and_close(
        self, provisioned: list[str], before_close: Callable[[], None] | None = None
    ) -> None:
        """Heal, destroy ``provisioned`` newest first, release the target; fail on leaked nodes."""
        problems: list[str] = list(self.ctx.run_heals())
        target = self.ctx.target
        if target is not None:
            for name in reversed(provisioned):
                try:
                    target.legion.destroy(name)
                except Exception as error:
                    if "unknown-node" not in str(error):
                        problems.append(f"destroying {name}: {error}")
            if before_close is not None:
                before_close()
        problems.extend(self.ctx.close_target())
        for problem in problems:
            logger.warn(problem)
        leaked = [p for p in problems if p.startswith("destroying")]
        if leaked:
            raise TribesFailure("teardown could not destroy every node: " + "; ".join(leaked))

    # -- one fleet shared by several processes (pabot: one gate process per roster node) -------
    @keyword
    def share_target(self) -> str:
        """Hand the open target to every process of the run; return the handle they attach with.

        From now on this process is attached too: its ``Close Target`` releases only its own
        clients; ``Close Shared Target`` (the last process) stops the fleet and destroys the
        nodes provisioned so far.

        Example (run once, see resources/gate.resource):
        | ${handle}=    Share Target
        | Set Parallel Value For Key    tribes-qa.gate.target    ${handle}
        """
        target = self.ctx.require_target()
        handle = SharedHandle.new(target.kind, target.shared_handle(), self.ctx.provisioned)
        self.ctx.provisioned.clear()
        self.ctx.shared_id = handle.id
        logger.info(f"Shared target {handle.id}: {target.describe()}")
        return handle.dumps()

    @keyword
    def attach_to_shared_target(self, handle: str, target: Any = None, roster: Any = None) -> None:
        """Use the fleet another process opened and shared (``Share Target``); never starts one.

        Fails naming the cause when ``handle`` is empty (the process that opens the fleet
        failed, or has not run). ``target`` and ``roster`` default to ``${TARGET}`` and ``${ROSTER}``.

        Example:
        | ${handle}=    Get Parallel Value For Key    tribes-qa.gate.target
        | Attach To Shared Target    ${handle}
        """
        if not str(handle or "").strip():
            raise TribesFailure(
                "no shared target to attach to: the setup that opens it failed or did not run"
            )
        shared = SharedHandle.loads(str(handle))
        if self.ctx.target is not None and self.ctx.shared_id == shared.id:
            logger.info(f"Attached to shared target {shared.id} (opened here)")
            return
        builtin = BuiltIn()
        defaulted = ensure_target_variables() if target is None else None
        if defaulted:
            logger.info(defaulted)
        raw_target = target if target is not None else builtin.get_variable_value("${TARGET}")
        raw_roster = roster if roster is not None else builtin.get_variable_value("${ROSTER}")
        kind = parse_target(raw_target).kind.value
        if kind != shared.kind:
            raise TribesFailure(
                f"shared target {shared.id} is a {shared.kind} target, this run's TARGET is {kind}"
            )
        attached = self.ctx.attach_target(raw_target, raw_roster, shared.target, shared.id)
        logger.info(f"Attached to shared target {shared.id}: {attached.describe()}")

    @keyword
    def close_shared_target(self, handle: str = "") -> None:
        """Stop the shared fleet: destroy the nodes its opener provisioned, release the target.

        Run it once, after every process is done (``Run Teardown Only Once``). An empty
        ``handle`` (the fleet was never shared) does nothing. Fails, after doing what it can,
        when a node could not be destroyed.

        Example:
        | Run Teardown Only Once    Close Shared Target    ${GATE_TARGET}
        """
        if not str(handle or "").strip():
            logger.info("no shared target to close")
            return
        shared = SharedHandle.loads(str(handle))
        if self.ctx.target is None or self.ctx.shared_id != shared.id:
            self.attach_to_shared_target(handle)
        target = self.ctx.require_target()
        # The closing process takes ownership, so closing stops the fleet, not just its clients.
        self._heal_destroy_and_close(list(shared.provisioned), target.take_ownership)
        logger.info(f"Closed shared target {shared.id}")

    @keyword
    def stop_shared_target(self, handle: str = "", process_node: str = "") -> None:
        """End this process's use of the shared fleet.

        ``process_node`` names the node this process covers when the work runs one pabot process
        per node: then the last process closes the fleet (PabotLib ``Run Teardown Only Once``,
        which waits for the processes before it) and every other one only releases its clients.
        Empty: this process is the fleet's only user and closes it at once (no waiting behind
        unrelated suites of a pabot run).

        Example: ``Stop Shared Target    ${GATE_TARGET}    ${GATE_NODE}``
        """
        pabotlib = _parallel_store(self._local_store)
        try:
            if process_node and not isinstance(pabotlib, LocalStore):
                pabotlib.run_teardown_only_once("Close Shared Target", handle)
            else:
                self.close_shared_target(handle)
        finally:
            self.close_target()

    @keyword
    def hold_shared_target(self, mode: HoldMode = HoldMode.SHARED) -> None:
        """Hold the shared fleet ``shared`` (read-only checks, side by side with other processes)
        or ``exclusive`` (restarts, partitions, resyncs: alone, after every shared holder).

        Across pabot processes through PabotLib; under plain robot it is granted at once.
        Release it with ``Release Shared Target`` (in a ``[Teardown]``). The resets (resync,
        restart, crash...) other processes ran since this one last held the fleet are added to
        its run history then, so they license the rows they moved (``history/shared.py``).

        Example:
        | Hold Shared Target    exclusive
        | Restart Node    hetzner-1
        | [Teardown]    Release Shared Target
        """
        self.ctx.require_target()
        name = f"tribes-qa.shared-fleet.{self.ctx.shared_id or 'local'}"
        if self._guard is None or self._guard.mode is None:
            self._guard = SharedFleetGuard(
                _parallel_store(self._local_store),
                name,
                poll_s=max(0.05, min(self.ctx.require_timeouts().poll_interval, 1.0)),
                wait_s=10 * self.ctx.require_timeouts().legion_operation,
            )
        if self._resets is None or self._resets.name != name:
            guard = self._guard
            self._resets = SharedResets(guard.store, name, guard.holder, self.ctx.labels.suite)
        waited = self._guard.hold(mode.value)
        # Resets the other processes ran meanwhile license rows in this process's history too.
        imported = self._resets.on_hold(self.ctx.history)
        others = f"; {imported} reset(s) other processes ran meanwhile added to the history"
        logger.info(
            f"holding the shared fleet ({mode}) after waiting {waited:.1f} s"
            + (others if imported else "")
        )

    @keyword
    def release_shared_target(self) -> None:
        """Give back the hold of ``Hold Shared Target`` (no-op when nothing is held). An
        exclusive holder first heals the faults this test injected, so nobody else ever sees them,
        and publishes the resets it ran under the hold for the other processes' histories.

        Example:
        | Hold Shared Target    shared
        | Gate Preconditions Should Hold    hetzner-1
        | [Teardown]    Release Shared Target
        """
        if self._guard is None or self._guard.mode is None:
            return
        problems = self.ctx.run_heals(test_only=True) if self._guard.mode == EXCLUSIVE else []
        if self._resets is not None:
            self._resets.on_release(self.ctx.history)  # before anyone else may hold it
        mode = self._guard.release()
        logger.info(f"released the shared fleet ({mode})")
        for problem in problems:
            logger.warn(problem)

    @keyword
    def get_roster(self) -> list[RosterEntry]:
        """The roster of the per-node gate (``${ROSTER}``): entries with ``node``, ``role``, ``notes``.

        Example:
        | ${roster}=    Get Roster
        | Should Be Equal    ${roster[0].role}    init
        """
        self.ctx.require_target()
        if not self.ctx.roster:
            raise TribesFailure("the target has no ROSTER (add one to the variables file)")
        return list(self.ctx.roster)

    @keyword
    def get_roster_node_names(self) -> list[str]:
        """Just the node names of the roster, in roster order.

        Example:
        | ${names}=    Get Roster Node Names
        | Should Be Equal    ${names}[0]    hetzner-1
        """
        return [entry.node for entry in self.get_roster()]

    @keyword
    def ensure_roster_nodes_exist(self) -> list[NodeRecord]:
        """Make sure every roster node is up in Legion.

        Where the target allows it (the simulator, sim-as-real) missing nodes are provisioned in
        roster order: the first with ``Provision Init Node``, the rest joined in one graph run.
        On a real fleet missing roster nodes fail the keyword, naming them.

        Example:
        | Open Target
        | ${records}=    Ensure Roster Nodes Exist
        | Length Should Be    ${records}    3
        """
        target = self.ctx.require_target()
        roster = self.get_roster()
        records = self.ctx.refresh_records()
        missing = [
            entry
            for entry in roster
            if entry.node not in records or records[entry.node].status is not LegionNodeStatus.READY
        ]
        may_provision = target.provisions_missing_roster_nodes
        if not missing:
            if may_provision:
                self._install_roster_plugins(roster)
            return [records[e.node] for e in roster]
        if not may_provision:
            raise TribesFailure(
                "roster node(s) not ready in Legion: "
                + ", ".join(
                    f"{e.node} ({records[e.node].status.value if e.node in records else 'absent'})"
                    for e in missing
                )
            )
        self.ctx.require_destructive_allowed(
            "Ensure Roster Nodes Exist",
            "provision the missing roster node(s) " + ", ".join(e.node for e in missing),
        )
        planned: list[tuple[RosterEntry, NodeRecord]] = []
        for entry in missing:
            provider = entry.provider.value if entry.provider else entry.node.split("-")[0]
            if (
                not any(
                    r.status is LegionNodeStatus.READY for r in self.ctx.refresh_records().values()
                )
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
            if run.state is not GraphRunState.SUCCEEDED:
                raise TribesFailure(f"roster graph run {run.id} {run.state.value}: {run.error}")
        self._install_roster_plugins(roster)
        records = self.ctx.refresh_records()
        return [records[e.node] for e in roster]

    def _install_roster_plugins(self, roster: list[RosterEntry]) -> None:
        """Roll out the ``name@commit`` plugins roster entries list but their nodes lack."""
        for entry in roster:
            if not entry.plugins:
                continue
            installed = {
                p.name for p in self.ctx.client(entry.node).call_typed("plugins.list").plugins
            }  # type: ignore[attr-defined]
            for pin in entry.plugins:
                name, _, commit = pin.partition("@")
                if name in installed:
                    continue
                if not commit:
                    raise TribesFailure(
                        f"roster node {entry.node}: plugin {pin!r} needs a commit (name@commit) to be installed"
                    )
                BuiltIn().run_keyword("Roll Out Plugin To Nodes", name, commit, entry.node)


def _parallel_store(fallback: LocalStore) -> Any:
    """PabotLib when the suite imports it (remote under pabot, in-process under robot)."""
    try:
        return BuiltIn().get_library_instance(PABOTLIB)
    except RuntimeError:
        return fallback
