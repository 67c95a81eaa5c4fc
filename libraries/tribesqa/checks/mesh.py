"""The derived sync mesh: each active node syncs from exactly the other active members.

A view is one node's ``{"rows": cluster_nodes rows, "servers": sync.status servers}``. The node's
derived sync servers must be the transport addresses of the *other* ``active`` rows of its own
membership view (no decommissioned or syncing peer, none missing), each connected and not
failing. A partitioned node is the opposite: cut from the mesh, no connected link with anyone
(``CutFromMeshJudge``). Pure: no Robot, no network.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tribesqa.checks.judgement import Judgement, _agree_phrase, _Judge, _listing, _short_error
from tribesqa.reporting.diffing import Matrix, Mismatch

_FIELDS = ["expected", "actual"]


def expected_servers(node_id: str, rows: list[Mapping[str, Any]]) -> dict[str, str]:
    """node id -> transport address of every other active row in ``rows``."""
    return {
        str(row.get("node_id")): str(row.get("transport_address") or "").rstrip("/")
        for row in rows
        if row.get("status") == "active" and str(row.get("node_id")) != node_id
    }


def server_problems(node_id: str, view: Mapping[str, Any]) -> list[tuple[str, Mismatch]]:
    """(problem, mismatch) of one node's derived servers against its own membership view."""
    wanted = expected_servers(node_id, list(view.get("rows") or []))
    servers = {str(s.get("url") or "").rstrip("/"): s for s in view.get("servers") or []}
    found: list[tuple[str, Mismatch]] = []
    for peer, url in sorted(wanted.items()):
        server = servers.get(url)
        if server is None:
            found.append(
                (
                    f"does not sync from active peer {peer} ({url})",
                    Mismatch(node_id, peer, "sync server", url, "absent"),
                )
            )
        elif not server.get("connected") or server.get("failing_reason"):
            reason = server.get("failing_reason") or "not connected"
            found.append(
                (
                    f"sync server {peer} ({url}) not connected: {reason}",
                    Mismatch(node_id, peer, "connected", True, reason),
                )
            )
    extra = sorted(set(servers) - set(wanted.values()))
    for url in extra:
        found.append(
            (
                f"syncs from {url}, which is no other active member",
                Mismatch(node_id, url, "sync server", "absent", url),
            )
        )
    return found


class DerivedServersJudge(_Judge):
    """Every node's ``sync.status`` servers equal the other active rows of its own view, connected.

    ``node_ids`` maps the node names probed to their membership node ids.
    """

    def __init__(self, node_ids: Mapping[str, str]) -> None:
        self.node_ids = dict(node_ids)

    def judge(self, views: Mapping[str, Any], errors: Mapping[str, str]) -> Judgement:
        problems: list[str] = []
        mismatches: list[Mismatch] = []
        cells: dict[tuple[str, str], dict[str, Any] | None] = {}
        lagging: list[str] = []
        for node, view in views.items():
            if view is None:
                problems.append(f"{node} unreachable ({_short_error(errors.get(node))})")
                lagging.append(node)
                continue
            node_id = self.node_ids.get(node, node)
            wanted = expected_servers(node_id, list(view.get("rows") or []))
            actual = sorted(str(s.get("url") or "") for s in view.get("servers") or [])
            cells[("sync servers", node)] = {
                "expected": ", ".join(sorted(wanted.values())) or "(none)",
                "actual": ", ".join(actual) or "(none)",
            }
            found = server_problems(node_id, view)
            if found:
                lagging.append(node)
                problems += [f"{node} {text}" for text, _ in found]
                mismatches += [m for _, m in found]
        unreachable = [n for n, v in views.items() if v is None]
        matrix = Matrix(["sync servers"], list(views), cells, _FIELDS, unreachable)
        done = not lagging
        return Judgement(
            done=done,
            problem="" if done else "; ".join(problems),
            agreement=_agree_phrase(len(views) - len(lagging), len(views), "sync as derived")
            + ("" if done else f" (off: {_listing(lagging)})"),
            lagging=lagging,
            matrix=matrix,
            mismatches=mismatches,
        )


def _connected(server: Mapping[str, Any]) -> bool:
    return bool(server.get("connected")) and not server.get("failing_reason")


class CutFromMeshJudge(_Judge):
    """A partition took effect: ``node`` reports none of its sync servers connected, and no
    other observer reports ``node`` (``node_id``) as a connected sync server.

    A view is one observer's ``{"servers": sync.status servers}``; an unreachable observer is
    not yet proof either way."""

    def __init__(self, node: str, node_id: str) -> None:
        self.node = node
        self.node_id = node_id
        self.row = f"link with {node}"

    def still_linked(self, observer: str, view: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """The servers of ``observer`` that still tie it to ``node`` (connected, not failing)."""
        servers = [s for s in view.get("servers") or [] if _connected(s)]
        if observer == self.node:
            return servers
        return [s for s in servers if str(s.get("node_id")) == self.node_id]

    def _problem(self, observer: str, linked: list[Mapping[str, Any]]) -> str:
        listed = ", ".join(f"{s.get('node_id')} ({s.get('url')})" for s in linked)
        if observer == self.node:
            return f"{observer} still reports its sync server(s) {listed} connected"
        return f"{observer} still reports {self.node} as a connected sync server: {listed}"

    def judge(self, views: Mapping[str, Any], errors: Mapping[str, str]) -> Judgement:
        problems: list[str] = []
        mismatches: list[Mismatch] = []
        cells: dict[tuple[str, str], dict[str, Any] | None] = {}
        lagging: list[str] = []
        for observer, view in views.items():
            if view is None:
                problems.append(f"{observer} unreachable ({_short_error(errors.get(observer))})")
                lagging.append(observer)
                continue
            linked = self.still_linked(observer, view)
            peers = [str(s.get("node_id")) for s in linked]
            cells[(self.row, observer)] = {
                "expected": "cut",
                "actual": "connected: " + ", ".join(peers) if linked else "cut",
            }
            if linked:
                lagging.append(observer)
                problems.append(self._problem(observer, linked))
                mismatches += [Mismatch(observer, peer, "connected", False, True) for peer in peers]
        unreachable = [n for n, v in views.items() if v is None]
        done = not lagging
        cut = len(views) - len(lagging)
        return Judgement(
            done=done,
            problem="" if done else "; ".join(problems),
            agreement=f"{cut} of {len(views)} nodes see {self.node} cut off",
            lagging=lagging,
            matrix=Matrix([self.row], list(views), cells, _FIELDS, unreachable),
            mismatches=mismatches,
        )


def describe_servers(view: Any) -> str:
    """Timeline cell: ``3 servers, 1 connected``."""
    if not isinstance(view, Mapping):
        return str(view)[:80]
    servers = view.get("servers") or []
    connected = sum(1 for s in servers if s.get("connected"))
    return f"{len(servers)} servers, {connected} connected"
