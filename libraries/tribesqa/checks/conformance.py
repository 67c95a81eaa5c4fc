"""Pure judges of contract conformance: a decommissioned node's own view, the events it must
no longer receive, and Legion's sanitized snapshot (a refusal is judged by ``refusal.py``).

No Robot, no network: the keywords in ``keywords/contract_keywords.py`` and
``keywords/decommissioned_keywords.py`` hand them what the nodes and Legion answered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tribesqa.contract import (
    ClusterNodesList,
    ClusterStatus,
    LegionSnapshot,
    MemberStatus,
    SyncMode,
    SyncStatus,
    find_secret_material,
)
from tribesqa.reporting.diffing import PRESENCE, Mismatch

# Origins a decommissioned node may still hear from: Legion writes to every machine it runs.
LEGION_ORIGIN = "legion"
_RECORD_PATH = re.compile(r"^nodes\[(\d+)\]")
OWN_ROW = "own row"
"""Row of a decommissioned node's report table: its own row in its ``cluster_nodes.list``."""


def decommissioned_view_findings(
    node: str,
    node_id: str,
    status: ClusterStatus,
    rows: ClusterNodesList,
    sync: SyncStatus,
) -> list[tuple[str, Mismatch]]:
    """What a decommissioned node gets wrong about itself: ``(problem, mismatch)`` pairs.

    It reports ``self_status`` decommissioned, lists its own row decommissioned, and has
    stopped syncing: ``sync.status`` mode ``stopped`` with no sync servers. The mismatch's row
    is ``cluster_status``, ``own row`` or ``sync.status`` (the rows of the report's table).
    """
    found: list[tuple[str, Mismatch]] = []
    if status.self_status is not MemberStatus.DECOMMISSIONED:
        found.append(
            (
                f"cluster_status.self_status is {status.self_status.value}",
                Mismatch(
                    node,
                    "cluster_status",
                    "self_status",
                    "decommissioned",
                    status.self_status.value,
                ),
            )
        )
    own = rows.by_id().get(node_id)
    if own is None:
        found.append(
            (
                f"cluster_nodes.list has no row for itself ({node_id})",
                Mismatch(node, OWN_ROW, PRESENCE, "present", "missing"),
            )
        )
    elif own.status is not MemberStatus.DECOMMISSIONED:
        found.append(
            (
                f"its own row in cluster_nodes.list is {own.status.value}",
                Mismatch(node, OWN_ROW, "status", "decommissioned", own.status.value),
            )
        )
    if sync.mode is not SyncMode.STOPPED:
        found.append(
            (
                f"sync.status mode is {sync.mode.value}, not stopped",
                Mismatch(node, "sync.status", "mode", "stopped", sync.mode.value),
            )
        )
    if sync.servers:
        servers = ", ".join(f"{s.node_id} ({s.url})" for s in sync.servers)
        found.append(
            (
                f"sync.status still lists {len(sync.servers)} sync server(s): {servers}",
                Mismatch(node, "sync.status", "servers", [], [s.node_id for s in sync.servers]),
            )
        )
    return found


def decommissioned_view_problems(
    node: str,
    node_id: str,
    status: ClusterStatus,
    rows: ClusterNodesList,
    sync: SyncStatus,
) -> list[str]:
    """What a decommissioned node gets wrong about itself (empty when its view is right)."""
    return [text for text, _ in decommissioned_view_findings(node, node_id, status, rows, sync)]


def events_received_since(
    own_id: str, before: Mapping[str, int], now: Mapping[str, int]
) -> dict[str, tuple[int, int]]:
    """Origins (other than the node itself and Legion) whose events grew: ``{origin: (was, is)}``."""
    return {
        origin: (before.get(origin, 0), seq)
        for origin, seq in now.items()
        if origin not in (own_id, LEGION_ORIGIN) and seq > before.get(origin, 0)
    }


def describe_received(node: str, received: Mapping[str, tuple[int, int]]) -> str:
    """``node scaleway-1 is decommissioned but received 2 new event(s): from hetzner-1 3 -> 5``."""
    count = sum(now - was for was, now in received.values())
    detail = ", ".join(f"from {o} {was} -> {now}" for o, (was, now) in sorted(received.items()))
    return (
        f"node {node} is decommissioned but received {count} new event(s) from the "
        f"active nodes (version vector {detail})"
    )


def snapshot_secret_problems(raw: Any) -> list[str]:
    """Where Legion's raw snapshot holds secret material, naming the machine of a node record.

    ``["record of hetzner-1: nodes[0].ssh.private_key", ...]``; values are never shown.
    """
    paths = find_secret_material(raw)
    records = raw.get("nodes") if isinstance(raw, Mapping) else None
    named = []
    for path in paths:
        match = _RECORD_PATH.match(path)
        name = None
        if match and isinstance(records, list) and int(match.group(1)) < len(records):
            record = records[int(match.group(1))]
            name = record.get("name") if isinstance(record, Mapping) else None
        named.append(f"record of {name}: {path}" if name else path)
    return named


def membership_record_problems(
    snapshot: LegionSnapshot, expected: Mapping[str, MemberStatus]
) -> list[str]:
    """Rows of ``clusterMembership`` missing or with another status than ``expected``."""
    problems = []
    for name, status in expected.items():
        try:
            record = snapshot.membership(name)
        except LookupError:
            problems.append(f"no clusterMembership row for {name} (expected {status.value})")
            continue
        if record.status is not status:
            problems.append(
                f"clusterMembership row of {name} is {record.status.value}, expected {status.value}"
            )
    return problems
