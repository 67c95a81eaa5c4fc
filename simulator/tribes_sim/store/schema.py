"""The node database's tables (SQL), the plugin's migrations and the log's special origin."""

from __future__ import annotations

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
