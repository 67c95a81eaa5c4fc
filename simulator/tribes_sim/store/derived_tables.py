"""Applying log events to the derived tables (members, tribe, plugin rows), and rebuilding them.

Mixed into ``NodeStore``.
"""

from __future__ import annotations

import json
from typing import Any

from tribes_sim.store.schema import (
    MEMBER_FIELDS,
    PLUGIN_TABLES,
)
from tribes_sim.store.sync_event import SyncEvent


class DerivedTablesMixin:
    """NodeStore's part: applying events to the derived tables (uses the attributes NodeStore sets up)."""

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
            row.get("status") == "decommissioned"
            and (
                not self.archive_decommissioned
                # decommissioned-forgets-own-row fault: only the node's own row is dropped.
                or (not self.keep_own_archived_row and row["node_id"] == self.node_id)
            )
        ):
            self.db.execute("DELETE FROM cluster_nodes WHERE node_id = ?", (row["node_id"],))
            return
        if self.project_member is not None:
            # scope-narrowed / peer-transport-https faults: the node's own projection of the row.
            row = self.project_member(row)
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
