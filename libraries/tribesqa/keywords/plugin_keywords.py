"""The supertest plugin API: health, schema, cases, events, state; its tables after a rollback.

Every call goes through the target's plugin transport (``ctx.plugins()``): loopback HTTP on the
simulator, ``curl`` over SSH on the node for the real strategy. Answers are parsed into the
contract models; a non-2xx answer fails naming the node, the call, the status and the body.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel
from robot.api import logger
from robot.api.deco import keyword

from tribesqa.contract import Case, Event, PluginHealth, PluginSchema, PluginState, parse_payload
from tribesqa.diagnostics import TribesFailure
from tribesqa.guard import destructive
from tribesqa.keywords.component import Component
from tribesqa.targets.base import PluginTransportError

M = TypeVar("M", bound=BaseModel)

PLUGIN_NAME = "supertest"
PLUGIN_TABLES = ("supertest_cases", "supertest_events")
_INTEGER_RE = re.compile(r"^[+-]?\d+$")
_MIGRATION_LINE_RE = re.compile(r"\b(up|down)\s+(\S*supertest\S*)")


def _shown(payload: Any, limit: int = 300) -> str:
    text = payload if isinstance(payload, str) else json.dumps(payload, sort_keys=True)
    text = text.strip() or "(empty body)"
    return text if len(text) <= limit else text[:limit] + "..."


def _required_text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TribesFailure(f"argument {name} must be a non-empty string, got {value!r}")
    return value


def _whole_number(value: Any, name: str) -> int:
    """``value`` as an int; floats, booleans and words fail naming the argument."""
    if isinstance(value, bool):
        raise TribesFailure(f"argument {name} must be a whole number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER_RE.match(value.strip()):
        return int(value.strip())
    raise TribesFailure(f"argument {name} must be a whole number, got {value!r}")


def _event_payload(value: Any) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise TribesFailure(
                f"argument payload must be a dictionary or a JSON object, got {value!r}"
            ) from None
    if not isinstance(value, dict) and hasattr(value, "items"):
        value = dict(value.items())
    if not isinstance(value, dict):
        raise TribesFailure(
            f"argument payload must be a dictionary or a JSON object, got {value!r}"
        )
    return value


def migration_history(log: list[Any]) -> dict[str, str]:
    """The last direction (``up``/``down``) of every supertest migration in a migration log."""
    last: dict[str, str] = {}
    for line in log:
        for direction, migration in _MIGRATION_LINE_RE.findall(str(line)):
            last[migration.strip(",'\"[]")] = direction
    return last


class PluginKeywords(Component):
    TAGS = ("plugin",)  # keyword tags in libdoc: this component's domain

    # -- plumbing ---------------------------------------------------------------------------------
    def _request(self, node: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        try:
            return self.ctx.plugins().request(str(node), method, path, body)
        except PluginTransportError as error:
            raise TribesFailure(str(error)) from None

    def _call(self, node: str, method: str, path: str, model: type[M], body: Any = None) -> M:
        status, payload = self._request(node, method, path, body)
        if not 200 <= status < 300:
            raise TribesFailure(
                f"node {node} / plugin {method} {path} answered HTTP {status}: {_shown(payload)}"
            )
        return parse_payload(model, payload, source=f"node {node} / plugin {path}")

    # -- presence -----------------------------------------------------------------------------------
    @keyword("Plugin API Should Be Healthy")
    def plugin_api_should_be_healthy(self, node: str) -> PluginHealth:
        """The supertest plugin API on ``node`` answers ``health`` with 200, status ``ok``.

        Returns the parsed health (``${health.version}``).

        Example: ``${health}=    Plugin API Should Be Healthy    hetzner-1``
        """
        health = self._call(node, "GET", "health", PluginHealth)
        if health.status != "ok" or health.plugin != PLUGIN_NAME:
            raise TribesFailure(
                f"node {node} / plugin health: status {health.status!r} plugin {health.plugin!r}, "
                f"expected status 'ok' plugin {PLUGIN_NAME!r}"
            )
        return health

    @keyword("Plugin API Should Be Absent")
    def plugin_api_should_be_absent(self, node: str) -> None:
        """The supertest plugin API on ``node`` answers 404 (the plugin is not installed).

        Any other answer (200, 500, 503...) fails naming it; an unreachable plugin API fails too.

        Example: ``Plugin API Should Be Absent    hetzner-1``
        """
        status, payload = self._request(node, "GET", "health")
        if status != 404:
            raise TribesFailure(
                f"node {node}: plugin API should be absent (404) but GET health answered "
                f"HTTP {status}: {_shown(payload)}"
            )

    @keyword
    def plugin_tables_should_exist(self, node: str) -> PluginSchema:
        """The plugin's ``schema`` on ``node`` lists ``supertest_cases`` and ``supertest_events``.

        Example: ``${schema}=    Plugin Tables Should Exist    hetzner-1``
        """
        schema = self._call(node, "GET", "schema", PluginSchema)
        missing = [table for table in PLUGIN_TABLES if table not in schema.tables]
        if missing:
            raise TribesFailure(
                f"node {node}: plugin table(s) {', '.join(missing)} missing; schema lists "
                f"{schema.tables} (migrations {schema.migrations})"
            )
        return schema

    @keyword
    def plugin_tables_should_not_exist(self, node: str) -> None:
        """The supertest tables are gone from the database of ``node`` (after a rollback).

        The plugin API 404s once the plugin is gone, so this reads the node's ``diagnostics``
        (management API): its ``migrations`` section must list no supertest table in
        ``tables``, no supertest migration in ``applied``, and the migration ``log`` must show
        every supertest migration that ever went up going down again. Fails listing every
        problem, and also when the node reports neither ``tables`` nor ``applied``.

        Example: ``Plugin Tables Should Not Exist    hetzner-1``
        """
        diagnostics = self.ctx.client(node).call_typed("diagnostics")
        migrations: dict[str, Any] = getattr(diagnostics, "migrations", {}) or {}
        tables, applied = migrations.get("tables"), migrations.get("applied")
        log = migrations.get("log") or []
        if tables is None and applied is None:
            raise TribesFailure(
                f"node {node}: cannot tell whether the plugin tables exist: diagnostics.migrations "
                f"has neither 'tables' nor 'applied' (keys: {sorted(migrations)})"
            )
        problems = []
        if tables is not None:
            left = [t for t in tables if str(t).startswith(f"{PLUGIN_NAME}_")]
            if left:
                problems.append(f"table(s) {', '.join(map(str, left))} still exist")
        if applied is not None:
            still = [m for m in applied if PLUGIN_NAME in str(m)]
            if still:
                problems.append(f"migration(s) {', '.join(map(str, still))} still applied")
        not_reverted = sorted(m for m, d in migration_history(log).items() if d == "up")
        if not_reverted:
            problems.append(
                f"the migration log shows no down migration for {', '.join(not_reverted)}"
            )
        if problems:
            tail = "; ".join(str(line) for line in log[-6:]) or "empty"
            raise TribesFailure(
                f"node {node}: plugin tables should not exist but "
                + "; ".join(problems)
                + f" (migration log tail: {tail})"
            )
        logger.info(
            f"node {node}: no supertest table or applied migration; migration log: "
            + ("; ".join(str(line) for line in log[-6:]) or "empty")
        )

    @keyword
    def plugin_should_be_serving_on(self, *nodes: str) -> None:
        """On every given node (every ready node if none): API healthy and both tables present.

        The nodes are checked concurrently; one failure names every node that is not serving
        and why (see `Plugin API Should Be Healthy`, `Plugin Tables Should Exist`).

        Example: ``Plugin Should Be Serving On    hetzner-1    scaleway-1``
        """
        self._check_every_node(
            nodes,
            (self.plugin_api_should_be_healthy, self.plugin_tables_should_exist),
            what="plugin serving check",
            held="healthy with its tables",
        )

    @keyword
    def plugin_should_be_gone_from(self, *nodes: str) -> None:
        """On every given node (every ready node if none): API absent (404) and tables dropped.

        The nodes are checked concurrently; one failure names every node where the plugin is
        still there and how (see `Plugin API Should Be Absent`, `Plugin Tables Should Not Exist`).

        Example: ``Plugin Should Be Gone From    hetzner-1    scaleway-1``
        """
        self._check_every_node(
            nodes,
            (self.plugin_api_should_be_absent, self.plugin_tables_should_not_exist),
            what="plugin removal check",
            held="absent, tables dropped",
        )

    def _check_every_node(
        self,
        nodes: tuple[str, ...],
        checks: tuple[Callable[[str], object], ...],
        *,
        what: str,
        held: str,
    ) -> None:
        """Run ``checks`` in order on each node, the nodes concurrently; fail once for all."""

        def check(node: str) -> None:
            for one in checks:
                one(node)

        names = self.nodes_or_active(nodes)
        self.on_each(names, check, what=what)
        logger.info(f"plugin {PLUGIN_NAME} {held} on {', '.join(names)}")

    # -- writes and reads ----------------------------------------------------------------------
    @keyword
    def new_run_id(self) -> str:
        """A unique run id (``run-<UTC stamp>-<hex>``) so suites and reruns never share data.

        Example: ``${run}=    New Run Id``
        """
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return f"run-{stamp}-{secrets.token_hex(4)}"

    @keyword
    @destructive("write a case into the plugin tables of {node}")
    def create_case(self, node: str, run_id: str, name: str) -> Case:
        """Create a case named ``name`` in run ``run_id`` on ``node``; returns it (``${case.id}``).

        Example: ``${case}=    Create Case    hetzner-1    ${run}    smoke case``
        """
        body = {"run_id": _required_text(run_id, "run_id"), "name": _required_text(name, "name")}
        return self._call(node, "POST", "cases", Case, body)

    @keyword
    @destructive("increment case {case_id} on {node}")
    def increment_case(self, node: str, case_id: str, by: int | str = 1) -> Case:
        """Increment the counter of case ``case_id`` on ``node`` by ``by`` (a whole number); returns the case.

        Example: ``${case}=    Increment Case    hetzner-1    ${case.id}    by=3``
        """
        amount = _whole_number(by, "by")
        path = f"cases/{quote(_required_text(case_id, 'case_id'), safe='')}/increment"
        return self._call(node, "POST", path, Case, {"by": amount})

    @keyword
    @destructive("write an event into the plugin tables of {node}")
    def create_event(
        self,
        node: str,
        run_id: str,
        case_id: str,
        kind: str,
        payload: dict[str, Any] | str | None = None,
    ) -> Event:
        """Record an event of ``kind`` for case ``case_id`` on ``node``; returns it (``${event.id}``).

        ``payload`` is a dictionary or a JSON object string (empty by default).

        Example: ``${event}=    Create Event    hetzner-1    ${run}    ${case.id}    seen    {"n": 1}``
        """
        body = {
            "run_id": _required_text(run_id, "run_id"),
            "case_id": _required_text(case_id, "case_id"),
            "kind": _required_text(kind, "kind"),
            "payload": _event_payload(payload),
        }
        return self._call(node, "POST", "events", Event, body)

    @keyword
    def get_plugin_state(self, node: str, run_id: str) -> PluginState:
        """The cases and events of run ``run_id`` as ``node`` holds them.

        Example: ``${state}=    Get Plugin State    hetzner-1    ${run}`` then ``${state.cases}``
        """
        path = f"state?run_id={quote(_required_text(run_id, 'run_id'), safe='')}"
        return self._call(node, "GET", path, PluginState)

    @keyword
    def plugin_state_should_hold(
        self,
        node: str,
        run_id: str,
        cases: int | str | None = None,
        events: int | str | None = None,
        counter: int | str | None = None,
    ) -> PluginState:
        """Run ``run_id`` on ``node`` holds ``cases`` cases, ``events`` events, and (when given)
        counters summing to ``counter``. Checks once, no waiting; fails naming every difference.

        Example: ``Plugin State Should Hold    hetzner-1    ${run}    cases=1    events=1    counter=2``
        """
        state = self.get_plugin_state(node, run_id)
        problems = []
        for label, expected, actual in (
            ("cases", cases, len(state.cases)),
            ("events", events, len(state.events)),
            ("counter", counter, sum(case.counter for case in state.cases)),
        ):
            if expected is not None and expected != "":
                want = _whole_number(expected, label)
                if actual != want:
                    problems.append(f"{label} {actual}, expected {want}")
        if problems:
            detail = ", ".join(f"{c.name!r}={c.counter}" for c in state.cases) or "no cases"
            raise TribesFailure(
                f"node {node} / run {run_id}: " + "; ".join(problems) + f" (cases: {detail})"
            )
        return state
