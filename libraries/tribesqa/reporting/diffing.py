"""Per-node views side by side: rows x nodes matrices, majority values, mismatches, digests.

Works on plain mappings (a membership row is a ``Mapping[str, Any]`` with the ClusterNodeRow
keys); pydantic objects are accepted too and turned into JSON-shaped dicts first. This module
does not import the project's models on purpose: the convergence engine must stay usable on
whatever a target returns, including a half-broken node's answer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MEMBERSHIP_FIELDS",
    "PRESENCE",
    "Matrix",
    "Mismatch",
    "digest",
    "expected_mismatches",
    "format_value",
    "membership_matrix",
    "plugin_state_matrix",
    "summarize",
    "to_plain",
]

MEMBERSHIP_FIELDS: tuple[str, ...] = (
    "status",
    "transport_address",
    "scope",
    "activated_at",
    "decommissioned_at",
)

PRESENCE = "(row)"
"""Pseudo field naming a row's presence: ``(row, node, PRESENCE)`` differs when a node lacks
a row most nodes have, or has a row most nodes lack."""

_VIEW = "(view)"
"""Pseudo field of a ``Mismatch`` about a whole view (the observer was unreachable)."""


def to_plain(value: Any) -> Any:
    """JSON-shaped copy of ``value``: pydantic models dumped, mappings and sequences copied."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return to_plain(dump(mode="json"))
    if isinstance(value, Mapping):
        return {str(key): to_plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(item) for item in value]
    return value


def _canonical(value: Any) -> str:
    """Stable text of a value, used to compare and count values that may be unhashable."""
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def format_value(value: Any) -> str:
    """Short human text of a cell value (``null`` for None, strings unquoted)."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    return _canonical(value)


@dataclass(slots=True)
class Matrix:
    """Rows x nodes: what each node says about each row.

    ``cells[(row, node)]`` is the row's fields as that node reports them, or None when the node
    lacks the row. Nodes in ``unreachable`` have no cells at all: their column is unknown, not
    "missing everything".
    """

    row_keys: list[str]
    nodes: list[str]
    cells: dict[tuple[str, str], dict[str, Any] | None]
    fields: list[str]
    unreachable: list[str] = field(default_factory=list)

    # -- reading -------------------------------------------------------------------------

    @property
    def reachable(self) -> list[str]:
        """Nodes whose view is known, in order."""
        return [node for node in self.nodes if node not in self.unreachable]

    def cell(self, row: str, node: str) -> dict[str, Any] | None:
        """The node's fields for ``row``; None when missing or the node was unreachable."""
        return self.cells.get((row, node))

    def is_present(self, row: str, node: str) -> bool:
        """True when a reachable node reports ``row``."""
        return self.cells.get((row, node)) is not None

    def row_fields(self, row: str) -> list[str]:
        """Fields any node reports for ``row``, in ``fields`` order (rows may differ in kind)."""
        seen: set[str] = set()
        for node in self.reachable:
            cell = self.cell(row, node)
            if cell is not None:
                seen.update(cell)
        return [name for name in self.fields if name in seen]

    # -- the reference: what most nodes say ----------------------------------------------

    def majority_present(self, row: str) -> bool:
        """Whether most reachable nodes have ``row`` (ties: the first reachable node)."""
        nodes = self.reachable
        if not nodes:
            return False
        present = sum(1 for node in nodes if self.is_present(row, node))
        absent = len(nodes) - present
        if present != absent:
            return present > absent
        return self.is_present(row, nodes[0])

    def majority(self, row: str, field_name: str) -> Any:
        """What most nodes holding ``row`` say for ``field_name`` (ties: first node in order).

        Returns None when no node has the row.
        """
        counts: dict[str, int] = {}
        values: dict[str, Any] = {}
        for node in self.reachable:
            cell = self.cell(row, node)
            if cell is None or field_name not in cell:
                continue
            key = _canonical(cell[field_name])
            counts[key] = counts.get(key, 0) + 1
            values.setdefault(key, cell[field_name])
        if not counts:
            return None
        # max() returns the first of equal counts; dicts keep first-seen (= node) order.
        return values[max(counts, key=lambda key: counts[key])]

    def reference(self, row: str) -> dict[str, Any] | None:
        """The majority cell of ``row`` (None when most nodes lack the row)."""
        if not self.majority_present(row):
            return None
        return {name: self.majority(row, name) for name in self.row_fields(row)}

    # -- differences ---------------------------------------------------------------------

    def differing(self) -> set[tuple[str, str, str]]:
        """``(row, node, field)`` of every cell off the majority.

        A cell differs when its presence differs from what most nodes show (``PRESENCE``), or
        when the node has the row and a field's value differs from the majority value.
        """
        found: set[tuple[str, str, str]] = set()
        for row in self.row_keys:
            wanted = self.majority_present(row)
            names = self.row_fields(row)
            majorities = {name: _canonical(self.majority(row, name)) for name in names}
            for node in self.reachable:
                cell = self.cell(row, node)
                if (cell is not None) != wanted:
                    found.add((row, node, PRESENCE))
                if cell is None:
                    continue
                for name in names:
                    if _canonical(cell.get(name)) != majorities[name]:
                        found.add((row, node, name))
        return found

    def differing_rows(self) -> list[str]:
        """Rows with at least one differing cell, in row order."""
        rows = {row for row, _, _ in self.differing()}
        return [row for row in self.row_keys if row in rows]

    def differing_nodes(self) -> list[str]:
        """Reachable nodes with at least one differing cell, in node order."""
        nodes = {node for _, node, _ in self.differing()}
        return [node for node in self.nodes if node in nodes]

    def agreeing_nodes(self) -> list[str]:
        """Reachable nodes whose whole column equals the majority."""
        off = set(self.differing_nodes())
        return [node for node in self.reachable if node not in off]

    def differing_fields(
        self, row: str, node: str, differing: set[tuple[str, str, str]] | None = None
    ) -> list[str]:
        """Fields (or ``PRESENCE``) in which ``node`` differs on ``row``.

        Pass ``differing()`` computed once when asking about many cells (it is not cached,
        because cells are a plain dict callers may edit).
        """
        found = self.differing() if differing is None else differing
        marked = {name for r, n, name in found if r == row and n == node}
        order = [PRESENCE, *self.fields]
        return [name for name in order if name in marked]

    @property
    def converged(self) -> bool:
        """Every node reachable and no differing cell."""
        return not self.unreachable and not self.differing()


