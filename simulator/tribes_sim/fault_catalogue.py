"""The catalogue of deliberate bugs the simulator can switch on, and which suite must catch each.

A fault is switched on per run with ``TRIBES_SIM_FAULTS=a,b`` in the simulator's environment or
``tribes-qa sim up --faults a,b``; ``docs/faults.md`` is generated from this table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Fault:
    name: str
    breaks: str
    caught_by: tuple[str, ...]
    property: str


CATALOGUE: dict[str, Fault] = {
    fault.name: fault
    for fault in (
        Fault(
            "stuck-syncing",
            "A joining node replays the log but never marks its own row active.",
            ("cluster_lifecycle",),
            "new peers go syncing -> active on every node",
        ),
        Fault(
            "decommission-deletes-row",
            "Nodes delete a decommissioned member's row instead of archiving it.",
            ("cluster_lifecycle",),
            "decommissioned rows stay archived with decommissioned_at",
        ),
        Fault(
            "rollback-keeps-tables",
            "generation.rollback skips the plugin down migrations.",
            ("single_node_plugin_rollout_rollback",),
            "supertest tables are removed by rollback",
        ),
        Fault(
            "one-way-sync",
            "The init node drops plugin events that originate on other nodes.",
            ("cluster_plugin_rollout_sync_split_brain",),
            "plugin tables sync both ways",
        ),
        Fault(
            "heal-loses-writes",
            "On heal, a partitioned node discards the writes it accepted while cut off.",
            ("cluster_plugin_rollout_sync_split_brain",),
            "writes from both sides of a split survive heal + resync",
        ),
        Fault(
            "wrong-transport-address",
            "Legion reports sync endpoints on the wrong port.",
            ("cluster_lifecycle",),
            "Legion sync endpoints equal the transport addresses peers report",
        ),
        Fault(
            "backdated-decommission",
            "Legion stamps a decommission a minute in the past.",
            ("cluster_lifecycle",),
            "decommissioned_at is the time of the decommission",
        ),
        Fault(
            "stale-activated-at",
            "A reactivated or resynced node keeps its previous activated_at.",
            ("cluster_lifecycle", "trust_expansion_replay"),
            "reactivation sets a fresh activated_at",
        ),
        Fault(
            "selected-not-running",
            "The restart stage never switches run/current-system to the selected generation.",
            ("single_node_plugin_rollout_rollback",),
            "selected and running converge after rollout",
        ),
        Fault(
            "replay-accepted",
            "The admin API's NIP-98 replay cache is off: a captured request is accepted twice.",
            ("fleet_gate",),
            "a replayed NIP-98 event is refused",
        ),
        Fault(
            "counter-not-merged",
            "Case counters are last-writer-wins instead of merged: concurrent increments are lost.",
            ("cluster_plugin_rollout_sync_split_brain",),
            "increments on both sides of a split are all counted",
        ),
        Fault(
            "sync-mode-stuck-catching-up",
            "sync.status reports mode catching_up on a node that is live with nothing pending.",
            ("fleet_gate",),
            "a gate node syncs live before the gate runs",
        ),
        Fault(
            "restart-moves-transport",
            "A gracefully restarted node binds a new sync port instead of its saved one.",
            ("fleet_gate",),
            "a restarted node keeps its transport address",
        ),
        Fault(
            "stale-connected-status",
            "sync.status keeps reporting every sync server connected after it became unreachable.",
            ("fleet_gate",),
            "a partitioned node reports its sync servers disconnected",
        ),
    )
}


class UnknownFaultError(ValueError):
    """A fault name that is not in the catalogue."""


def parse_faults(value: str | Iterable[str]) -> set[str]:
    """Parse ``"a,b"`` or a list of names; unknown names fail with the list of valid ones."""
    names = value.split(",") if isinstance(value, str) else list(value)
    cleaned = {name.strip() for name in names if name and name.strip()}
    unknown = sorted(cleaned - CATALOGUE.keys())
    if unknown:
        raise UnknownFaultError(
            f"unknown simulator fault(s) {', '.join(unknown)}; known: {', '.join(sorted(CATALOGUE))}"
        )
    return cleaned
