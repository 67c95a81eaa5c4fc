"""A node's durable state: one SQLite database in WAL mode.

Everything a node knows is an event in ``events`` (the sync log); the tables next to it
(``cluster_nodes``, ``tribe``, ``supertest_*``) are derived by applying those events and can be
rebuilt from the log at any time (``rebuild``), which is what a full resync does. A commit is in
the WAL file (the OS's page cache) before it returns, so a ``kill -9`` loses no committed write;
``synchronous=NORMAL`` skips the fsync per commit, which only a power loss would need and which
blocked the whole host's event loop (~2 ms per event per node, the main cost of a 50-node join).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tribes_sim.store.derived_tables import DerivedTablesMixin
from tribes_sim.store.local_records import LocalRecordsMixin
from tribes_sim.store.schema import (
    LEGION_ORIGIN,
    MEMBER_FIELDS,
    SCHEMA,
)
from tribes_sim.store.sync_event import SyncEvent


class NodeStore(DerivedTablesMixin, LocalRecordsMixin):
    """SQLite-backed state of one node; not thread-safe (one event loop owns it)."""

    def __init__(
        self,
        path: Path,
        node_id: str,
        *,
        merge_counters: bool = True,
        archive_decommissioned: bool = True,
        keep_own_archived_row: bool = True,
        project_member: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self.path = path
        self.node_id = node_id
        self.merge_counters = merge_counters
        self.archive_decommissioned = archive_decommissioned
        # Off only for the decommissioned-forgets-own-row fault: the node deletes its own row
        # when it is decommissioned (the others archive it).
        self.keep_own_archived_row = keep_own_archived_row
        self.project_member = project_member
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self.version_vector: dict[str, int] = self._load_version_vector()

    # -- plumbing -------------------------------------------------------------------------
    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")

    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _load_version_vector(self) -> dict[str, int]:
        rows = self.db.execute("SELECT origin, MAX(seq) AS seq FROM events GROUP BY origin")
        return {row["origin"]: row["seq"] for row in rows}

    def plugin_tables_present(self) -> list[str]:
        rows = self.db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'supertest_%' "
            "ORDER BY name"
        )
        return [row["name"] for row in rows]

    def last_hlc(self) -> str | None:
        row = self.db.execute("SELECT MAX(hlc) AS hlc FROM events").fetchone()
        return row["hlc"] if row else None

    # -- the log ------------------------------------------------------------------------------
    def next_own_seq(self) -> int:
        return self.version_vector.get(self.node_id, 0) + 1

    def append(self, event: SyncEvent, *, apply: bool = True) -> bool:
        """Store and apply one event if it is the next of its origin; return whether it was new.

        Legion's events are whole membership snapshots, so only the newest one matters and
        gaps are fine; every other origin must arrive in order (each node holds a contiguous
        prefix of each origin, which is what makes the version vector meaningful).
        """
        have = self.version_vector.get(event.origin, 0)
        if event.seq <= have:
            return False
        if event.origin != LEGION_ORIGIN and event.seq != have + 1:
            return False
        with self.transaction():
            if event.origin == LEGION_ORIGIN:
                self.db.execute("DELETE FROM events WHERE origin = ?", (LEGION_ORIGIN,))
            self.db.execute(
                "INSERT INTO events (origin, seq, hlc, ns, kind, data) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    event.origin,
                    event.seq,
                    event.hlc,
                    event.ns,
                    event.kind,
                    json.dumps(event.data, sort_keys=True),
                ),
            )
            if apply:
                self._apply(event)
        self.version_vector[event.origin] = event.seq
        return True

    def events_after(
        self, vector: dict[str, int], *, withhold_own_after: int | None = None, limit: int = 500
    ) -> list[SyncEvent]:
        """Events the holder of ``vector`` lacks, per origin in order."""
        events: list[SyncEvent] = []
        for origin, mine in sorted(self.version_vector.items()):
            theirs = int(vector.get(origin, 0))
            if mine <= theirs:
                continue
            ceiling = mine
            if origin == self.node_id and withhold_own_after is not None:
                ceiling = min(mine, withhold_own_after)
            if ceiling <= theirs:
                continue
            rows = self.db.execute(
                "SELECT * FROM events WHERE origin = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                (origin, theirs, ceiling, limit - len(events)),
            )
            events.extend(self._row_to_event(row) for row in rows)
            if len(events) >= limit:
                break
        return events

    def all_events(self) -> list[SyncEvent]:
        rows = self.db.execute("SELECT * FROM events ORDER BY hlc, origin, seq")
        return [self._row_to_event(row) for row in rows]

    def event_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    @staticmethod
    def _row_to_event(row: sqlite3.Row) -> SyncEvent:
        return SyncEvent(
            origin=row["origin"],
            seq=row["seq"],
            hlc=row["hlc"],
            ns=row["ns"],
            kind=row["kind"],
            data=json.loads(row["data"]),
        )

    def blank_own_events_after(self, seq: int) -> int:
        """Turn this node's events after ``seq`` into no-ops (the heal-loses-writes fault)."""
        with self.transaction():
            cursor = self.db.execute(
                "UPDATE events SET kind = 'noop', data = '{}' "
                "WHERE origin = ? AND seq > ? AND ns = 'supertest'",
                (self.node_id, seq),
            )
        return cursor.rowcount

    # -- queries ------------------------------------------------------------------------------
    def members(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM cluster_nodes ORDER BY joined_at, node_id")
        return [{name: row[name] for name in MEMBER_FIELDS} for row in rows]

    def member(self, node_id: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT * FROM cluster_nodes WHERE node_id = ?", (node_id,)
        ).fetchone()
        return {name: row[name] for name in MEMBER_FIELDS} if row else None

    def tribe(self) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM tribe WHERE singleton = 1").fetchone()
        if row is None:
            return None
        members = json.loads(row["members"])
        body = {
            "tribe_id": row["tribe_id"],
            "name": row["name"],
            "members": members,
            "version": row["version"],
        }
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        return {**body, "digest": digest}

    def case(self, case_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM supertest_cases WHERE id = ?", (case_id,)).fetchone()
        return self._case_row(row) if row and row["name"] is not None else None

    @staticmethod
    def _case_row(row: sqlite3.Row) -> dict[str, Any]:
        parts = json.loads(row["counter_parts"])
        return {
            "id": row["id"],
            "run_id": row["run_id"],
            "name": row["name"],
            "counter": sum(int(v) for v in parts.values()),
            "updated_at": row["updated_at"],
            "origin_node": row["origin_node"],
        }

    def plugin_state(self, run_id: str | None) -> dict[str, list[dict[str, Any]]]:
        where, args = ("WHERE run_id = ?", (run_id,)) if run_id else ("", ())
        cases = self.db.execute(
            f"SELECT * FROM supertest_cases {where} ORDER BY id",
            args,
        )
        events = self.db.execute(
            f"SELECT * FROM supertest_events {where} ORDER BY created_at, id",
            args,
        )
        return {
            "cases": [self._case_row(row) for row in cases if row["name"] is not None],
            "events": [
                {
                    "id": row["id"],
                    "run_id": row["run_id"],
                    "case_id": row["case_id"],
                    "kind": row["kind"],
                    "payload": json.loads(row["payload"]),
                    "created_at": row["created_at"],
                    "origin_node": row["origin_node"],
                }
                for row in events
            ],
        }
