"""Invariants over the plugin's generations and data, in the style of ``invariants``: pure
functions, a suite's records in (``seq`` order), violations out, each naming two records.

- After a rollout or rollback job reported success, the node's selected and running agree and
  stay at that generation until its next rollout or rollback.
- Every acknowledged plugin write is seen by every active node whose last read (of the write's
  run, in the same life of its plugin tables) came after the last heal: no lost write.
- Per observer, no plugin row goes back to an older version: no case counter moves back, no
  event's ``created_at`` changes, no row once seen disappears.

A node's plugin tables start a new life at each rollout or rollback (the migrations create or
drop them) and when Legion destroys, replaces or reactivates it; reads are compared within one
life only. A full resync licenses going back (as for membership rows), never losing a write.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from tribesqa.history.invariants import Licenses, Record, Violation, node_ids

JOB_STARTS = frozenset({"rollout.start", "generation.rollback"})
# Operations after which a node's generations and plugin tables legitimately start over.
NODE_RESETS = frozenset({"legion.destroy", "legion.replace", "legion.reactivate"})
_FAULTS = frozenset({"fault.partition", "fault.crash", "fault.outage"})
_CREATES = {"plugin.write:plugin.cases": "case", "plugin.write:plugin.events": "event"}


# ---------------------------------------------------------------------------------------------
# Generations
# ---------------------------------------------------------------------------------------------


def _generations(record: Record) -> tuple[str, str] | None:
    value = record.get("value")
    if not isinstance(value, Mapping):
        return None
    selected, running = value.get("selected"), value.get("running")
    if not isinstance(selected, str) or not isinstance(running, str):
        return None
    return selected, running


def generation_holds_after_success(records: Sequence[Record]) -> list[Violation]:
    """After the success report of the job a node's latest rollout or rollback started, every
    report of its generations (``generation.status``, that job's ``rollout.status``) shows
    selected == running == the generation it succeeded at, until its next rollout or rollback."""
    held: dict[str, Record] = {}  # node -> the success report its generations must hold to
    last: dict[str, Record] = {}  # node -> its latest generation report
    started: dict[str, Any] = {}  # node -> the job id its latest rollout or rollback got
    found: list[Violation] = []
    for record in records:
        node, what = record.get("node"), record.get("what")
        if node is None:
            continue
        node = str(node)
        if record.get("type") == "invoke" and (what in JOB_STARTS or what in NODE_RESETS):
            held.pop(node, None)
            started.pop(node, None)
            continue
        if record.get("type") == "ok" and what in JOB_STARTS:
            started[node] = (record.get("value") or {}).get("job_id")
            continue
        seen = _generations(record)
        if record.get("type") != "observation" or seen is None:
            continue
        if what not in ("generation.status", "rollout.status"):
            continue
        value = record["value"]
        success = held.get(node)
        if success is None:
            # Only the success of the job started last sets the generation: an older job's
            # report (or a resync job's) says nothing about what the node runs now.
            job_id = value.get("job_id")
            if (
                what == "rollout.status"
                and value.get("state") == "succeeded"
                and (job_id is not None and job_id == started.get(node))
            ):
                held[node] = record
                if seen[0] != seen[1]:
                    found.append(_split(node, last.get(node), record, seen))
            last[node] = record
            continue
        if what == "rollout.status" and value.get("job_id") != success["value"].get("job_id"):
            continue  # an older job's report says nothing about the generation now
        want = success["value"]["running"]
        if seen != (want, want):
            found.append(_moved(node, success, record, seen))
            held.pop(node)  # one violation per success: the next reports repeat it
        last[node] = record
    return found


def _split(node: str, before: Record | None, success: Record, seen: tuple[str, str]) -> Violation:
    value = success["value"]
    return Violation(
        "generation holds after success",
        node,
        None,
        before,
        success,
        f"{value.get('kind')} job {value.get('job_id')} reported succeeded on {node} "
        f"with selected {seen[0]} but running {seen[1]}",
    )


def _moved(node: str, success: Record, record: Record, seen: tuple[str, str]) -> Violation:
    value = success["value"]
    return Violation(
        "generation holds after success",
        node,
        None,
        success,
        record,
        f"after {value.get('kind')} job {value.get('job_id')} reported succeeded on {node} "
        f"at {value.get('running')}, {node} reported selected {seen[0]}, running {seen[1]} "
        "with no rollout or rollback in between",
    )


# ---------------------------------------------------------------------------------------------
# Plugin data
# ---------------------------------------------------------------------------------------------


def _plugin_rows(record: Record) -> dict[str, Mapping[str, Any]] | None:
    """A successful ``plugin.state`` read as row id -> row (cases and events); None otherwise."""
    if record.get("type") != "observation" or record.get("what") != "plugin.state":
        return None
    value = record.get("value")
    if not isinstance(value, Mapping) or value.get("status") != 200:
        return None
    body = value.get("body")
    if not isinstance(body, Mapping):
        return None
    rows: dict[str, Mapping[str, Any]] = {}
    for kind in ("cases", "events"):
        for item in body.get(kind) or []:
            if isinstance(item, Mapping) and item.get("id") is not None:
                rows[str(item["id"])] = item
    return rows


def _covers(read: Record, run: Any) -> bool:
    """Whether a read would hold rows of ``run`` (it filters on that run, or on none)."""
    query = (read.get("value") or {}).get("query") or {}
    return query.get("run_id") in (None, run)


class _Lives:
    """Per node, which life of its plugin tables a seq falls in, whether a fault was in effect,
    whether Legion had decommissioned it and its membership status as last read: walked once,
    in order, alongside the records."""

    def __init__(self, ids: Mapping[str, str] | None = None) -> None:
        self.ids = dict(ids or {})
        self.status: dict[str, str] = {}  # membership node id -> its status as last read
        self.life: dict[str, int] = {}  # node -> which life (absent: the first)
        self._lives = itertools.count(1)
        self.decommissioned: set[str] = set()
        self.faults: set[tuple[str, str]] = set()

    def active(self, node: str) -> bool:
        """Neither decommissioned by Legion nor read as syncing or decommissioned lately (a
        syncing node is still replaying: its reads may lack writes)."""
        status = self.status.get(self.ids.get(node, node))
        return node not in self.decommissioned and status not in ("syncing", "decommissioned")

    def step(self, record: Record) -> None:
        what, node = record.get("what"), str(record.get("node"))
        if record.get("type") == "observation" and what == "cluster_nodes.list":
            for node_id, row in (record.get("value") or {}).items():
                if isinstance(row, Mapping) and isinstance(row.get("status"), str):
                    self.status[str(node_id)] = row["status"]
        if record.get("type") == "ok" and what == "legion.decommission":
            self.decommissioned.add(node)  # a refused decommission leaves the node active
        elif record.get("type") == "ok" and what == "legion.reactivate":
            self.decommissioned.discard(node)
        if record.get("type") != "invoke":
            return
        if what in JOB_STARTS or what in NODE_RESETS:
            self.life[node] = next(self._lives)
        if what == "heal.all":
            self.faults.clear()
        elif what == "fault.restart":
            self.faults.discard(("fault.crash", node))
        elif what == "fault.outage" and not _outage_starts(record):
            self.faults.discard(("fault.outage", node))
        elif what in _FAULTS:
            self.faults.add((str(what), node))


def _outage_starts(record: Record) -> bool:
    args = (record.get("value") or {}).get("args") or []
    return len(args) < 2 or bool(args[1])


def _acknowledged(records: Sequence[Record]) -> list[tuple[Record, str, Any, int | None]]:
    """Acknowledged plugin writes: (ok record, row id, run id, increment or None for a create)."""
    invoked = {r.get("op"): r for r in records if r.get("type") == "invoke"}
    writes: list[tuple[Record, str, Any, int | None]] = []
    for record in records:
        what = str(record.get("what"))
        value = record.get("value")
        if record.get("type") != "ok" or not what.startswith("plugin.write:"):
            continue
        if not isinstance(value, list | tuple) or len(value) != 2:
            continue
        status, row = value
        if not isinstance(status, int) or not 200 <= status < 300 or not isinstance(row, Mapping):
            continue
        if what in _CREATES and row.get("id") is not None:
            writes.append((record, str(row["id"]), row.get("run_id"), None))
        elif what.endswith("/increment") and row.get("id") is not None:
            body = (invoked.get(record.get("op"), {}).get("value") or {}).get("body") or {}
            by = body.get("by", 1)
            if isinstance(by, int) and not isinstance(by, bool):
                writes.append((record, str(row["id"]), None, by))  # its run: its case's
    return writes


def acknowledged_writes_survive(records: Sequence[Record]) -> list[Violation]:
    """Each node's last read of a write's run (in the life of its tables the write's
    acknowledgement fell in), when no fault was in effect and Legion had not decommissioned it,
    holds every row a node acknowledged creating before it, and each case's counter is at least
    the sum of the increments acknowledged before it (when none of them was negative)."""
    lives = _Lives(node_ids(records))
    writes = _acknowledged(records)
    creates = {ack["seq"]: (ack, row_id, run) for ack, row_id, run, by in writes if by is None}
    lives_then: dict[int, dict[str, int]] = {}  # ack seq -> each node's table life at the ack
    last_read: dict[tuple[str, int, Any], tuple[Record, bool]] = {}  # (node, life, run) -> read
    for record in records:
        lives.step(record)
        if record.get("seq") in creates:
            lives_then[record["seq"]] = dict(lives.life)
        rows = _plugin_rows(record)
        if rows is None:
            continue
        node = str(record.get("node"))
        judged = not lives.faults and lives.active(node)
        for _, _, run in creates.values():
            if _covers(record, run):
                last_read[(node, lives.life.get(node, 0), run)] = (record, judged)
    found: list[Violation] = []
    for node in sorted({key[0] for key in last_read}):
        for seq, (ack, row_id, run) in creates.items():
            read, judged = last_read.get((node, lives_then[seq].get(node, 0), run), (ack, False))
            if not judged or read["seq"] < seq:
                continue
            rows = _plugin_rows(read) or {}
            if row_id not in rows:
                found.append(_lost(node, row_id, ack, read, f"{row_id} is missing"))
                continue
            total, negative = _increments_before(writes, row_id, read["seq"])
            counter = rows[row_id].get("counter")
            if not negative and isinstance(counter, int) and counter < total:
                found.append(
                    _lost(
                        node,
                        row_id,
                        ack,
                        read,
                        f"{row_id} has counter {counter}, below the {total} "
                        "its acknowledged increments add up to",
                    )
                )
    return found


def _increments_before(
    writes: Sequence[tuple[Record, str, Any, int | None]], row_id: str, seq: int
) -> tuple[int, bool]:
    steps = [
        by for ack, rid, _, by in writes if rid == row_id and by is not None and ack["seq"] < seq
    ]
    return sum(steps), any(step < 0 for step in steps)


def _lost(node: str, row_id: str, ack: Record, read: Record, what: str) -> Violation:
    return Violation(
        "acknowledged writes survive",
        node,
        None,
        ack,
        read,
        f"{ack.get('node')} acknowledged {str(ack.get('what')).removeprefix('plugin.write:')} "
        f"(#{ack.get('seq')}), but {node}'s last read after the last heal (#{read.get('seq')}) "
        f"says {what}",
        row_id,
    )


def plugin_values_never_go_back(records: Sequence[Record]) -> list[Violation]:
    """Per observer and life of its tables: a row once seen stays in every later read of its run,
    a case's counter never moves back (unless it had a negative increment) and an event's
    ``created_at`` never changes; a full resync licenses going back."""
    ids = node_ids(records)
    resyncs = Licenses(records, frozenset({"sync.resync"}))
    negative = {rid for _, rid, _, by in _acknowledged(records) if by is not None and by < 0}
    lives = _Lives()
    seen: dict[tuple[str, int], dict[str, tuple[Record, Mapping[str, Any]]]] = {}
    reported: set[tuple[str, int, str]] = set()
    found: list[Violation] = []
    for record in records:
        lives.step(record)
        rows = _plugin_rows(record)
        if rows is None:
            continue
        node = str(record.get("node"))
        life = (node, lives.life.get(node, 0))
        known = seen.setdefault(life, {})
        for row_id, (before, old) in list(known.items()):
            if not _covers(record, old.get("run_id")) or (*life, row_id) in reported:
                continue
            reason = _went_back(row_id, old, rows.get(row_id), row_id not in negative)
            if reason and not resyncs.covers((ids.get(node, node),), before, record):
                reported.add((*life, row_id))
                found.append(
                    Violation(
                        "plugin values never go back", node, None, before, record, reason, row_id
                    )
                )
        for row_id, row in rows.items():
            known[row_id] = (record, row)
    return found


def _went_back(
    row_id: str, old: Mapping[str, Any], new: Mapping[str, Any] | None, counts: bool
) -> str:
    """Why ``new`` is an older version of ``old`` ("" if it is not). A case's counter is a sum
    of increments: it only grows (unless one was negative). Its ``updated_at`` is
    last-writer-wins by the writers' clocks (contract section 3), so it may move back on a
    healthy fleet: not judged. An event is insert-once: its ``created_at`` never changes."""
    if new is None:
        return f"{row_id} disappeared after it had been read"
    if "created_at" in old and new.get("created_at") != old.get("created_at"):
        return (
            f"created_at of {row_id} changed from {old.get('created_at')} to "
            f"{new.get('created_at')} (events are insert-once)"
        )
    before, after = old.get("counter"), new.get("counter")
    if counts and isinstance(before, int) and isinstance(after, int) and after < before:
        return f"counter of {row_id} went back from {before} to {after}"
    return ""
