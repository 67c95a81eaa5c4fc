"""Where the catalogue's node-side faults bend a node's behaviour: rows as the node projects them,
replicated events a node fails to apply. One place, so the healthy code paths stay plain.

Mixed into ``SimNode``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tribes_sim.node.timestamps import backdated
from tribes_sim.store import SyncEvent


class FaultHooksMixin:
    """SimNode's part: the node-side fault hooks (uses the attributes SimNode sets up)."""

    def member_projection(self) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
        """How this node's ``cluster_nodes`` table distorts rows it applies, if a fault says so."""
        if self.spec.role != "init":
            return None
        own = self.node_id
        if self.config.has_fault("scope-narrowed"):
            # Fault: the init node stores every row with its own replication scope.
            return lambda row: {**row, "scope": "control"}
        if self.config.has_fault("peer-transport-https"):
            # Fault: the init node "upgrades" the transport address of every peer to https.
            return lambda row: (
                row
                if row.get("node_id") == own or not row.get("transport_address")
                else {**row, "transport_address": _https(row["transport_address"])}
            )
        return None

    def listed_members(self) -> list[dict[str, Any]]:
        """``cluster_nodes.list`` as this node answers it: the stored rows, unless a flicker
        fault distorts one answer (see ``_flicker``)."""
        rows = self.store.members()
        faults = self.config.has_fault
        if self.spec.role != "init" or not (
            faults("row-flaps") or faults("activation-stamp-regresses") or faults("ghost-row")
        ):
            return rows
        return self._flicker(rows)

    def _flicker(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """row-flaps / activation-stamp-regresses / ghost-row: the init node distorts exactly one
        answer, the second in which the first peer to go active is active. That answer falls in a
        wait that polls on (the join's or the agreement that follows it), so the next poll sees
        the truth and every checkpoint passes; only a history of every read shows it."""
        state = self.__dict__.setdefault("_flicker_state", {"peer": None, "seen": 0})
        if state["seen"] >= 2 or not self._tester_asks():
            return rows  # Legion's own reads neither count nor see it: only the tester's do
        by_id = {row["node_id"]: row for row in rows}
        if state["peer"] is None:
            state["peer"] = next(
                (
                    row["node_id"]
                    for row in rows
                    if row["node_id"] != self.node_id and row["status"] == "active"
                ),
                None,
            )
        peer = by_id.get(state["peer"])
        if peer is None or peer["status"] != "active":
            return rows
        state["seen"] += 1
        if state["seen"] != 2:
            return rows
        faults = self.config.has_fault
        if faults("row-flaps"):
            # The row as it was before activation: syncing, written at the join.
            stale = {**peer, "status": "syncing", "activated_at": None}
            stale["updated_at"] = peer["joined_at"]
            return [stale if row is peer else row for row in rows]
        if faults("activation-stamp-regresses"):
            # An activation stamp a second older than the one the row holds.
            earlier = backdated(peer["activated_at"], 1.0)
            return [{**row, "activated_at": earlier} if row is peer else row for row in rows]
        # ghost-row: a row for a node Legion never materialized.
        ghost = {**peer, "node_id": f"{peer['node_id']}-ghost", "status": "syncing"}
        ghost.update(activated_at=None, updated_at=peer["joined_at"])
        return [*rows, ghost]

    def flicker_servers(self, servers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """decommissioned-server-flickers: the init node's ``sync.status`` lists the first
        decommissioned peer among its servers again in exactly one answer to the tester, the
        second after one that had dropped it (a wait polls on; the next answer is right)."""
        state = self.__dict__.setdefault("_server_flicker", {"gone": None, "seen": 0})
        if self.spec.role != "init" or state["seen"] >= 2 or not self._tester_asks():
            return servers
        gone = state["gone"] or next(
            (
                row
                for row in self.store.members()
                if row["status"] == "decommissioned" and row["node_id"] != self.node_id
            ),
            None,
        )
        state["gone"] = gone
        if gone is None or any(server["url"] == gone["transport_address"] for server in servers):
            return servers
        state["seen"] += 1
        if state["seen"] != 2:
            return servers
        ghost = {
            "node_id": gone["node_id"],
            "url": gone["transport_address"],
            "connected": True,
            "last_sync_completed_at": None,
            "last_eose_at": None,
            "failing_reason": None,
        }
        return [*servers, ghost]

    def _tester_asks(self) -> bool:
        """Whether the caller is the tester, not Legion (Legion's reads never see a flicker)."""
        legion = self.spec.allowlist[-1] if len(self.spec.allowlist) > 1 else None
        return getattr(self, "caller", None) != legion

    def reported_job(self, answer: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
        """success-report-stale-generation: the init node answers the first rollout.status that
        reports a job succeeded with the generation the job started from (selected and running
        both). The job's wait ends on that answer (it judges the state); the generation checks
        after it read generation.status, which is right; only the history sees the node's
        generation move after the job said it had succeeded."""
        state = self.__dict__.setdefault("_stale_success", {"told": False})
        if (
            self.spec.role != "init"
            or not self.config.has_fault("success-report-stale-generation")
            or answer.get("state") != "succeeded"
            or state["told"]
            or not self._tester_asks()
        ):
            return answer
        started_from = job["target"].get("from")
        if not started_from or started_from == answer.get("running"):
            return answer
        state["told"] = True
        return {**answer, "selected": started_from, "running": started_from}

    def plugin_state_answer(self, state: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        """case-counter-flickers-back: the init node answers one plugin state read with the first
        case it saw incremented back at counter 0 and an updated_at a second older, the second
        answer showing that case incremented. That answer falls in the agreement wait after the
        increment was seen (it polls on); the next answer is right."""
        if self.spec.role != "init" or not self.config.has_fault("case-counter-flickers-back"):
            return state
        memory = self.__dict__.setdefault("_counter_flicker", {"case": None, "seen": 0})
        cases = state.get("cases") or []
        if memory["case"] is None:
            memory["case"] = next((c["id"] for c in cases if c.get("counter")), None)
        case = next((c for c in cases if c["id"] == memory["case"] and c.get("counter")), None)
        if case is None or memory["seen"] >= 2:
            return state
        memory["seen"] += 1
        if memory["seen"] != 2:
            return state
        older = {**case, "counter": 0, "updated_at": backdated(case["updated_at"], 1.0)}
        return {**state, "cases": [older if c is case else c for c in cases]}

    def acknowledged_event_id(self, stored_id: str) -> str:
        """acknowledged-event-id-differs: the init node stores a new event under one id and
        acknowledges another (a fresh token), so the acknowledged event is never seen."""
        if self.spec.role == "init" and self.config.has_fault("acknowledged-event-id-differs"):
            return f"event-{self.ids.token_hex('event', 8)}"
        return stored_id

    def stop_sync_client(self, reason: str) -> None:
        """sync-stopped-after-rollback: subscriptions cancelled and never started again."""
        for state in self.servers.values():
            if state.task:
                state.task.cancel()
            state.connected = False
            state.failing_reason = reason
        self.note(reason)

    def replay_plan_after_rollback(self) -> None:
        """rollback-replays-plan: at boot after a rollback, re-run the last rollout's target."""
        jobs = self.store.generation_jobs()
        rollouts = [job for job in jobs if job["kind"] == "rollout"]
        if not jobs or jobs[-1]["kind"] != "rollback" or not rollouts:
            return
        self.note("boot: re-applying the current rollout plan")
        self._new_job("rollout", rollouts[-1]["target"])

    def drops_replicated(self, event: SyncEvent) -> bool:
        """Whether a fault makes this node skip a peer's event (its vector still advances)."""
        if event.origin == self.node_id:
            return False
        faults = self.config.has_fault
        if event.ns == "supertest":
            if faults("one-way-sync") and self.spec.role == "init":
                return True
            if faults("cases-not-replicated") and event.kind == "case":
                return True
            if faults("increments-not-replicated") and event.kind == "increment":
                return True
        if event.ns == "control" and event.kind == "tribe" and faults("joiner-skips-tribe"):
            # Fault: a node that did not write the tribe never applies it from the log.
            return self.spec.role != "init"
        return False


def _https(address: str) -> str:
    return "https://" + address.split("://", 1)[-1]
