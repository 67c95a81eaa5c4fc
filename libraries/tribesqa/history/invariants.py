"""Invariants over a suite's whole history: small pure functions, records in, violations out.

Each function takes the records of one suite (``recorder`` format, in ``seq`` order) and returns
the violations it finds, each naming the two records that contradict each other. No I/O, no
Robot: ``tests/test_history_invariants.py`` feeds them hand-made histories.

Operations that legitimately restart a row's life (``sync.resync``, ``legion.reactivate``,
``legion.replace``, a crash or restart from the nemesis) *license* the rows of their node: from the operation's
``invoke`` to the end of the test it ran in, rows of that node (on every observer) and every row
on that node (as observer) may move back; an observation outside every license may not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

Record = Mapping[str, Any]

RESET_OPERATIONS = frozenset(
    {"sync.resync", "legion.reactivate", "fault.crash", "fault.restart", "legion.replace"}
)
_RANK = {"syncing": 0, "active": 1, "decommissioned": 2}
_MATERIAL_STATUSES = frozenset({"provisioning", "ready", "decommissioned", "destroyed"})


@dataclass(frozen=True)
class Violation:
    """Two observations that contradict one invariant about one node."""

    invariant: str
    node: str
    observer: str | None
    first: Record | None
    second: Record
    reason: str
    row: str | None = None  # the plugin row at stake (membership rows are keyed by ``node``)


# ---------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------


def observations(records: Iterable[Record], what: str) -> list[Record]:
    return [r for r in records if r.get("type") == "observation" and r.get("what") == what]


def node_ids(records: Iterable[Record]) -> dict[str, str]:
    """Legion's node name -> membership node_id, as ``node_ids`` info records taught it."""
    mapping: dict[str, str] = {}
    for record in records:
        if record.get("type") == "info" and record.get("what") == "node_ids":
            mapping.update({str(k): str(v) for k, v in (record.get("value") or {}).items()})
    return mapping


class Licenses:
    """Per node id: the seq ranges in which its rows may move back (see the module text)."""

    def __init__(self, records: Sequence[Record], operations: frozenset[str]) -> None:
        ids = node_ids(records)
        self.ranges: dict[str, list[tuple[int, int]]] = {}
        for index, record in enumerate(records):
            if record.get("type") != "invoke" or record.get("what") not in operations:
                continue
            node = record.get("node")
            if node is None:
                continue
            end = record["seq"]
            for later in records[index + 1 :]:
                if later.get("test") != record.get("test"):
                    break
                end = later["seq"]
            self.ranges.setdefault(ids.get(str(node), str(node)), []).append((record["seq"], end))

    def covers(self, nodes: Iterable[str], first: Record, second: Record) -> bool:
        """Whether a license of one of ``nodes`` overlaps the seqs from ``first`` to ``second``."""
        low, high = first["seq"], second["seq"]
        return any(
            start <= high and end >= low
            for node in nodes
            for start, end in self.ranges.get(node, ())
        )


def _rows(record: Record) -> Mapping[str, Mapping[str, Any]]:
    value = record.get("value")
    if not isinstance(value, Mapping):
        return {}
    return {str(k): row for k, row in value.items() if isinstance(row, Mapping)}


