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
            "scope-narrowed",
            "The init node stores every membership row with scope control instead of the row's scope.",
            ("cluster_lifecycle",),
            "each membership row has the expected scope on every node",
        ),
        Fault(
            "peer-transport-https",
            "The init node records every peer's transport address with an https scheme the peer does not serve.",
            ("cluster_lifecycle", "cluster_plugin_rollout_sync_split_brain"),
            "each membership row has the transport address Legion reports, on every node",
        ),
        Fault(
            "decommissioned-still-synced",
            "Nodes keep a decommissioned peer among their derived sync servers.",
            ("cluster_lifecycle",),
            "a decommissioned node leaves every peer's derived sync servers",
        ),
        Fault(
            "replace-skips-decommission",
            "Legion's replace retires its record of the replaced node but never writes its decommissioned row.",
            ("cluster_lifecycle",),
            "a replaced node is archived as decommissioned on every node",
        ),
        Fault(
            "late-peer-not-subscribed",
            "An active node never subscribes to peers that turn active after it (their pushes still arrive).",
            (
                "cluster_lifecycle",
                "cluster_plugin_rollout_sync_split_brain",
            ),
            "every active node syncs from exactly the other active members",
        ),
        Fault(
            "joiner-skips-tribe",
            "A node that did not write the tribe skips the tribe event when it replays the log.",
            ("trust_expansion_replay",),
            "a newly joined node replays the singleton tribe",
        ),
        Fault(
            "outage-never-repairs",
            "After a publish outage ends the node still withholds what it wrote during it and never publishes again.",
            ("failure_modes",),
            "membership and held writes repair after a publish outage",
        ),
        Fault(
            "interrupt-leaves-half-member",
            "Legion pushes the syncing rows of every planned node before materializing them one by one.",
            ("failure_modes",),
            "an interrupted graph run leaves no membership row for a node it did not materialize",
        ),
        Fault(
            "last-node-decommission-allowed",
            "Legion's last-active-node guard counts every node that ever ran, not the ready ones.",
            ("failure_modes",),
            "decommissioning the last active node is refused",
        ),
        Fault(
            "selected-from-wrong-link",
            "generation.status reports selected from the generation link before the profile's current one.",
            ("single_node_plugin_rollout_rollback",),
            "selected is the generation /var/guix/profiles/system points at",
        ),
        Fault(
            "preview-hides-restart",
            "rollout.preview lists no service that needs a restart although the plan adds a plugin.",
            ("single_node_plugin_rollout_rollback",),
            "a rollout preview lists the services that need a restart",
        ),
        Fault(
            "substitutes-unreported",
            "rollout.preview reports substitutes available; the builder has none and the rollout fails late at build.",
            ("single_node_plugin_rollout_rollback",),
            "missing substitutes are reported before the rollout starts",
        ),
        Fault(
            "rollback-not-restarted",
            "generation.rollback switches selected but skips the restart, so running stays on the plugin generation.",
            ("single_node_plugin_rollout_rollback",),
            "selected and running converge back to the baseline after rollback",
        ),
        Fault(
            "plugin-runtime-survives-rollback",
            "After a rollback the plugin runtime stays loaded and its API keeps answering.",
            ("single_node_plugin_rollout_rollback",),
            "the plugin API is gone after rollback",
        ),
        Fault(
            "rollback-replays-plan",
            "A node restarted after a rollback re-applies the last rollout plan, so the plugin comes back.",
            ("single_node_plugin_rollout_rollback",),
            "a rollback stays in place across a restart (the rollout plan is not replayed)",
        ),
        Fault(
            "sync-stopped-after-rollback",
            "A rollback's service restart leaves the sync client stopped, so the node stays isolated.",
            ("cluster_plugin_rollout_sync_split_brain",),
            "cluster status is healthy after the rollback restart",
        ),
        Fault(
            "cases-not-replicated",
            "Nodes never apply plugin cases written on another node (the case resource is not registered for sync).",
            ("cluster_plugin_rollout_sync_split_brain",),
            "a case created on one node is visible on the others",
        ),
        Fault(
            "increments-not-replicated",
            "Nodes never apply counter increments made on another node.",
            ("cluster_plugin_rollout_sync_split_brain",),
            "an increment on one node is visible on the others",
        ),
        Fault(
            "partition-leaks-publishes",
            "A partition stops subscriptions but not pushes: a cut-off node still sends and accepts publishes.",
            ("cluster_plugin_rollout_sync_split_brain",),
            "a node partitioned from the sync mesh is cut off while both sides write",
        ),
        Fault(
            "graph-run-one-node",
            "A Legion graph run materializes only the first planned node; the others stay planned.",
            ("cluster_plugin_rollout_sync_split_brain",),
            "every node planned for a graph run is materialized in that run",
        ),
        Fault(
            "status-counts-peers",
            "cluster_status counts the active peers, not the active members (the node itself is left out).",
            ("cluster_plugin_rollout_sync_split_brain",),
            "cluster_status agrees with the node's cluster_nodes.list",
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
