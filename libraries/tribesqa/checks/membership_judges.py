"""Membership judges: every observer holds the same ``cluster_nodes`` rows, members active,
the expected table met; rows going backwards or unexpected decommissions are settled."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from tribesqa.checks.judgement import (
    MEMBER_FIELDS,
    REGRESSION_GRACE_S,
    Judgement,
    _agree_phrase,
    _by_id,
    _explain_membership,
    _iso,
    _Judge,
    _listing,
    _row_stamp,
    _short_error,
    _view_key,
)
from tribesqa.contract.node_time import certainly_after
from tribesqa.diagnostics import TribesFailure
from tribesqa.reporting.diffing import (
    PRESENCE,
    Mismatch,
    expected_mismatches,
    membership_matrix,
    to_plain,
)
from tribesqa.waiting import (
    short_repr,
)


def normalize_expected(
    expected: Any, id_of: Callable[[str], str] = str
) -> dict[str, dict[str, Any]]:
    """Expected membership as ``node_id -> {field: value}``.

    Accepts a mapping of node name -> fields (Robot ``&{}``), a mapping of node name -> status
    string (shorthand), a list of mappings that each name their node (``node``, ``name`` or
    ``node_id``). Robot turns a dictionary or list literal given as text into one first.
    """
    if expected is None:
        return {}
    if isinstance(expected, Mapping):
        items = [(str(name), fields) for name, fields in expected.items()]
    elif isinstance(expected, list | tuple):
        items = []
        for index, entry in enumerate(expected):
            if not isinstance(entry, Mapping):
                raise TribesFailure(f"expected[{index}] must be a dictionary, got {entry!r}")
            name = entry.get("node") or entry.get("name") or entry.get("node_id")
            if not name:
                raise TribesFailure(f"expected[{index}] names no node (add node=<name>)")
            fields = {k: v for k, v in entry.items() if k not in ("node", "name", "node_id")}
            items.append((str(name), fields))
    else:
        raise TribesFailure(
            f"expected membership must be a dictionary or a list, got {type(expected).__name__}"
        )
    table: dict[str, dict[str, Any]] = {}
    for name, given in items:
        fields = {"status": given} if isinstance(given, str) else given
        if not isinstance(fields, Mapping):
            raise TribesFailure(f"expected row of {name} must be a dictionary, got {fields!r}")
        unknown = sorted(set(map(str, fields)) - MEMBER_FIELDS)
        if unknown:
            raise TribesFailure(
                f"expected row of {name}: unknown field(s) {', '.join(unknown)} "
                f"(known: {', '.join(sorted(MEMBER_FIELDS))})"
            )
        table[id_of(name)] = {str(k): _plain_value(v) for k, v in fields.items()}
    return table


def _plain_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    value = to_plain(value)
    # StrEnum values (MemberStatus) compare as their text.
    return str(value) if isinstance(value, str) else value


def describe_membership(rows: Any) -> str:
    """Short timeline cell: ``hetzner-1:active,ovh-1:syncing`` (large views summarised)."""
    if not isinstance(rows, list):
        return short_repr(rows)
    items = [(str(r.get("node_id")), str(r.get("status"))) for r in rows]
    if len(items) <= 6:
        return ",".join(f"{n}:{s}" for n, s in items)
    counts = Counter(status for _, status in items)
    odd = [f"{n}:{s}" for n, s in items if s != "active"]
    text = f"{counts.get('active', 0)} active"
    if odd:
        text += "," + ",".join(odd[:4]) + (",..." if len(odd) > 4 else "")
    return text


class StatusMemory:
    """Highest membership status each observer reported for each row during one wait.

    ``syncing < active``; ``decommissioned`` is recorded as such. A row that goes
    ``active -> syncing`` is a regression when the syncing row was written after the wait
    began (plus ``grace_s``): a resync the test asked for happened before the wait, so its
    row is older. ``decommissioned -> syncing`` is a reactivation, never a regression.
    """

    _RANK = {"syncing": 0, "active": 1}

    def __init__(
        self, started_at: datetime, grace_s: float = REGRESSION_GRACE_S, skew_s: float = 0.0
    ) -> None:
        self.started_at = started_at
        self.grace_s = grace_s
        self.skew_s = skew_s
        self.highest: dict[tuple[str, str], str] = {}

    def _written_during_wait(self, row: Mapping[str, Any]) -> bool:
        updated = _row_stamp(row, "updated_at")
        if updated is None:
            return False  # unknown: never fail fast on a guess
        # A node clock ahead by up to skew_s must not make an older row look written meanwhile.
        begun = self.started_at + timedelta(seconds=self.grace_s)
        return certainly_after(updated, begun, self.skew_s)

    def observe(
        self,
        observer: str,
        row: Mapping[str, Any],
        *,
        member: bool,
        may_decommission: bool = False,
        superseded: bool = False,
    ) -> str | None:
        """Record one row as one observer saw it; return a terminal reason or None.

        ``member``: the row's node is one the caller expects alive, so seeing it decommissioned
        is terminal even if this wait never saw it active; ``may_decommission`` allows it.
        ``superseded``: another observer already holds a newer row for the node (see
        :class:`NewerRows`), so an old ``decommissioned`` row here is lag, not a verdict.
        """
        node_id = str(row.get("node_id"))
        status = str(row.get("status"))
        key = (observer, node_id)
        before = self.highest.get(key)
        reason = None
        if status == "decommissioned":
            if not may_decommission and not superseded and (member or before == "active"):
                reason = (
                    f"node {node_id} unexpectedly decommissioned on {observer} "
                    f"(decommissioned_at {row.get('decommissioned_at')})"
                )
            self.highest[key] = "decommissioned"
        elif status in self._RANK:
            if before == "decommissioned":
                self.highest[key] = status  # reactivation starts over
            elif before is None or self._RANK[status] > self._RANK.get(before, -1):
                self.highest[key] = status
            elif before == "active" and status == "syncing" and self._written_during_wait(row):
                reason = (
                    f"node {node_id} went backwards on {observer}: active -> syncing "
                    f"(row updated {row.get('updated_at')}, after the wait began "
                    f"{_iso(self.started_at)}; no resync was asked before the wait)"
                )
        return reason


class NewerRows:
    """Per poll: is a node's ``decommissioned`` row older than a live row another observer has?

    Rows are last-writer-wins per node. Right after a reactivation a slow observer may still
    hold the old ``decommissioned`` row while others already hold the new ``syncing`` or
    ``active`` one: that observer lags, the node was not decommissioned again. Computed lazily,
    once per node id, only when a decommissioned row is seen.
    """

    def __init__(
        self, views: Iterable[Iterable[Mapping[str, Any]] | None], skew_s: float = 0.0
    ) -> None:
        self._views = [rows for rows in views if rows is not None]
        self._skew_s = skew_s
        self._newest_live: dict[str, datetime | None] = {}

    def _newest_live_update(self, node_id: str) -> datetime | None:
        """The latest instant a live row of ``node_id`` may have been written (its tick's end)."""
        if node_id not in self._newest_live:
            stamps = [
                _row_stamp(row, "updated_at")
                for rows in self._views
                for row in rows
                if str(row.get("node_id")) == node_id and row.get("status") != "decommissioned"
            ]
            ends = [s.moment + s.resolution for s in stamps if s is not None]
            self._newest_live[node_id] = max(ends) if ends else None
        return self._newest_live[node_id]

    def supersede(self, row: Mapping[str, Any]) -> bool:
        """True unless the decommissioned row is certainly newer than every live row.

        The rows come from different writers (Legion, the node itself), at their precision and
        by their clocks: in doubt the decommissioned row is taken as lag, so the wait goes on
        instead of failing fast on a guess.
        """
        if row.get("status") != "decommissioned":
            return False
        newest = self._newest_live_update(str(row.get("node_id")))
        updated = _row_stamp(row, "updated_at")
        if newest is None or updated is None:
            return False
        # Two writers' clocks (Legion's, the node's) may each be skew_s off the runner's.
        return not certainly_after(updated, newest, 2 * self._skew_s)


class MembershipJudge(_Judge):
    """Every observer reports the same rows; member rows are active; expected table holds.

    ``members``: node ids whose rows must be ``active`` on every observer (unless
    ``expected`` says otherwise for them). Terminal: a row goes backwards, or a member (or a
    row this wait saw active) is decommissioned although ``expected`` does not say so.
    """

    SETTLED = (
        "a row written during the wait goes active -> syncing (no resync was asked)",
        "a member, or a row this wait saw active, is decommissioned, certainly after every "
        "live row of that node (at the nodes' precision, allowing the clock skew)",
    )

    def __init__(
        self,
        members: Sequence[str],
        expected: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        started_at: datetime,
        grace_s: float = REGRESSION_GRACE_S,
        skew_s: float = 0.0,
    ) -> None:
        self.members = [str(m) for m in members]
        self.expected = {k: dict(v) for k, v in (expected or {}).items()}
        self.memory = StatusMemory(started_at, grace_s, skew_s)

    def _allowed_decommissioned(self, node_id: str) -> bool:
        return self.expected.get(node_id, {}).get("status") == "decommissioned"

    def _row_problems(
        self, observer: str, rows: Sequence[Mapping[str, Any]], by_id: Mapping[str, Any]
    ) -> list[tuple[str, Mismatch]]:
        """(kind, mismatch) of one view: member rows missing or not active, expected table."""
        found: list[tuple[str, Mismatch]] = []
        for member in self.members:
            if member in self.expected:
                continue
            row = by_id.get(member)
            if row is None:
                found.append(
                    ("missing", Mismatch(observer, member, PRESENCE, "present", "missing"))
                )
            elif row.get("status") != "active":
                status = str(row.get("status"))
                found.append(("stuck", Mismatch(observer, member, "status", "active", status)))
        if self.expected:
            found += [("expected", m) for m in expected_mismatches({observer: rows}, self.expected)]
        return found

    def judge(self, views: Mapping[str, Any], errors: Mapping[str, str]) -> Judgement:
        nodes = list(views)
        reachable = [n for n in nodes if views[n] is not None]
        unreachable = [n for n in nodes if views[n] is None]
        terminal = None
        groups: dict[tuple[Any, ...], list[str]] = {}
        group_of: dict[str, tuple[Any, ...]] = {}
        newer = NewerRows((views[n] for n in reachable), self.memory.skew_s)
        for observer in reachable:
            rows = views[observer]
            for row in rows:
                node_id = str(row.get("node_id"))
                reason = self.memory.observe(
                    observer,
                    row,
                    member=node_id in self.members,
                    may_decommission=self._allowed_decommissioned(node_id),
                    superseded=newer.supersede(row),
                )
                terminal = terminal or reason
            key = _view_key(_by_id(rows))
            groups.setdefault(key, []).append(observer)
            group_of[observer] = key
        # Identical views are judged once (a converged 50-node fleet is one group).
        per_group = {
            key: self._row_problems(members[0], views[members[0]], _by_id(views[members[0]]))
            for key, members in groups.items()
        }
        majority = max(groups.values(), key=len) if groups else []
        off_majority = [n for n in reachable if n not in majority]

        stuck: dict[tuple[str, str], list[str]] = {}
        missing: dict[str, list[str]] = {}
        mismatches: list[Mismatch] = []
        wanted: list[Mismatch] = []
        for observer in reachable:
            for kind, item in per_group[group_of[observer]]:
                mismatch = dataclasses.replace(item, node=observer)
                mismatches.append(mismatch)
                if kind == "stuck":
                    stuck.setdefault((item.row, str(item.actual)), []).append(observer)
                elif kind == "missing":
                    missing.setdefault(item.row, []).append(observer)
                else:
                    wanted.append(mismatch)

        problems: list[str] = [
            f"{node} unreachable ({_short_error(errors.get(node))})" for node in unreachable
        ]
        total = len(reachable)
        for (member, status), observers in stuck.items():
            problems.append(f"node {member} still {status} on {_listing(observers, total)}")
        for member, observers in missing.items():
            problems.append(f"node {member} has no membership row on {_listing(observers, total)}")
        if wanted:
            shown = "; ".join(str(m) for m in wanted[:2])
            more = f" (+{len(wanted) - 2} more)" if len(wanted) > 2 else ""
            problems.append(f"expected table not met: {shown}{more}")
        if off_majority and not problems:
            verb = "differs" if len(off_majority) == 1 else "differ"
            problems.append(f"{_listing(off_majority)} {verb} from the majority view")
        lagging_set = set(unreachable) | set(off_majority) | {m.node for m in mismatches}
        lagging = [n for n in nodes if n in lagging_set]
        done = not lagging and terminal is None
        return Judgement(
            done=done,
            problem="" if done else "; ".join(problems),
            agreement=_agree_phrase(len(majority), len(nodes)),
            lagging=lagging,
            terminal=terminal,
            mismatches=mismatches,
            explain=lambda: _explain_membership(views),
        )


class NodeActiveJudge(_Judge):
    """``node``'s row is ``active`` on every observer; decommissioned or backwards is terminal."""

    SETTLED = MembershipJudge.SETTLED

    def __init__(
        self,
        node: str,
        *,
        started_at: datetime,
        grace_s: float = REGRESSION_GRACE_S,
        skew_s: float = 0.0,
    ) -> None:
        self.node_id = str(node)
        self.memory = StatusMemory(started_at, grace_s, skew_s)

    def judge(self, views: Mapping[str, Any], errors: Mapping[str, str]) -> Judgement:
        nodes = list(views)
        unreachable = [n for n in nodes if views[n] is None]
        terminal = None
        by_state: dict[str, list[str]] = {}
        mismatches: list[Mismatch] = []
        newer = NewerRows((views[n] for n in nodes), self.memory.skew_s)
        for observer in (n for n in nodes if views[n] is not None):
            row = _by_id(views[observer]).get(self.node_id)
            if row is None:
                by_state.setdefault("without a row", []).append(observer)
                mismatches.append(Mismatch(observer, self.node_id, PRESENCE, "present", "missing"))
                continue
            reason = self.memory.observe(
                observer, row, member=True, superseded=newer.supersede(row)
            )
            terminal = terminal or reason
            status = str(row.get("status"))
            if status != "active":
                by_state.setdefault(status, []).append(observer)
                mismatches.append(Mismatch(observer, self.node_id, "status", "active", status))
        problems = [
            f"{node} unreachable ({_short_error(errors.get(node))})" for node in unreachable
        ]
        for state, observers in by_state.items():
            if state == "without a row":
                problems.append(f"node {self.node_id} has no row on {_listing(observers)}")
            else:
                problems.append(f"node {self.node_id} still {state} on {_listing(observers)}")
        lagging_set = set(unreachable) | {m.node for m in mismatches}
        lagging = [n for n in nodes if n in lagging_set]
        good = len(nodes) - len(lagging)
        done = not lagging and terminal is None
        return Judgement(
            done=done,
            problem="" if done else "; ".join(problems),
            agreement=_agree_phrase(good, len(nodes)),
            lagging=lagging,
            terminal=terminal,
            mismatches=mismatches,
            explain=lambda: (membership_matrix(dict(views)), ""),
        )