# --------------------------------------------------------------------------------------------
# Building matrices
# --------------------------------------------------------------------------------------------


def _keyed_rows(
    rows: Iterable[Any], key_of: Callable[[Mapping[str, Any]], str]
) -> list[tuple[str, dict[str, Any]]]:
    """(key, row) pairs; a key seen twice in one view gets ``#2``, ``#3`` so it shows as extra."""
    counts: dict[str, int] = {}
    keyed: list[tuple[str, dict[str, Any]]] = []
    for raw in rows:
        row = to_plain(raw)
        if not isinstance(row, Mapping):
            raise TypeError(f"expected a mapping row, got {type(raw).__name__}")
        key = key_of(row)
        counts[key] = counts.get(key, 0) + 1
        keyed.append((key if counts[key] == 1 else f"{key}#{counts[key]}", dict(row)))
    return keyed


def _build_matrix(
    keyed_views: Mapping[str, list[tuple[str, dict[str, Any]]] | None],
    fields_by_row: Callable[[str], Sequence[str]],
    all_fields: Sequence[str],
) -> Matrix:
    nodes = list(keyed_views)
    unreachable = [node for node, view in keyed_views.items() if view is None]
    row_keys: list[str] = []
    seen: set[str] = set()
    for view in keyed_views.values():
        for key, _ in view or ():
            if key not in seen:
                seen.add(key)
                row_keys.append(key)
    cells: dict[tuple[str, str], dict[str, Any] | None] = {}
    for node, view in keyed_views.items():
        if view is None:
            continue
        by_key = dict(view)
        for key in row_keys:
            row = by_key.get(key)
            cells[(key, node)] = (
                None if row is None else {name: row.get(name) for name in fields_by_row(key)}
            )
    return Matrix(row_keys, nodes, cells, list(all_fields), unreachable)


def membership_matrix(
    views: Mapping[str, Sequence[Any] | None],
    *,
    fields: Sequence[str] = MEMBERSHIP_FIELDS,
) -> Matrix:
    """Membership as each node sees it: rows keyed by ``node_id``, one column per observer.

    ``views`` maps observer node -> its ``cluster_nodes.list`` rows, or None when the observer
    was unreachable (its column is then marked unreachable rather than "missing").
    """
    keyed = {
        node: None if rows is None else _keyed_rows(rows, lambda row: str(row.get("node_id")))
        for node, rows in views.items()
    }
    return _build_matrix(keyed, lambda _key: fields, fields)


_CASE_FIELDS = ("name", "counter")
_EVENT_FIELDS = ("kind", "case_id")


def plugin_state_matrix(views: Mapping[str, Mapping[str, Any] | None]) -> Matrix:
    """Supertest plugin state per node: rows ``case:<id>`` (name, counter) and ``event:<id>``
    (kind, case_id); None marks an unreachable node."""
    keyed: dict[str, list[tuple[str, dict[str, Any]]] | None] = {}
    for node, raw in views.items():
        if raw is None:
            keyed[node] = None
            continue
        state = to_plain(raw)
        keyed[node] = [
            *_keyed_rows(state.get("cases") or (), lambda row: f"case:{row.get('id')}"),
            *_keyed_rows(state.get("events") or (), lambda row: f"event:{row.get('id')}"),
        ]
    return _build_matrix(
        keyed,
        lambda key: _CASE_FIELDS if key.startswith("case:") else _EVENT_FIELDS,
        (*_CASE_FIELDS, *_EVENT_FIELDS),
    )


