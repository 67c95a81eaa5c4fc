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
            ("cluster_lifecycle", "fleet_gate"),
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
            ("fleet_gate", "admin_api_security"),
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
        Fault(
            "decommissioned-keeps-syncing",
            "A decommissioned node keeps subscribing to the active nodes, and they keep serving it.",
            ("cluster_lifecycle",),
            "a decommissioned node stops syncing (sync.status stopped, no servers)",
        ),
        Fault(
            "decommissioned-reports-active",
            "A decommissioned node's cluster_status still reports self_status active.",
            ("cluster_lifecycle",),
            "a decommissioned node reports itself decommissioned",
        ),
        Fault(
            "decommissioned-still-receives",
            "Active nodes keep publishing their new events to decommissioned members.",
            ("cluster_lifecycle",),
            "a decommissioned node receives no new writes from the active nodes",
        ),
        Fault(
            "resync-rejoins-decommissioned",
            "sync.resync on a decommissioned node is accepted: it writes its own row back to syncing.",
            ("cluster_lifecycle",),
            "sync.resync on a decommissioned node is refused with unsafe-operation",
        ),
        Fault(
            "unknown-method-500",
            "An unknown management method is answered HTTP 500 instead of 400 unknown-method.",
            ("management_api_contract",),
            "an unknown method is refused with HTTP 400 unknown-method",
        ),
        Fault(
            "invalid-params-accepted",
            "Params that are not a JSON object are treated as {} and the call succeeds.",
            ("management_api_contract",),
            "params that are not an object are refused with HTTP 400 invalid-params",
        ),
        Fault(
            "rollout-ignores-missing-substitutes",
            "rollout.start switches to a plan whose preview reported missing substitutes.",
            ("management_api_contract",),
            "rollout.start with missing substitutes is refused with 409 substitutes-missing",
        ),
        Fault(
            "concurrent-rollout-accepted",
            "rollout.start and generation.rollback start a second job while one is running.",
            ("management_api_contract",),
            "a second job while one runs is refused with 409 rollout-in-progress",
        ),
        Fault(
            "unknown-job-200",
            "rollout.status of a job id the node never issued answers 200 with a pending job.",
            ("management_api_contract",),
            "an unknown job id is refused with 409 unknown-job",
        ),
        Fault(
            "sync-status-miscounted",
            "sync.status reports pending_events equal to high_water_mark instead of hwm - applied.",
            ("management_api_contract",),
            "sync.status pending_events equals high_water_mark - applied_events",
        ),
        Fault(
            "snapshot-leaks-secret",
            "Legion's snapshot carries the SSH client private key in every node record's ssh block.",
            ("legion_snapshot",),
            "Legion's snapshot holds no secret material",
        ),
        Fault(
            "snapshot-drops-membership",
            "Legion's snapshot lists only active membership rows (syncing and decommissioned dropped).",
            ("legion_snapshot",),
            "Legion's snapshot keeps syncing and decommissioned membership rows",
        ),
        Fault(
            "non-json-body-500",
            "A management body that is not JSON crashes the handler: HTTP 500, no envelope.",
            ("management_api_contract",),
            "a body that is not an envelope is refused with HTTP 400 invalid-payload",
        ),
        Fault(
            "unknown-plan-accepted",
            "rollout.start with a plan_id the node never issued starts a rollout of an empty plan.",
            ("management_api_contract",),
            "an unknown plan id is refused with 409 unknown-plan",
        ),
        Fault(
            "rollback-unknown-generation-accepted",
            "generation.rollback to a generation the node does not have rolls back to the running one.",
            ("management_api_contract",),
            "an unknown generation is refused with 409 unknown-generation",
        ),
        Fault(
            "healthz-plain-text",
            "GET /healthz answers 200 with the text OK instead of the NodeHealth JSON body.",
            ("management_api_contract",),
            "/healthz answers 200 with the NodeHealth body status ok",
        ),
        Fault(
            "plugin-health-before-install",
            "The supertest health route answers 200 on a node where the plugin is not installed.",
            ("single_node_plugin_rollout_rollback",),
            "the plugin API answers 404 while the plugin is not installed",
        ),
        Fault(
            "plugin-schema-incomplete",
            "The supertest schema route leaves supertest_events out of its tables.",
            ("single_node_plugin_rollout_rollback",),
            "the plugin schema lists supertest_cases and supertest_events",
        ),
        Fault(
            "last-node-decommission-accepted",
            "Legion decommissions the cluster's last active node instead of refusing it.",
            ("failure_modes",),
            "decommissioning the last active node is refused with unsafe-operation",
        ),
        Fault(
            "interrupted-run-leaves-provisioning",
            "An interrupted graph run leaves the nodes it did not materialize provisioning, not planned.",
            ("failure_modes",),
            "an interrupted graph run puts the nodes it did not materialize back to planned",
        ),
        Fault(
            "host-header-trusted",
            "The admin API checks the NIP-98 u tag against a URL built from the request's Host "
            "header instead of its own admin URL: an event signed for one node passes on every node.",
            ("admin_api_security",),
            "the u tag must name the node's own admin URL, whatever the Host header says",
        ),
        Fault(
            "auth-optional",
            "The admin API serves management requests with no Authorization header, or an "
            "undecodable one, as if they were signed.",
            ("admin_api_security",),
            "a request without NIP-98 authorization is refused",
        ),
        Fault(
            "auth-signature-unchecked",
            "The admin API takes the NIP-98 event on trust: its kind, content, id and signature "
            "are not checked.",
            ("admin_api_security",),
            "an auth event with a bad signature, wrong kind or content is refused",
        ),
        Fault(
            "stale-auth-accepted",
            "The admin API does not check created_at: an auth event from any time is accepted.",
            ("admin_api_security",),
            "an auth event more than 60 s off the node's clock is refused as stale",
        ),
        Fault(
            "auth-url-unchecked",
            "The admin API ignores the NIP-98 u tag: an event signed for any URL is accepted.",
            ("admin_api_security",),
            "an auth event signed for another URL is refused",
        ),
        Fault(
            "auth-method-unchecked",
            "The admin API ignores the NIP-98 method tag: an event signed for GET authorizes a POST.",
            ("admin_api_security",),
            "an auth event signed for another method is refused",
        ),
        Fault(
            "auth-payload-unchecked",
            "The admin API ignores the NIP-98 payload tag: a signed event authorizes any body.",
            ("admin_api_security",),
            "an auth event whose payload hash does not match the body is refused",
        ),
        Fault(
            "allowlist-open",
            "The admin API accepts a validly signed event from any key, not only allowlisted ones.",
            ("admin_api_security",),
            "an auth event from a key not on the allowlist is refused",
        ),
        Fault(
            "refused-event-cached",
            "The admin API records an event id in its replay cache before checking the event: "
            "an event refused once (e.g. sent with the wrong body) is refused as a replay after.",
            ("admin_api_security",),
            "only events that pass every other check enter the replay cache",
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
            "rollout.preview reports every substitute available (missing empty) while a package of the plan has none.",
            ("management_api_contract",),
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
        Fault(
            "row-flaps",
            "The init node answers one cluster_nodes.list with the first active peer's row back at syncing (its pre-activation version), between two checkpoints.",
            ("cluster_lifecycle",),
            "per observer a membership row moves only forward",
        ),
        Fault(
            "activation-stamp-regresses",
            "The init node answers one cluster_nodes.list with the first active peer's activated_at a second older, between two checkpoints.",
            ("cluster_lifecycle",),
            "a node's activation timestamp never decreases",
        ),
        Fault(
            "ghost-row",
            "The init node answers one cluster_nodes.list with an extra syncing row for a node Legion never materialized, between two checkpoints.",
            ("cluster_lifecycle",),
            "no node holds a row for a node Legion never materialized",
        ),
        Fault(
            "decommissioned-server-flickers",
            "The init node's sync.status lists a decommissioned peer among its servers again in one answer, after it had dropped it, between two checkpoints.",
            ("cluster_lifecycle",),
            "a decommissioned node's transport address never reappears in an active node's sync servers",
        ),
        Fault(
            "malformed-authorization-accepted",
            "The admin API serves a request whose Authorization header is present but not 'Nostr <base64 JSON event>' as if it were signed (a missing header is still refused).",
            ("admin_api_security",),
            "a malformed Authorization header is refused with invalid-authorization",
        ),
        Fault(
            "allowlist-checked-first",
            "The admin API checks the allowlist before the event's id and signature: a forged event from a stranger is answered forbidden-pubkey, not invalid-auth-event.",
            ("admin_api_security",),
            "the first failed NIP-98 check, in the contract's order, decides the refusal",
        ),
        Fault(
            "snapshot-drops-decommissioned",
            "Legion's snapshot leaves out decommissioned membership rows (syncing rows are kept).",
            ("legion_snapshot",),
            "Legion's snapshot keeps archived decommissioned rows",
        ),
        Fault(
            "decommissioned-forgets-own-row",
            "A decommissioned node deletes its own membership row instead of archiving it (the others archive it).",
            ("cluster_lifecycle",),
            "a decommissioned node lists its own row as decommissioned",
        ),
        Fault(
            "rollback-not-resumed",
            "A generation.rollback job that a node restart interrupts is dropped (failed) instead of resumed.",
            ("single_node_plugin_rollout_rollback",),
            "a rollback job survives a restart of its node",
        ),
        Fault(
            "graph-run-allows-decommission",
            "Legion decommissions a node while a graph run is still running (the membership change lands mid-join).",
            ("failure_modes",),
            "Legion refuses an operation during a graph run",
        ),
        Fault(
            "success-report-stale-generation",
            "The init node answers the first rollout.status that reports a job succeeded with the generation the job started from (selected and running both); generation.status is right.",
            ("single_node_plugin_rollout_rollback",),
            "after a job reported success, selected and running never disagree or move",
        ),
        Fault(
            "case-counter-flickers-back",
            "The init node answers one plugin state read with the first incremented case back at counter 0 and an updated_at a second older, between two checkpoints.",
            ("cluster_plugin_rollout_sync_split_brain",),
            "no plugin value goes back to an older version",
        ),
        Fault(
            "acknowledged-event-id-differs",
            "The init node stores a new plugin event under one id and acknowledges it under another, so the acknowledged event is never seen.",
            ("single_node_plugin_rollout_rollback",),
            "every acknowledged plugin write is seen by every active node",
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
