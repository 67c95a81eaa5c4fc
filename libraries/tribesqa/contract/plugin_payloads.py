"""The node-local supertest plugin API: health, schema, cases, events, state."""

from __future__ import annotations

from typing import Any

from tribesqa.contract.wire_types import ContractModel, Timestamp

# --------------------------------------------------------------------------------------------
# Local plugin API (supertest)
# --------------------------------------------------------------------------------------------


class PluginHealth(ContractModel):
    """``GET /plugins-api/supertest/health``."""

    status: str
    plugin: str
    version: str


class PluginSchema(ContractModel):
    """``GET /plugins-api/supertest/schema``."""

    tables: list[str]
    migrations: list[str]


class Case(ContractModel):
    """A supertest case; ``counter`` merges across nodes (sum of increments)."""

    id: str
    run_id: str
    name: str
    counter: int
    updated_at: Timestamp
    origin_node: str


class Event(ContractModel):
    """A supertest event (insert-once)."""

    id: str
    run_id: str
    case_id: str
    kind: str
    payload: dict[str, Any]
    created_at: Timestamp
    origin_node: str


class PluginState(ContractModel):
    """``GET /plugins-api/supertest/state?run_id=...``."""

    cases: list[Case]
    events: list[Event]
