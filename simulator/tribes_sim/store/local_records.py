"""A node's own, unreplicated records: plugin schema migrations, generations, plans and jobs.

Mixed into ``NodeStore``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from tribes_sim.store.schema import (
    PLUGIN_SCHEMA_UP,
    PLUGIN_TABLES,
    SUPERTEST_MIGRATIONS,
)


class LocalRecordsMixin:
    """NodeStore's part: migrations, generations, plans and jobs (uses the attributes NodeStore sets up)."""

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

    def generation_jobs(self) -> list[dict[str, Any]]:
        """Rollout and rollback jobs, oldest first."""
        rows = self.db.execute(
            "SELECT * FROM jobs WHERE kind IN ('rollout', 'rollback') ORDER BY created_at"
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
