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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LEGION_ORIGIN = "legion"
PLUGIN_TABLES = ("supertest_cases", "supertest_events")
SUPERTEST_MIGRATIONS = (
    "20260401000000_create_supertest_cases",
    "20260401000001_create_supertest_events",
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    origin TEXT NOT NULL, seq INTEGER NOT NULL, hlc TEXT NOT NULL, ns TEXT NOT NULL,
    kind TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (origin, seq));
CREATE INDEX IF NOT EXISTS events_hlc ON events (hlc);
CREATE TABLE IF NOT EXISTS cluster_nodes (
    node_id TEXT PRIMARY KEY, pubkey TEXT NOT NULL, transport_address TEXT NOT NULL,
    scope TEXT NOT NULL, status TEXT NOT NULL, joined_at TEXT NOT NULL, activated_at TEXT,
    decommissioned_at TEXT, updated_at TEXT NOT NULL, hlc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tribe (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1), tribe_id TEXT NOT NULL,
    name TEXT NOT NULL, members TEXT NOT NULL, version INTEGER NOT NULL, hlc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS generations (
    number INTEGER PRIMARY KEY, path TEXT NOT NULL, plugins TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS plans (
    plan_id TEXT PRIMARY KEY, plugins TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL, stage TEXT NOT NULL,
    target TEXT NOT NULL, error TEXT, log TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT PRIMARY KEY, applied_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS migration_log (
    n INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, line TEXT NOT NULL);
"""

PLUGIN_SCHEMA_UP = """
CREATE TABLE IF NOT EXISTS supertest_cases (
    id TEXT PRIMARY KEY, run_id TEXT, name TEXT, updated_at TEXT, origin_node TEXT,
    hlc TEXT NOT NULL DEFAULT '', counter_parts TEXT NOT NULL DEFAULT '{}',
    counter_lww TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS supertest_events (
    id TEXT PRIMARY KEY, run_id TEXT NOT NULL, case_id TEXT NOT NULL, kind TEXT NOT NULL,
    payload TEXT NOT NULL, created_at TEXT NOT NULL, origin_node TEXT NOT NULL);
"""

MEMBER_FIELDS = (
    "node_id",
    "pubkey",
    "transport_address",
    "scope",
    "status",
    "joined_at",
    "activated_at",
    "decommissioned_at",
    "updated_at",
)


@dataclass(frozen=True)
class SyncEvent:
    """One entry of the replicated log."""

    origin: str
    seq: int
    hlc: str
    ns: str
    kind: str
    data: dict[str, Any]

    def to_wire(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "seq": self.seq,
            "hlc": self.hlc,
            "ns": self.ns,
            "kind": self.kind,
            "data": self.data,
        }

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> SyncEvent:
        return cls(
            origin=str(raw["origin"]),
            seq=int(raw["seq"]),
            hlc=str(raw["hlc"]),
            ns=str(raw["ns"]),
            kind=str(raw["kind"]),
            data=dict(raw["data"]),
        )


class NodeStore:
    """SQLite-backed state of one node; not thread-safe (one event loop owns it)."""

    def __init__(
        self,
        path: Path,
        node_id: str,
        *,
        merge_counters: bool = True,
        archive_decommissioned: bool = True,
    ) -> None:
        self.path = path
        self.node_id = node_id
        self.merge_counters = merge_counters
        self.archive_decommissioned = archive_decommissioned
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

    # -- derived state ---------------------------------------------------------------------------
    def rebuild(self) -> None:
        """Re-derive every table from the log, from zero (what a full resync replays)."""
        with self.transaction():
            self.db.execute("DELETE FROM cluster_nodes")
            self.db.execute("DELETE FROM tribe")
            tables = self.plugin_tables_present()
            for table in tables:
                self.db.execute(f"DELETE FROM {table}")
            for event in self.all_events():
                self._apply(event)

    def replay_plugin_events(self) -> int:
        """Apply every plugin event of the log (after the up migration created the tables)."""
        count = 0
        with self.transaction():
            for event in self.all_events():
                if event.ns == "supertest":
                    self._apply(event)
                    count += 1
        return count

    def _apply(self, event: SyncEvent) -> None:
        if event.kind == "noop":
            return
        if event.ns == "control" and event.kind == "members":
            for row in event.data.get("rows", []):
                self._apply_member(row, row.get("hlc") or event.hlc)
            return
        if event.ns == "control" and event.kind == "member":
            self._apply_member(event.data, event.hlc)
            return
        if event.ns == "control" and event.kind == "tribe":
            self._apply_tribe(event.data, event.hlc)
            return
        if event.ns == "supertest" and PLUGIN_TABLES[0] in self.plugin_tables_present():
            self._apply_plugin(event)

    def _apply_member(self, row: dict[str, Any], hlc: str) -> None:
        current = self.db.execute(
            "SELECT hlc FROM cluster_nodes WHERE node_id = ?", (row["node_id"],)
        ).fetchone()
        if current is not None and current["hlc"] >= hlc:
            return
        if row.get("_delete") or (
            # decommission-deletes-row fault: the member's row is dropped, not archived.
            not self.archive_decommissioned and row.get("status") == "decommissioned"
        ):
            self.db.execute("DELETE FROM cluster_nodes WHERE node_id = ?", (row["node_id"],))
            return
        self.db.execute(
            "INSERT OR REPLACE INTO cluster_nodes "
            f"({', '.join(MEMBER_FIELDS)}, hlc) VALUES ({', '.join('?' * (len(MEMBER_FIELDS) + 1))})",
            (*(row.get(name) for name in MEMBER_FIELDS), hlc),
        )

    def _apply_tribe(self, data: dict[str, Any], hlc: str) -> None:
        current = self.db.execute("SELECT hlc FROM tribe WHERE singleton = 1").fetchone()
        if current is not None and current["hlc"] >= hlc:
            return
        self.db.execute(
            "INSERT OR REPLACE INTO tribe (singleton, tribe_id, name, members, version, hlc) "
            "VALUES (1, ?, ?, ?, ?, ?)",
            (
                data["tribe_id"],
                data["name"],
                json.dumps(sorted(data["members"])),
                data["version"],
                hlc,
            ),
        )

    def _apply_plugin(self, event: SyncEvent) -> None:
        data = event.data
        if event.kind == "case":
            current = self.db.execute(
                "SELECT hlc FROM supertest_cases WHERE id = ?", (data["id"],)
            ).fetchone()
            if current is None:
                self.db.execute(
                    "INSERT INTO supertest_cases (id, run_id, name, updated_at, origin_node, hlc) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        data["id"],
                        data["run_id"],
                        data["name"],
                        data["updated_at"],
                        event.origin,
                        event.hlc,
                    ),
                )
            elif current["hlc"] < event.hlc:
                self.db.execute(
                    "UPDATE supertest_cases SET run_id = ?, name = ?, updated_at = ?, "
                    "origin_node = ?, hlc = ? WHERE id = ?",
                    (
                        data["run_id"],
                        data["name"],
                        data["updated_at"],
                        event.origin,
                        event.hlc,
                        data["id"],
                    ),
                )
        elif event.kind == "increment":
            self._apply_increment(event)
        elif event.kind == "event":
            self.db.execute(
                "INSERT OR IGNORE INTO supertest_events "
                "(id, run_id, case_id, kind, payload, created_at, origin_node) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    data["id"],
                    data["run_id"],
                    data["case_id"],
                    data["kind"],
                    json.dumps(data["payload"], sort_keys=True),
                    data["created_at"],
                    event.origin,
                ),
            )

    def _apply_increment(self, event: SyncEvent) -> None:
        data = event.data
        row = self.db.execute(
            "SELECT counter_parts, counter_lww FROM supertest_cases WHERE id = ?",
            (data["case_id"],),
        ).fetchone()
        if row is None:
            # The increment outran the case itself (it came through another peer): keep the
            # counter part on a placeholder row that the case event fills in later.
            self.db.execute(
                "INSERT INTO supertest_cases (id, run_id, updated_at) VALUES (?, ?, ?)",
                (data["case_id"], data.get("run_id"), data["at"]),
            )
            parts: dict[str, Any] = {}
            lww = ""
        else:
            parts = json.loads(row["counter_parts"])
            lww = row["counter_lww"]
        if self.merge_counters:
            parts[event.origin] = int(parts.get(event.origin, 0)) + int(data["by"])
        elif event.hlc > lww:
            # counter-not-merged fault: the origin's view of the total wins, concurrent
            # increments made elsewhere are lost.
            parts = {"lww": int(data["counter_after"])}
            lww = event.hlc
        self.db.execute(
            "UPDATE supertest_cases SET counter_parts = ?, counter_lww = ?, "
            "updated_at = MAX(COALESCE(updated_at, ''), ?) WHERE id = ?",
            (json.dumps(parts, sort_keys=True), lww, data["at"], data["case_id"]),
        )

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

    # -- plugin schema --------------------------------------------------------------------------
    def migrate_plugin_up(self, now: str) -> list[str]:
        with self.transaction():
            # executescript() would commit the open transaction: run statement by statement.
            for statement in PLUGIN_SCHEMA_UP.split(";"):
                if statement.strip():
                    self.db.execute(statement)
            for migration in SUPERTEST_MIGRATIONS:
                self.db.execute(
                    "INSERT OR IGNORE INTO schema_migrations (id, applied_at) VALUES (?, ?)",
                    (migration, now),
                )
                self.log_migration(now, f"up {migration}")
        return list(SUPERTEST_MIGRATIONS)

    def migrate_plugin_down(self, now: str) -> list[str]:
        with self.transaction():
            for migration, table in reversed(
                list(zip(SUPERTEST_MIGRATIONS, PLUGIN_TABLES, strict=True))
            ):
                self.db.execute(f"DROP TABLE IF EXISTS {table}")
                self.db.execute("DELETE FROM schema_migrations WHERE id = ?", (migration,))
                self.log_migration(now, f"down {migration}")
        return list(reversed(SUPERTEST_MIGRATIONS))

    def applied_migrations(self) -> list[str]:
        return [
            row["id"] for row in self.db.execute("SELECT id FROM schema_migrations ORDER BY id")
        ]

    def log_migration(self, now: str, line: str) -> None:
        self.db.execute("INSERT INTO migration_log (at, line) VALUES (?, ?)", (now, line))

    def migration_log(self, limit: int = 100) -> list[str]:
        rows = self.db.execute(
            "SELECT at, line FROM migration_log ORDER BY n DESC LIMIT ?", (limit,)
        ).fetchall()
        return [f"{row['at']} {row['line']}" for row in reversed(rows)]

    # -- generations, plans, jobs --------------------------------------------------------------
    def generations(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM generations ORDER BY number")
        return [
            {
                "number": row["number"],
                "path": row["path"],
                "plugins": json.loads(row["plugins"]),
                "created_at": row["created_at"],
            }
            for row in rows
        ]

    def add_generation(
        self, number: int, path: str, plugins: Iterable[str], created_at: str
    ) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO generations (number, path, plugins, created_at) VALUES (?, ?, ?, ?)",
            (number, path, json.dumps(sorted(plugins)), created_at),
        )

    def save_plan(self, plan_id: str, plugins: list[dict[str, str]], created_at: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO plans (plan_id, plugins, created_at) VALUES (?, ?, ?)",
            (plan_id, json.dumps(plugins), created_at),
        )

    def plan(self, plan_id: str) -> list[dict[str, str]] | None:
        row = self.db.execute("SELECT plugins FROM plans WHERE plan_id = ?", (plan_id,)).fetchone()
        return json.loads(row["plugins"]) if row else None

    def save_job(self, job: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO jobs (job_id, kind, state, stage, target, error, log, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job["job_id"],
                job["kind"],
                job["state"],
                job["stage"],
                json.dumps(job["target"]),
                json.dumps(job["error"]) if job["error"] else None,
                json.dumps(job["log"]),
                job["created_at"],
            ),
        )

    def job(self, job_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return self._job_row(row) if row else None

    def unfinished_jobs(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT * FROM jobs WHERE state IN ('pending', 'running') ORDER BY created_at"
        )
        return [self._job_row(row) for row in rows]

    @staticmethod
    def _job_row(row: sqlite3.Row) -> dict[str, Any]:
        return {
            "job_id": row["job_id"],
            "kind": row["kind"],
            "state": row["state"],
            "stage": row["stage"],
            "target": json.loads(row["target"]),
            "error": json.loads(row["error"]) if row["error"] else None,
            "log": json.loads(row["log"]),
            "created_at": row["created_at"],
        }
