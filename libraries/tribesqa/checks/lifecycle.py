"""Lifecycle checks: a decommissioned node archived since the step, a fresh activation, sync
endpoints equal to the transport addresses peers report."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from tribesqa.checks.judgement import (
    Judgement,
    _agree_phrase,
    _by_id,
    _iso,
    _Judge,
    _listing,
    _row_stamp,
    _short_error,
)
from tribesqa.contract.node_time import NodeStamp, bound_text, certainly_after, not_before
from tribesqa.reporting.diffing import (
    PRESENCE,
    Mismatch,
    membership_matrix,
)


class ArchiveJudge(_Judge):
    """``node`` is archived as decommissioned on every observer and is none of its sync servers.

    A view is ``{"rows": [...], "servers": [url, ...]}`` (cluster_nodes.list + sync.status).
    ``decommissioned_at`` must not be before ``since`` at the node's precision, allowing
    ``skew_s`` (``tribesqa.contract.node_time.not_before``).

    Settled (fails at that poll, no wait can change it): a row updated during this step (its
    ``updated_at`` not before ``since``) whose ``decommissioned_at`` is before ``since``: the
    node wrote a wrong time now. An *old* row (updated before ``since``) may still be replaced
    by the new decommission, so it only lags.
    """

    SETTLED = ("decommissioned_at written during the step is before since",)

    def __init__(
        self,
        node: str,
        transport_address: str | None,
        since: datetime | None = None,
        skew_s: float = 0.0,
    ) -> None:
        self.node_id = str(node)
        self.transport_address = (transport_address or "").rstrip("/") or None
        self.since = since
        self.skew_s = skew_s

    def _stamp_problem(
        self, observer: str, row: Mapping[str, Any], stamp: NodeStamp
    ) -> tuple[str, str | None]:
        """(problem, settled reason or None) of a ``decommissioned_at`` before ``since``."""
        assert self.since is not None
        bound = bound_text(self.since, self.skew_s, stamp)
        allowance = f", allowing {self.skew_s:g} s of clock skew" if self.skew_s else ""
        problem = (
            f"decommissioned_at {stamp.text()} on {observer} is before {bound} "
            f"(the step began {_iso(self.since)}{allowance})"
        )
        # Settled only when the row is certainly new: a decommissioned row whose updated_at is
        # later than the step's start even if the node's clock runs ahead by the whole skew.
        # A row that may be older only lags (a newer decommission may still replace it).
        updated = _row_stamp(row, "updated_at")
        written_now = (
            row.get("status") == "decommissioned"
            and updated is not None
            and certainly_after(updated, self.since, self.skew_s)
        )
        settled = f"{problem} (settled: the row was written during the step)"
        return problem, settled if written_now else None

    def judge(self, views: Mapping[str, Any], errors: Mapping[str, str]) -> Judgement:
        nodes = list(views)
        problems: list[str] = []
        mismatches: list[Mismatch] = []
        terminal: str | None = None
        for observer in nodes:
            view = views[observer]
            if view is None:
                problems.append(f"{observer} unreachable ({_short_error(errors.get(observer))})")
                continue
            row = _by_id(view["rows"]).get(self.node_id)
            if row is None:
                problems.append(f"row missing on {observer}")
                mismatches.append(Mismatch(observer, self.node_id, PRESENCE, "present", "missing"))
                continue
            status = row.get("status")
            if status != "decommissioned":
                problems.append(f"status {status} on {observer}")
                mismatches.append(
                    Mismatch(observer, self.node_id, "status", "decommissioned", status)
                )
            stamp = _row_stamp(row, "decommissioned_at")
            if stamp is None:
                problems.append(f"decommissioned_at not set on {observer}")
                mismatches.append(
                    Mismatch(observer, self.node_id, "decommissioned_at", "set", None)
                )
            elif self.since is not None and not not_before(stamp, self.since, self.skew_s):
                problem, settled = self._stamp_problem(observer, row, stamp)
                problems.append(problem)
                terminal = terminal or settled
                mismatches.append(
                    Mismatch(
                        observer,
                        self.node_id,
                        "decommissioned_at",
                        f">= {bound_text(self.since, self.skew_s, stamp)}",
                        row.get("decommissioned_at"),
                    )
                )
            address = self.transport_address or str(row.get("transport_address") or "")
            servers = [str(u).rstrip("/") for u in view.get("servers", [])]
            if address and address.rstrip("/") in servers:
                problems.append(f"{observer} still syncs with {address}")
                mismatches.append(
                    Mismatch(observer, self.node_id, "sync server", "absent", address)
                )
        off = {m.node for m in mismatches}
        lagging = [n for n in nodes if views[n] is None or n in off]
        done = not lagging
        return Judgement(
            done=done,
            problem="" if done else "; ".join(problems),
            agreement=_agree_phrase(len(nodes) - len(lagging), len(nodes)),
            lagging=lagging,
            terminal=None if done else terminal,
            mismatches=mismatches,
            explain=lambda: (
                membership_matrix({n: None if v is None else v["rows"] for n, v in views.items()}),
                "",
            ),
        )


def activation_problems(
    node: str,
    views: Mapping[str, Any],
    errors: Mapping[str, str],
    after: datetime,
    skew_s: float = 0.0,
) -> tuple[list[str], list[Mismatch]]:
    """Observers whose row of ``node`` lacks an ``activated_at`` not before ``after``.

    Compared at the node's precision after the ``skew_s`` allowance
    (``tribesqa.contract.node_time.not_before``): an activation in the same tick as ``after`` is fresh.
    """
    node_id = str(node)
    problems: list[str] = []
    mismatches: list[Mismatch] = []
    for observer, rows in views.items():
        if rows is None:
            problems.append(f"{observer} unreachable ({_short_error(errors.get(observer))})")
            continue
        row = _by_id(rows).get(node_id)
        if row is None:
            problems.append(f"{observer} has no row")
            mismatches.append(Mismatch(observer, node_id, PRESENCE, "present", "missing"))
            continue
        stamp = _row_stamp(row, "activated_at")
        if stamp is None or not not_before(stamp, after, skew_s):
            shown = row.get("activated_at")
            wanted = _iso(after) if stamp is None else bound_text(after, skew_s, stamp)
            problems.append(
                f"{observer} has activated_at {shown}"
                + (f" (status {row.get('status')})" if row.get("status") != "active" else "")
            )
            mismatches.append(Mismatch(observer, node_id, "activated_at", f">= {wanted}", shown))
    return problems, mismatches


def sync_endpoint_problems(
    node: str,
    legion_endpoint: str | None,
    peer_views: Mapping[str, Any],
    reachability: str | None,
) -> list[str]:
    """What is wrong with ``node``'s sync endpoint: Legion vs peers, scheme/port, reachability.

    ``peer_views`` maps observer -> its membership rows (None when unreachable);
    ``reachability`` is None when the endpoint answered HTTP on its scheme and port, else the error.
    """
    problems: list[str] = []
    node_id = str(node)
    reported: dict[str, list[str]] = {}
    for observer, rows in peer_views.items():
        if rows is None:
            continue
        row = _by_id(rows).get(node_id)
        value = str(row.get("transport_address")) if row else "(no row)"
        reported.setdefault(value, []).append(observer)
    if not legion_endpoint:
        problems.append("Legion exposes no sync endpoint")
    wanted = (legion_endpoint or "").rstrip("/")
    wrong = {v: o for v, o in reported.items() if v.rstrip("/") != wanted}
    answered = sum(1 for rows in peer_views.values() if rows is not None)
    if wrong:
        peers = "; ".join(f"{v} ({_listing(o, answered)})" for v, o in wrong.items())
        problems.append(f"Legion says {legion_endpoint}, peers report {peers}")
    if legion_endpoint:
        parts = urlsplit(legion_endpoint)
        if parts.scheme not in ("http", "https", "ws", "wss"):
            problems.append(f"scheme {parts.scheme or '(none)'} is not http/https/ws/wss")
        try:
            port = parts.port
        except ValueError:
            port = None
        if port is None:
            problems.append("no explicit port")
    if reachability:
        problems.append(f"unreachable: {reachability}")
    return problems