def _stamp(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:  # RFC 3339 allows a lowercase "z", which fromisoformat refuses (as contract.node_time)
        stamp = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    # RFC 3339 requires an offset; one without could not be compared with one that has it.
    return stamp if stamp.tzinfo is not None else None


def _observer(record: Record, ids: Mapping[str, str]) -> str:
    node = str(record.get("node"))
    return ids.get(node, node)


# ---------------------------------------------------------------------------------------------
# The invariants
# ---------------------------------------------------------------------------------------------


def membership_moves_forward(records: Sequence[Record]) -> list[Violation]:
    """Per observer, a row moves only syncing -> active -> decommissioned (a licensed node's
    rows excepted: resync, reactivation, crash, restart)."""
    ids = node_ids(records)
    licenses = Licenses(records, RESET_OPERATIONS)
    last: dict[tuple[str, str], Record] = {}
    found: list[Violation] = []
    for record in observations(records, "cluster_nodes.list"):
        observer = _observer(record, ids)
        for node_id, row in _rows(record).items():
            status = row.get("status")
            if status not in _RANK:
                continue
            before = last.get((observer, node_id))
            last[(observer, node_id)] = record
            if before is None:
                continue
            old = _rows(before)[node_id].get("status")
            if _RANK[status] >= _RANK[old] or licenses.covers((observer, node_id), before, record):
                continue
            found.append(
                Violation(
                    "membership moves forward",
                    node_id,
                    observer,
                    before,
                    record,
                    f"row {node_id} went {old} -> {status} on {observer} "
                    "with no resync, reactivation, crash or restart of either node in between",
                )
            )
    return found


def activation_never_decreases(records: Sequence[Record]) -> list[Violation]:
    """Per observer, a row's ``activated_at`` never moves to an earlier time (licenses apart)."""
    ids = node_ids(records)
    licenses = Licenses(records, RESET_OPERATIONS)
    last: dict[tuple[str, str], tuple[datetime, Record]] = {}
    found: list[Violation] = []
    for record in observations(records, "cluster_nodes.list"):
        observer = _observer(record, ids)
        for node_id, row in _rows(record).items():
            stamp = _stamp(row.get("activated_at"))
            if stamp is None:
                continue
            before = last.get((observer, node_id))
            licensed = before is not None and licenses.covers(
                (observer, node_id), before[1], record
            )
            if before is not None and stamp < before[0] and not licensed:
                found.append(
                    Violation(
                        "activation never decreases",
                        node_id,
                        observer,
                        before[1],
                        record,
                        f"activated_at of {node_id} on {observer} went back from "
                        f"{_rows(before[1])[node_id].get('activated_at')} to "
                        f"{row.get('activated_at')}",
                    )
                )
                continue
            last[(observer, node_id)] = (stamp, record)
    return found


def _materialized(records: Sequence[Record]) -> dict[str, Record]:
    """Node name -> the first record in which Legion showed it materialized."""
    seen: dict[str, Record] = {}
    for record in records:
        what, value = record.get("what"), record.get("value")
        names: list[str] = []
        if record.get("type") == "observation" and what == "legion.list":
            names = [n for n, s in (value or {}).items() if s in _MATERIAL_STATUSES]
        elif record.get("type") == "ok" and what in ("legion.provision_init", "legion.replace"):
            names = [str(value.get("name"))] if isinstance(value, Mapping) else []
        elif record.get("type") == "ok" and what == "legion.materialize":
            names = [str(n) for n in (value or {}).get("materialized", [])]
        for name in names:
            seen.setdefault(name, record)
    return seen


def no_ghost_rows(records: Sequence[Record]) -> list[Violation]:
    """No node holds a row for a node Legion never materialized (in this suite's history)."""
    known = _materialized(records)
    if not known:
        return []  # no Legion record at all: nothing to compare with
    ids = node_ids(records)
    materialized = {ids.get(name, name) for name in known}
    reported: set[tuple[str, str]] = set()
    found: list[Violation] = []
    legion: Record | None = None  # Legion's latest node list: the other side of the contradiction
    for record in records:
        if record.get("type") == "observation" and record.get("what") == "legion.list":
            legion = record
        if record.get("type") != "observation" or record.get("what") != "cluster_nodes.list":
            continue
        observer = _observer(record, ids)
        for node_id in _rows(record):
            if node_id in materialized or (observer, node_id) in reported:
                continue
            reported.add((observer, node_id))
            found.append(
                Violation(
                    "no ghost rows",
                    node_id,
                    observer,
                    legion,
                    record,
                    f"{observer} holds a row for {node_id}, which Legion never materialized "
                    f"(materialized: {', '.join(sorted(materialized))})",
                )
            )
    return found


def decommissioned_server_stays_out(records: Sequence[Record]) -> list[Violation]:
    """Once an observer's sync servers dropped a decommissioned node's transport address, that
    address never reappears there (until the node is reactivated)."""
    ids = node_ids(records)
    reactivated = Licenses(records, frozenset({"legion.reactivate"}))
    # transport address -> (node id, the observation showing it decommissioned)
    retired: dict[str, tuple[str, Record]] = {}
    dropped: dict[tuple[str, str], Record] = {}  # (observer, address) -> sync.status without it
    found: list[Violation] = []
    for record in records:
        if record.get("type") != "observation":
            continue
        if record.get("what") == "cluster_nodes.list":
            for node_id, row in _rows(record).items():
                address = row.get("transport_address")
                if not address:
                    continue
                if row.get("status") == "decommissioned":
                    retired.setdefault(address, (node_id, record))
                elif address in retired and reactivated.covers(
                    (node_id,), retired[address][1], record
                ):
                    del retired[address]
            continue
        if record.get("what") != "sync.status":
            continue
        observer = _observer(record, ids)
        servers = set((record.get("value") or {}).get("servers") or ())
        for address, (node_id, _) in list(retired.items()):
            key = (observer, address)
            if address not in servers:
                dropped.setdefault(key, record)
            elif key in dropped and not reactivated.covers((node_id,), dropped[key], record):
                found.append(
                    Violation(
                        "decommissioned server stays out",
                        node_id,
                        observer,
                        dropped.pop(key),
                        record,
                        f"{observer} syncs from {address} again, the transport address of "
                        f"decommissioned {node_id}, after it had dropped it",
                    )
                )
    return found
