"""Judges of a decommissioned node: its own view of itself, and the writes it must no longer
receive. The rules are ``conformance.py``'s; these wrap them as judges of the one wait (a
``Judgement`` with the per-node table and the mismatches), like every other wait's.

Pure: no Robot, no network. ``keywords/decommissioned_keywords.py`` wires them to probes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tribesqa.checks.conformance import (
    OWN_ROW,
    decommissioned_view_findings,
    describe_received,
    events_received_since,
)
from tribesqa.checks.judgement import Judgement, _agree_phrase, _Judge, _short_error
from tribesqa.contract import ClusterNodesList, ClusterStatus, SyncStatus
from tribesqa.reporting.diffing import Matrix, Mismatch

_SELF_ROWS = ["cluster_status", OWN_ROW, "sync.status"]
_SELF_FIELDS = ["self_status", "status", "mode", "servers"]
_VECTOR_FIELDS = ["before", "now"]


@dataclass(frozen=True)
class SelfView:
    """What one node says about itself: three contract-checked answers of one probe."""

    status: ClusterStatus
    rows: ClusterNodesList
    sync: SyncStatus


def describe_self_view(view: Any) -> str:
    """Timeline cell: ``self_status=active sync=live servers=1``."""
    if not isinstance(view, SelfView):
        return _short_error(str(view), 80)
    return (
        f"self_status={view.status.self_status.value} sync={view.sync.mode.value} "
        f"servers={len(view.sync.servers)}"
    )


def _unread(node: str, errors: Mapping[str, str]) -> str:
    return f"node {node}: could not read its view ({_short_error(errors.get(node))})"


def _self_cells(node: str, node_id: str, view: SelfView) -> dict[tuple[str, str], Any]:
    own = view.rows.by_id().get(node_id)
    servers = ", ".join(s.node_id for s in view.sync.servers) or "(none)"
    return {
        ("cluster_status", node): {"self_status": view.status.self_status.value},
        (OWN_ROW, node): None if own is None else {"status": own.status.value},
        ("sync.status", node): {"mode": view.sync.mode.value, "servers": servers},
    }


class SelfViewJudge(_Judge):
    """Each node judged (decommissioned) says so itself: ``self_status`` and its own row
    ``decommissioned``, ``sync.status`` stopped with no servers. ``node_ids``: name -> id."""

    def __init__(self, node_ids: Mapping[str, str]) -> None:
        self.node_ids = dict(node_ids)

    def judge(self, views: Mapping[str, Any], errors: Mapping[str, str]) -> Judgement:
        problems: list[str] = []
        mismatches: list[Mismatch] = []
        cells: dict[tuple[str, str], Any] = {}
        lagging: list[str] = []
        for node, view in views.items():
            if view is None:
                problems.append(_unread(node, errors))
                lagging.append(node)
                continue
            node_id = self.node_ids.get(node, node)
            cells.update(_self_cells(node, node_id, view))
            found = decommissioned_view_findings(node, node_id, view.status, view.rows, view.sync)
            if found:
                lagging.append(node)
                problems.append(
                    f"node {node} is decommissioned but " + "; ".join(t for t, _ in found)
                )
                mismatches += [m for _, m in found]
        unreachable = [n for n, v in views.items() if v is None]
        done = not lagging
        return Judgement(
            done=done,
            problem="" if done else "; ".join(problems),
            agreement=""
            if len(views) == 1
            else _agree_phrase(len(views) - len(lagging), len(views), "report it"),
            lagging=lagging,
            matrix=Matrix(list(_SELF_ROWS), list(views), cells, list(_SELF_FIELDS), unreachable),
            mismatches=mismatches,
        )


class NoNewWritesJudge(_Judge):
    """For ``consistently``: a decommissioned node's version vector gains nothing from another
    origin than itself and Legion since ``before`` (per node judged: its vector then).

    A read error also breaks the guarantee (nothing proves the node received nothing)."""

    def __init__(self, node_ids: Mapping[str, str], before: Mapping[str, Mapping[str, int]]):
        self.node_ids = dict(node_ids)
        self.before = {node: dict(vector) for node, vector in before.items()}

    def judge(self, views: Mapping[str, Any], errors: Mapping[str, str]) -> Judgement:
        problems: list[str] = []
        mismatches: list[Mismatch] = []
        cells: dict[tuple[str, str], Any] = {}
        origins: set[str] = set()
        lagging: list[str] = []
        for node, now in views.items():
            if now is None:
                problems.append(_unread(node, errors))
                lagging.append(node)
                continue
            was = self.before.get(node, {})
            for origin in {*was, *now}:
                origins.add(origin)
                cells[(origin, node)] = {"before": was.get(origin, 0), "now": now.get(origin, 0)}
            received = events_received_since(self.node_ids.get(node, node), was, now)
            if received:
                lagging.append(node)
                problems.append(describe_received(node, received))
                mismatches += [
                    Mismatch(node, origin, "version_vector", old, new)
                    for origin, (old, new) in sorted(received.items())
                ]
        unreachable = [n for n, v in views.items() if v is None]
        done = not lagging
        return Judgement(
            done=done,
            problem="" if done else "; ".join(problems),
            agreement=""
            if len(views) == 1
            else _agree_phrase(len(views) - len(lagging), len(views), "received nothing"),
            lagging=lagging,
            matrix=Matrix(sorted(origins), list(views), cells, list(_VECTOR_FIELDS), unreachable),
            mismatches=mismatches,
        )
