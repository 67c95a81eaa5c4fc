"""Cluster health and tribe judges: ``cluster_status`` healthy, ``tribe.status`` agreeing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tribesqa.checks.judgement import Judgement, _agree_phrase, _Judge, _listing, _short_error
from tribesqa.reporting.diffing import (
    Matrix,
    Mismatch,
)

_STATUS_FIELDS = (
    "status",
    "self_status",
    "active",
    "syncing",
    "decommissioned",
    "membership_digest",
    "control_plane_version",
)


def _single_row_matrix(
    row: str, views: Mapping[str, Mapping[str, Any] | None], fields: Sequence[str]
) -> Matrix:
    nodes = list(views)
    cells: dict[tuple[str, str], dict[str, Any] | None] = {}
    for node, view in views.items():
        if view is not None:
            cells[(row, node)] = {name: view.get(name) for name in fields}
    unreachable = [n for n, v in views.items() if v is None]
    return Matrix([row], nodes, cells, list(fields), unreachable)


class ClusterHealthJudge(_Judge):
    """``cluster_status.status == healthy`` on every node."""

    def judge(self, views: Mapping[str, Any], errors: Mapping[str, str]) -> Judgement:
        shown = {
            n: None
            if v is None
            else {**v, "membership_digest": str(v.get("membership_digest"))[:12]}
            for n, v in views.items()
        }
        matrix = _single_row_matrix("cluster_status", shown, _STATUS_FIELDS)
        bad: list[str] = []
        mismatches: list[Mismatch] = []
        for node, view in views.items():
            if view is None:
                bad.append(f"{node} unreachable ({_short_error(errors.get(node))})")
            elif view.get("status") != "healthy":
                bad.append(f"{node} ({view.get('status')})")
                mismatches.append(
                    Mismatch(node, "cluster_status", "status", "healthy", view.get("status"))
                )
        lagging = [n for n, v in views.items() if v is None or v.get("status") != "healthy"]
        done = not lagging
        return Judgement(
            done=done,
            problem="" if done else ", ".join(bad),
            agreement=_agree_phrase(len(views) - len(lagging), len(views), "healthy"),
            lagging=lagging,
            matrix=matrix,
            mismatches=mismatches,
        )


TRIBE_UNKNOWN = {"tribe": "tribe-unknown"}
"""Probe value of a node that answered 409 tribe-unknown: lagging, not broken."""

_TRIBE_FIELDS = ("tribe_id", "name", "version", "digest", "members")


class TribeJudge(_Judge):
    """Every node answers ``tribe.status`` with the same digest and version."""

    def judge(self, views: Mapping[str, Any], errors: Mapping[str, str]) -> Judgement:
        shown: dict[str, dict[str, Any] | None] = {}
        for node, view in views.items():
            if view is None:
                shown[node] = None
            elif view == TRIBE_UNKNOWN:
                shown[node] = {"version": "tribe-unknown"}
            else:
                shown[node] = {
                    **view,
                    "digest": str(view.get("digest"))[:16],
                    "members": len(view.get("members") or []),
                }
        matrix = _single_row_matrix("tribe", shown, _TRIBE_FIELDS)
        problems: list[str] = []
        groups: dict[tuple[str, str], list[str]] = {}
        unknown: list[str] = []
        for node, view in views.items():
            if view is None:
                problems.append(f"{node} unreachable ({_short_error(errors.get(node))})")
            elif view == TRIBE_UNKNOWN:
                unknown.append(node)
            else:
                key = (str(view.get("version")), str(view.get("digest")))
                groups.setdefault(key, []).append(node)
        if unknown:
            problems.append(f"{_listing(unknown)} not replayed the tribe yet (tribe-unknown)")
        majority = max(groups.values(), key=len) if groups else []
        for (version, digest), nodes in groups.items():
            if nodes is not majority:
                problems.append(f"{_listing(nodes)} at version {version} digest {digest[:12]}")
        if len(groups) > 1:
            (version, digest) = next(k for k, v in groups.items() if v is majority)
            problems.append(f"majority at version {version} digest {digest[:12]}")
        lagging = [n for n in views if n not in majority]
        done = not lagging
        return Judgement(
            done=done,
            problem="" if done else "; ".join(problems),
            agreement=_agree_phrase(len(majority), len(views)),
            lagging=lagging,
            matrix=matrix,
        )


_COUNTED = ("active", "syncing", "decommissioned")


class StatusAgreesJudge(_Judge):
    """Each node's ``cluster_status`` agrees with its own ``cluster_nodes.list``, digests across nodes.

    A view is ``{"status": cluster_status, "rows": cluster_nodes rows}``. Per node: the
    ``active``/``syncing``/``decommissioned`` counts equal the rows of that status it lists;
    across nodes: one ``membership_digest``.
    """

    def judge(self, views: Mapping[str, Any], errors: Mapping[str, str]) -> Judgement:
        problems: list[str] = []
        mismatches: list[Mismatch] = []
        lagging: list[str] = []
        shown: dict[str, dict[str, Any] | None] = {}
        digests: dict[str, list[str]] = {}
        for node, view in views.items():
            if view is None:
                problems.append(f"{node} unreachable ({_short_error(errors.get(node))})")
                lagging.append(node)
                shown[node] = None
                continue
            status, rows = view["status"], view["rows"]
            shown[node] = {**status, "membership_digest": str(status.get("membership_digest"))[:12]}
            digests.setdefault(str(status.get("membership_digest")), []).append(node)
            wrong = []
            for name in _COUNTED:
                listed = sum(1 for row in rows if row.get("status") == name)
                if status.get(name) != listed:
                    wrong.append(f"{name} {status.get(name)} but {listed} {name} rows listed")
                    mismatches.append(
                        Mismatch(node, "cluster_status", name, listed, status.get(name))
                    )
            if wrong:
                lagging.append(node)
                problems.append(f"{node} cluster_status says " + ", ".join(wrong))
        if len(digests) > 1:
            majority = max(digests.values(), key=len)
            odd = [n for nodes in digests.values() if nodes is not majority for n in nodes]
            problems.append(f"membership_digest of {_listing(odd)} differs from the majority")
            lagging += [n for n in odd if n not in lagging]
        done = not lagging
        return Judgement(
            done=done,
            problem="" if done else "; ".join(problems),
            agreement=_agree_phrase(len(views) - len(lagging), len(views)),
            lagging=lagging,
            matrix=_single_row_matrix("cluster_status", shown, _STATUS_FIELDS),
            mismatches=mismatches,
        )