# --------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------

_MAX_SUMMARY_NODES = 3


def _node_difference(matrix: Matrix, node: str, differing: set[tuple[str, str, str]]) -> str:
    """First difference of ``node`` in row order, plus how many more it has."""
    items = sorted(
        ((row, name) for row, n, name in differing if n == node),
        key=lambda item: (
            matrix.row_keys.index(item[0]),
            -1 if item[1] == PRESENCE else matrix.fields.index(item[1]),
        ),
    )
    row, name = items[0]
    if name == PRESENCE:
        text = (
            f"{node} has extra row {row}"
            if matrix.is_present(row, node)
            else f"{node} lacks row {row}"
        )
    else:
        actual = format_value((matrix.cell(row, node) or {}).get(name))
        wanted = format_value(matrix.majority(row, name))
        text = f"{node} differs on {row}.{name} ({actual} vs {wanted})"
    if len(items) > 1:
        text += f" (+{len(items) - 1} more)"
    return text


def summarize(matrix: Matrix) -> str:
    """One line: ``"2 of 3 nodes agree; hetzner-1 differs on ovh-1.status (syncing vs active)"``.

    A node agrees when it is reachable and its whole column equals the majority.
    """
    differing = matrix.differing()
    off_nodes = [node for node in matrix.nodes if any(n == node for _, n, _ in differing)]
    agreeing = [n for n in matrix.reachable if n not in off_nodes]
    parts = [f"{len(agreeing)} of {len(matrix.nodes)} nodes agree"]
    details = [_node_difference(matrix, node, differing) for node in off_nodes]
    details += [f"{node} unreachable" for node in matrix.unreachable]
    parts += details[:_MAX_SUMMARY_NODES]
    if len(details) > _MAX_SUMMARY_NODES:
        parts.append(f"and {len(details) - _MAX_SUMMARY_NODES} more")
    return "; ".join(parts)


# --------------------------------------------------------------------------------------------
# Expected tables
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One observer's view of one row differs from the expected table."""

    node: str
    """The observer (whose ``cluster_nodes.list`` this is)."""
    row: str
    field: str
    """A row field, ``PRESENCE`` for a missing/unexpected row, ``(view)`` for no answer."""
    expected: Any
    actual: Any

    def __str__(self) -> str:
        """``"hetzner-1 sees ovh-1.status = syncing (expected active)"``."""
        if self.field == PRESENCE:
            return f"{self.node} sees row {self.row} {self.actual} (expected {self.expected})"
        if self.field == _VIEW:
            return f"{self.node} {self.actual} (expected {self.expected})"
        return (
            f"{self.node} sees {self.row}.{self.field} = {format_value(self.actual)} "
            f"(expected {format_value(self.expected)})"
        )


def expected_mismatches(
    views: Mapping[str, Sequence[Any] | None],
    expected: Mapping[str, Mapping[str, Any]],
) -> list[Mismatch]:
    """Compare every observer's membership rows with ``expected`` (node_id -> field -> value).

    Reports, per observer: expected rows it lacks, rows it has that are not expected, and each
    expected field (e.g. status, transport_address, scope) whose value differs. An unreachable
    observer (None view) yields one ``(view)`` mismatch.
    """
    mismatches: list[Mismatch] = []
    for observer, rows in views.items():
        if rows is None:
            mismatches.append(Mismatch(observer, "*", _VIEW, "membership view", "unreachable"))
            continue
        by_id: dict[str, dict[str, Any]] = {}
        for key, row in _keyed_rows(rows, lambda row: str(row.get("node_id"))):
            by_id[key] = row
        for node_id, wanted in expected.items():
            row = by_id.get(node_id)
            if row is None:
                mismatches.append(Mismatch(observer, node_id, PRESENCE, "present", "missing"))
                continue
            for name, value in wanted.items():
                actual = row.get(name)
                if _canonical(to_plain(value)) != _canonical(actual):
                    mismatches.append(Mismatch(observer, node_id, name, value, actual))
        for node_id, row in by_id.items():
            if node_id not in expected:
                status = row.get("status")
                actual = "present" if status is None else f"present ({status})"
                mismatches.append(Mismatch(observer, node_id, PRESENCE, "absent", actual))
    return mismatches


# --------------------------------------------------------------------------------------------
# Digests
# --------------------------------------------------------------------------------------------


def _canonical_form(value: Any, *, ordered: bool) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _canonical_form(v, ordered=ordered) for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [_canonical_form(item, ordered=ordered) for item in value]
        return items if ordered else sorted(items, key=_canonical)
    return value


def digest(view: Any, *, ordered: bool = False) -> str:
    """Stable sha256 hex of a canonical JSON of ``view``.

    Keys are sorted; unless ``ordered``, lists are sorted too, because nodes may return the same
    rows in a different order and that is not a divergence.
    """
    canonical = _canonical_form(to_plain(view), ordered=ordered)
    text = json.dumps(
        canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
