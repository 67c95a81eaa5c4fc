"""A node's durable state (one SQLite database) and the replicated log's events."""

from tribes_sim.store.node_store import NodeStore
from tribes_sim.store.schema import (
    LEGION_ORIGIN,
    MEMBER_FIELDS,
    PLUGIN_TABLES,
    SUPERTEST_MIGRATIONS,
)
from tribes_sim.store.sync_event import SyncEvent

__all__ = [
    "LEGION_ORIGIN",
    "MEMBER_FIELDS",
    "PLUGIN_TABLES",
    "SUPERTEST_MIGRATIONS",
    "NodeStore",
    "SyncEvent",
]
