"""Convergence: concurrent polls of every node, fail-fast judges, one diff table on failure.

The module has two halves. The top half is plain Python (no Robot, no network): the judges
that read one attempt's per-node answers and decide *done*, *not yet* or *terminal*, and the
small helpers that turn arguments into tables. They are unit-tested with ``FakeClock``. The
bottom half is ``ConvergenceKeywords``: probes (management API, plugin API) wired to those
judges through ``tribesqa.waiting.poll_until`` / ``consistently``, and the failure report
(one message naming node, property and how long it waited; one HTML table of rows x nodes
with the differing cells marked; links to the snapshot captured at that moment).
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from robot.api import logger
from robot.api.deco import keyword

from tribesqa.client import ManagementClient, ManagementError
from tribesqa.components.base import Component
from tribesqa.contract import (
    Case,
    ClusterNodeRow,
    Event,
    LegionNodeStatus,
    PluginState,
    parse_method_result,
    parse_payload,
)
from tribesqa.diagnostics import TribesFailure, fail
from tribesqa.diffing import (
    MEMBERSHIP_FIELDS,
    PRESENCE,
    Matrix,
    Mismatch,
    expected_mismatches,
    membership_matrix,
    plugin_state_matrix,
    summarize,
    to_plain,
)
from tribesqa.fan_out import fan_out
from tribesqa.node_time import NodeStamp, bound_text, certainly_after, not_before, parse_stamp
from tribesqa.waiting import (
    SYSTEM_CLOCK,
    Clock,
    ConvergenceFailure,
    Observation,
    Verdict,
    WaitResult,
    consistently,
    poll_until,
    short_repr,
)

__all__ = [
    "MAX_PROBE_WORKERS",
    "MEMBER_FIELDS",
    "REGRESSION_GRACE_S",
    "SYNC_HEALTH_PATH",
    "ArchiveJudge",
    "ClusterHealthJudge",
    "ConvergenceKeywords",
    "ItemVisibleJudge",
    "Judgement",
    "MembershipJudge",
    "NodeActiveJudge",
    "PluginStateJudge",
    "StatusMemory",
    "StaysAbsentJudge",
    "TribeJudge",
    "activation_problems",
    "describe_membership",
    "fetch_membership_rows",
    "normalize_expected",
    "parse_time",
    "sync_endpoint_problems",
]

SYNC_HEALTH_PATH = "/"
"""Path probed under a sync endpoint: any HTTP answer proves a server speaks the endpoint's scheme
on its port (a real mesh endpoint may answer 400/404/426 to a plain GET; only a transport error
or a 5xx counts as unreachable)."""


REGRESSION_GRACE_S = 1.0
"""A row written less than this long after a wait began still counts as written before it
(clock skew between runner and nodes); only later writes can be a regression."""

MEMBER_FIELDS: frozenset[str] = frozenset(ClusterNodeRow.model_fields) - {"node_id"}
"""Fields an expected membership table may name."""

MEMBERSHIP_FIELDS_COMPARED: tuple[str, ...] = MEMBERSHIP_FIELDS
"""Fields whose equality across observers means "same membership" (as the diff table shows)."""

_MAX_REPORT_MISMATCHES = 100
_MAX_LISTED = 3

Rows = list[dict[str, Any]]


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


def _listing(names: Sequence[str], total: int | None = None) -> str:
    """``a, b, c`` or ``5 of 50 nodes (a, b, c, ...)`` when long."""
    names = list(names)
    if total is not None and len(names) == total and total > 1:
        return "every node"
    if len(names) <= _MAX_LISTED:
        return ", ".join(names)
    shown = ", ".join(names[:_MAX_LISTED])
    return f"{len(names)} nodes ({shown}, ...)"


def _short_error(text: str | None, limit: int = 120) -> str:
    return short_repr(text or "no answer", limit)


def _agree_phrase(good: int, total: int, label: str = "agree") -> str:
    return f"{good} of {total} nodes {label}"


def parse_time(value: Any, name: str = "time") -> datetime:
    """An aware datetime from a datetime or an RFC 3339 string; naive values are refused."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            moment = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise TribesFailure(
                f"argument {name} must be an RFC 3339 time with a timezone "
                f"(e.g. from 'Get Current Time UTC'), got {value!r}"
            ) from None
    else:
        raise TribesFailure(f"argument {name} must be a time, got {value!r}")
    if moment.tzinfo is None:
        raise TribesFailure(
            f"argument {name} has no timezone ({value!r}); use 'Get Current Time UTC'"
        )
    return moment.astimezone(UTC)


def _row_stamp(row: Mapping[str, Any] | None, name: str) -> NodeStamp | None:
    """A node-written time of a row with the precision the node wrote it at (None if unset)."""
    value = None if row is None else row.get(name)
    if value is None:
        return None
    try:
        return parse_stamp(value)
    except (TypeError, ValueError):
        return None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _by_id(rows: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {str(row.get("node_id")): row for row in rows}


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


# ---------------------------------------------------------------------------------------------
# Judges
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Judgement:
    """A judge's full reading of one attempt; the keyword turns the last one into the report."""

    done: bool
    problem: str
    """What is wrong, e.g. ``"node ovh-1 still syncing on hetzner-1"`` (empty when done)."""
    agreement: str
    """``"2 of 3 nodes agree"`` (or healthy, active...)."""
    lagging: list[str] = field(default_factory=list)
    terminal: str | None = None
    matrix: Matrix | None = None
    mismatches: list[Mismatch] = field(default_factory=list)
    detail: str = ""
    """Optional extra clause for the message (e.g. ``diffing.summarize`` details)."""
    explain: Callable[[], tuple[Matrix, str]] | None = field(default=None, repr=False)
    """Deferred ``(matrix, detail)``: the full rows x nodes diff costs hundreds of ms on a
    50-node fleet, so judges that run every poll build it only when a report needs it."""

    def explained(self) -> Judgement:
        """Fill ``matrix`` and ``detail`` from ``explain`` (once); returns self."""
        if self.explain is not None:
            explain, self.explain = self.explain, None
            self.matrix, detail = explain()
            self.detail = detail or self.detail
        return self

    def verdict(self) -> Verdict:
        parts = [self.agreement or "done"] if self.done else [self.problem, self.agreement]
        summary = "; ".join(part for part in parts if part)
        return Verdict(self.done, summary, list(self.lagging), self.terminal)

    def message(self, what: str, elapsed_s: float | None) -> str:
        """``"<what>: <problem> after 10.0 s; 2 of 3 nodes agree[; detail]"``.

        ``elapsed_s`` None: a one-look check, no "after".
        """
        self.explained()
        head = self.terminal or self.problem
        waited = "" if elapsed_s is None else f" after {elapsed_s:.1f} s"
        text = f"{what}: {head}{waited}"
        if self.agreement:
            text += f"; {self.agreement}"
        if self.detail and self.detail != self.agreement:
            text += f"; {self.detail}"
        return text


def _frozen(value: Any) -> Any:
    return value if value is None or isinstance(value, str | int | float | bool) else repr(value)


def _view_key(rows_by_id: Mapping[str, Mapping[str, Any]]) -> tuple[Any, ...]:
    """Hashable, order-independent identity of one membership view (the compared fields)."""
    return tuple(
        sorted(
            (node_id, tuple(_frozen(row.get(name)) for name in MEMBERSHIP_FIELDS_COMPARED))
            for node_id, row in rows_by_id.items()
        )
    )


def _explain_membership(views: Mapping[str, Any]) -> tuple[Matrix, str]:
    matrix = membership_matrix(dict(views))
    return matrix, summarize(matrix).partition("; ")[2]


class _Judge:
    """Base of the stateful judges: callable as a ``waiting.Judge``, remembers the last reading.

    ``SETTLED`` names the checks whose failing evidence no later poll can change: the wait fails
    at that poll (``Judgement.terminal``), with the same message, table and artifacts as a
    timeout. Every other failing check is "not yet" and waits for the deadline.
    """

    SETTLED: tuple[str, ...] = ()
    last: Judgement | None = None

    def judge(self, views: Mapping[str, Any], errors: Mapping[str, str]) -> Judgement:
        raise NotImplementedError

    def __call__(self, observations: dict[str, Observation]) -> Verdict:
        views = {n: (o.value if o.ok else None) for n, o in observations.items()}
        errors = {n: o.error or "" for n, o in observations.items() if not o.ok}
        self.last = self.judge(views, errors)
        return self.last.verdict()


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
        return not certainly_after(updated, newest, self._skew_s)


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


class ArchiveJudge(_Judge):
    """``node`` is archived as decommissioned on every observer and is none of its sync servers.

    A view is ``{"rows": [...], "servers": [url, ...]}`` (cluster_nodes.list + sync.status).
    ``decommissioned_at`` must not be before ``since`` at the node's precision, allowing
    ``skew_s`` (``tribesqa.node_time.not_before``).

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
        updated = _row_stamp(row, "updated_at")
        written_now = updated is not None and not_before(updated, self.since, self.skew_s)
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
    (``tribesqa.node_time.not_before``): an activation in the same tick as ``after`` is fresh.
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


class PluginStateJudge(_Judge):
    """All nodes hold the same cases, events and counters (and the expected counts)."""

    def __init__(
        self, run_id: str, expected_cases: int | None = None, expected_events: int | None = None
    ) -> None:
        self.run_id = run_id
        self.expected_cases = expected_cases
        self.expected_events = expected_events

    def judge(self, views: Mapping[str, Any], errors: Mapping[str, str]) -> Judgement:
        matrix = plugin_state_matrix(dict(views))
        differing = matrix.differing()
        problems = [f"{n} unreachable ({_short_error(errors.get(n))})" for n in matrix.unreachable]
        mismatches: list[Mismatch] = []
        counted: list[str] = []
        for node in matrix.reachable:
            state = views[node]
            for kind, wanted in (
                ("cases", self.expected_cases),
                ("events", self.expected_events),
            ):
                have = len(state.get(kind) or [])
                if wanted is not None and have != wanted:
                    counted.append(f"{node} holds {have} {kind} (expected {wanted})")
                    mismatches.append(Mismatch(node, f"({kind})", "count", wanted, have))
        problems += counted[:_MAX_LISTED]
        if len(counted) > _MAX_LISTED:
            problems.append(f"and {len(counted) - _MAX_LISTED} more count differences")
        summary = summarize(matrix)
        agreement, _, detail = summary.partition("; ")
        if differing:
            problems.append(detail or "nodes hold different cases/events")
            detail = ""
        lagging_set = set(matrix.unreachable) | {n for _, n, _ in differing}
        lagging_set |= {m.node for m in mismatches}
        lagging = [n for n in matrix.nodes if n in lagging_set]
        done = not lagging
        return Judgement(
            done=done,
            problem="" if done else "; ".join(problems),
            agreement=agreement,
            lagging=lagging,
            matrix=matrix,
            mismatches=mismatches,
            detail=detail,
        )


def describe_plugin_state(state: Any) -> str:
    """Timeline cell: ``2 cases (sum 5), 3 events``."""
    if not isinstance(state, Mapping):
        return short_repr(state)
    cases = state.get("cases") or []
    events = state.get("events") or []
    total = sum(int(c.get("counter") or 0) for c in cases)
    return f"{len(cases)} cases (sum {total}), {len(events)} events"


def _find_item(state: Mapping[str, Any], item_id: str) -> tuple[str, Mapping[str, Any]] | None:
    for kind in ("cases", "events"):
        for item in state.get(kind) or []:
            if str(item.get("id")) == item_id:
                return kind, item
    return None


class ItemVisibleJudge(_Judge):
    """A case (optionally with a counter value) or an event is visible on one node."""

    def __init__(self, kind: str, item_id: str, counter: int | None = None) -> None:
        self.kind = kind  # "cases" or "events"
        self.item_id = item_id
        self.counter = counter
        self.singular = kind[:-1]

    def judge(self, views: Mapping[str, Any], errors: Mapping[str, str]) -> Judgement:
        matrix = plugin_state_matrix(dict(views))
        problems: list[str] = []
        mismatches: list[Mismatch] = []
        row_key = f"{self.singular}:{self.item_id}"
        for node, state in views.items():
            if state is None:
                problems.append(f"{node} unreachable ({_short_error(errors.get(node))})")
                continue
            item = next(
                (i for i in state.get(self.kind) or [] if str(i.get("id")) == self.item_id),
                None,
            )
            if item is None:
                problems.append(f"{self.singular} {self.item_id} not visible on {node}")
                mismatches.append(Mismatch(node, row_key, PRESENCE, "present", "missing"))
            elif self.counter is not None and item.get("counter") != self.counter:
                problems.append(
                    f"{self.singular} {self.item_id} on {node} has counter {item.get('counter')}, expected {self.counter}"
                )
                mismatches.append(
                    Mismatch(node, row_key, "counter", self.counter, item.get("counter"))
                )
        lagging = [n for n in views if views[n] is None or any(m.node == n for m in mismatches)]
        done = not lagging
        return Judgement(
            done=done,
            problem="" if done else "; ".join(problems),
            agreement=""
            if len(views) == 1
            else _agree_phrase(len(views) - len(lagging), len(views), "show it"),
            lagging=lagging,
            matrix=matrix,
            mismatches=mismatches,
        )


class StaysAbsentJudge(_Judge):
    """For ``consistently``: the id stays absent; a read error also breaks the guarantee."""

    def __init__(self, item_id: str) -> None:
        self.item_id = item_id

    def judge(self, views: Mapping[str, Any], errors: Mapping[str, str]) -> Judgement:
        matrix = plugin_state_matrix(dict(views))
        problems: list[str] = []
        mismatches: list[Mismatch] = []
        for node, state in views.items():
            if state is None:
                problems.append(
                    f"could not read the plugin state of {node} ({_short_error(errors.get(node))})"
                )
                continue
            found = _find_item(state, self.item_id)
            if found is not None:
                kind = found[0]
                problems.append(f"{kind[:-1]} {self.item_id} appeared on {node}")
                mismatches.append(
                    Mismatch(node, f"{kind[:-1]}:{self.item_id}", PRESENCE, "absent", "present")
                )
        lagging = [n for n in views if views[n] is None or any(m.node == n for m in mismatches)]
        done = not lagging
        return Judgement(
            done=done,
            problem="" if done else "; ".join(problems),
            agreement=_agree_phrase(len(views) - len(lagging), len(views), "still stale"),
            lagging=lagging,
            matrix=matrix,
            mismatches=mismatches,
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


MAX_PROBE_WORKERS = 64
"""Concurrent probes per attempt: a 50-node fleet is polled in one wave."""

_POLL_CLIENT_SUFFIX = "#poll"


class _CheckedRows:
    """Membership rows already contract-checked, by their exact content as a node sent them.

    In one poll of a converged 50-node fleet the 50 views carry the same 50 rows: checking
    each distinct row once instead of 2,500 times is most of a poll's CPU time. A view whose
    every row is known is returned from here; any unknown row sends the whole view through the
    models, so errors (and the one-row-per-node rule) are reported exactly as before.
    """

    LIMIT = 20_000

    def __init__(self) -> None:
        self._rows: dict[tuple[tuple[str, Any], ...], dict[str, Any]] = {}

    @staticmethod
    def _key(row: Any) -> tuple[tuple[str, Any], ...] | None:
        if not isinstance(row, dict):
            return None
        key = tuple(row.items())
        try:
            hash(key)
        except TypeError:  # a nested value: not a row this memo can vouch for
            return None
        return key

    def known(self, result: Any) -> Rows | None:
        rows = result.get("nodes") if isinstance(result, dict) else None
        if not isinstance(rows, list):
            return None
        checked = []
        for row in rows:
            key = self._key(row)
            known = self._rows.get(key) if key is not None else None
            if known is None:
                return None
            checked.append(dict(known))
        if len({row["node_id"] for row in checked}) != len(checked):
            return None  # duplicates: let the model say so
        return checked

    def remember(self, result: dict[str, Any], checked: Rows) -> None:
        if len(self._rows) > self.LIMIT:
            self._rows.clear()
        for raw, row in zip(result["nodes"], checked, strict=True):
            key = self._key(raw)
            if key is not None:
                self._rows[key] = dict(row)


_CHECKED_ROWS = _CheckedRows()


def fetch_membership_rows(client: Any) -> Rows:
    """One observer's ``cluster_nodes.list`` (contract-checked) as JSON-shaped rows."""
    result = client.call("cluster_nodes.list")
    known = _CHECKED_ROWS.known(result)
    if known is not None:
        return known
    view = parse_method_result("cluster_nodes.list", result, source=f"node {client.node}")
    checked = [row.model_dump(mode="json") for row in view.nodes]
    _CHECKED_ROWS.remember(result, checked)
    return checked


# ---------------------------------------------------------------------------------------------
# Keywords
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _WaitSpec:
    what: str
    """Failure prefix, e.g. ``membership not converged``."""
    done: str
    """Success prefix, e.g. ``membership converged``."""
    timeout_s: float
    interval_s: float
    title: str = "row \\ node"


class ConvergenceKeywords(Component):
    """Waits and one-shot checks that every node agrees (membership, plugin state, tribe)."""

    clock: Clock = SYSTEM_CLOCK

    # -- plumbing ----------------------------------------------------------------------------
    def nodes_or_active(self, nodes: Sequence[str] | None) -> list[str]:
        self._learn_node_ids()
        return super().nodes_or_active(nodes)

    def _learn_node_ids(self) -> None:
        """Map Legion node names to membership node ids (they differ on a real fleet)."""
        try:
            snapshot = self.ctx.require_target().legion.snapshot()
        except Exception as error:  # the mapping is an aid; names stay usable as ids
            logger.debug(f"node ids not refreshed from Legion: {error}")
            return
        self.ctx.learn_node_ids({m.node: m.node_id for m in snapshot.cluster_membership})

    def _probe_timeout(self) -> float:
        timeouts = self.ctx.require_timeouts()
        return max(1.0, 2 * timeouts.poll_interval)

    def _failure_links(self) -> dict[str, str]:
        """Capture the failure snapshot now (ArtifactKeywords' hook) and link it from the report."""
        hook = getattr(self.ctx, "capture_failure", None)
        if hook is None:
            return {}
        try:
            return dict(hook())
        except Exception as error:  # capturing must never hide the real failure
            logger.warn(f"failure snapshot not captured: {error}")
            return {}

    def _failure(
        self,
        message: str,
        judgement: Judgement | None,
        result: WaitResult | None,
        *,
        title: str,
    ) -> TribesFailure:
        if judgement is not None:
            judgement.explained()
        mismatches = list(judgement.mismatches) if judgement else []
        if len(mismatches) > _MAX_REPORT_MISMATCHES:
            logger.info(
                f"{len(mismatches)} mismatches; the report shows the first {_MAX_REPORT_MISMATCHES}"
            )
            mismatches = mismatches[:_MAX_REPORT_MISMATCHES]
        return fail(
            message,
            matrix=judgement.matrix if judgement else None,
            timeline=result.timeline if result is not None and result.attempts > 1 else None,
            mismatches=mismatches,
            links=self._failure_links(),
            title=title,
        )

    def _wait(
        self,
        nodes: Sequence[str],
        probe: Callable[[str], Any],
        judge: _Judge,
        spec: _WaitSpec,
        *,
        describe: Callable[[Any], str] = short_repr,
        once: bool = False,
    ) -> WaitResult:
        """poll_until (or one attempt when ``once``) with the report on failure."""
        try:
            result = poll_until(
                list(nodes),
                probe,
                judge,
                what=spec.what,
                timeout_s=0.0 if once else spec.timeout_s,
                interval_s=spec.interval_s,
                clock=self.clock,
                describe=describe,
                max_workers=MAX_PROBE_WORKERS,
                # One look is patient (the client retries a 503 up to node_ready): a slow answer
                # is an answer, not "unreachable"; polls are bounded so a slow node cannot stall.
                probe_timeout_s=None if once else self._probe_timeout(),
            )
        except ConvergenceFailure as failure:
            judgement = judge.last
            if judgement is None:  # cannot happen: poll_until judges before it fails
                raise TribesFailure(failure.message) from None
            raise self._failure(
                judgement.message(spec.what, None if once else failure.result.elapsed_s),
                judgement,
                failure.result,
                title=spec.title,
            ) from None
        logger.info(
            f"{spec.done}: {result.verdict.summary} after {result.elapsed_s:.1f} s "
            f"({result.attempts} poll{'s' if result.attempts != 1 else ''})"
        )
        return result

    def _poll_client(self, node: str) -> ManagementClient:
        """A management client for polls: same signing and timeout, but no readiness retry.

        The context's client retries a 503 (booting, restarting) for up to ``node_ready``; in
        a poll that would hold the whole attempt while the other nodes' answers go stale, so
        here a 503 is just "not yet" and the next attempt asks again. Kept in the context's
        client table (under a suffixed key) so that closing the target closes it.
        """
        record = self.ctx.record(node)
        if record.admin_url is None:
            raise AssertionError(
                f"node {node} has no admin URL yet (Legion status {record.status.value})"
            )
        key = f"{node}{_POLL_CLIENT_SUFFIX}"
        client = self.ctx.clients.get(key)
        if client is not None and client.admin_url == record.admin_url.rstrip("/"):
            return client
        client = self.ctx.new_client(node, record.admin_url, patient=False)
        previous = self.ctx.clients.get(key)
        self.ctx.clients[key] = client
        if previous is not None:
            previous.close()
        return client

    def _membership_rows(self, node: str) -> Rows:
        """Membership probe of the waits (a booting node is "not yet", at once)."""
        return fetch_membership_rows(self._poll_client(node))

    def _membership_rows_patient(self, node: str) -> Rows:
        """Membership probe of the one-look checks (a restarting node gets ``node_ready``)."""
        return fetch_membership_rows(self.ctx.client(node))

    def _plugin_state(self, node: str, run_id: str) -> dict[str, Any]:
        status, payload = self.ctx.plugins().request(
            node, "GET", f"state?run_id={quote(str(run_id), safe='')}"
        )
        if status != 200:
            detail = payload.get("error") if isinstance(payload, Mapping) else short_repr(payload)
            raise AssertionError(f"plugin API state answered HTTP {status}: {detail}")
        state = parse_payload(PluginState, payload, source=f"node {node} / plugin state")
        return state.model_dump(mode="json")

    def _once(
        self, nodes: Sequence[str], probe: Callable[[str], Any]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Probe every node once, concurrently; errors are data (the view is None)."""
        results, errors = fan_out(nodes, probe, max_workers=MAX_PROBE_WORKERS)
        folded = {node: " ".join(text.split()) for node, text in errors.items()}
        return {node: results.get(node) for node in nodes}, folded

    # -- membership ----------------------------------------------------------------------------
    @keyword
    def wait_until_cluster_converged(
        self,
        *nodes: str,
        expected: dict[str, Any] | list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """Wait until every active node reports the same membership, with every member ``active``.

        Polls ``cluster_nodes.list`` on all nodes at once (Legion's ``ready`` nodes, or the
        given ``nodes``) every ``poll_interval`` up to ``membership_converged``. Done when all
        views are equal, no member row is ``syncing`` and, when ``expected`` is given (node ->
        ``{status, transport_address, scope}``, or node -> status), every view matches it.

        Fails at once when a row goes backwards (``active -> syncing`` written during the wait)
        or a member is decommissioned although ``expected`` does not say so. On failure: one
        message naming node(s) and property, one table of rows x nodes with the differing cells
        marked, the timeline and links to the snapshot taken then. Returns the converged rows.

        Example:
        | ${rows}=    Wait Until Cluster Converged
        | &{ovh}=    Create Dictionary    status=decommissioned
        | &{expected}=    Create Dictionary    hetzner-1=active    scaleway-1=active    ovh-1=${ovh}
        | Wait Until Cluster Converged    hetzner-1    scaleway-1    expected=${expected}
        """
        table = normalize_expected(expected, self.ctx.node_id)
        return self._membership(table, list(nodes), once=False)

    @keyword
    def membership_should_match(
        self,
        expected: dict[str, Any] | list[dict[str, Any]],
        *nodes: str,
    ) -> list[dict[str, Any]]:
        """One look (no waiting): every node's membership equals the others' and ``expected``.

        Same judge and same report as ``Wait Until Cluster Converged``, probing once.

        Example:
        | &{expected}=    Create Dictionary    hetzner-1=active    scaleway-1=active
        | Membership Should Match    ${expected}
        """
        table = normalize_expected(expected, self.ctx.node_id)
        return self._membership(table, list(nodes), once=True)

    def _membership(
        self, expected: dict[str, dict[str, Any]], nodes: Sequence[str], *, once: bool
    ) -> list[dict[str, Any]]:
        names = self.nodes_or_active(nodes)
        timeouts = self.ctx.require_timeouts()
        skew = self.ctx.require_timeouts().clock_skew
        members = [self.ctx.node_id(name) for name in names]
        judge = MembershipJudge(members, expected, started_at=self.clock.wall(), skew_s=skew)
        spec = _WaitSpec(
            "membership differs" if once else "membership not converged",
            "membership matches" if once else "membership converged",
            timeouts.membership_converged,
            timeouts.poll_interval,
            "membership row \\ observer",
        )
        probe = self._membership_rows_patient if once else self._membership_rows
        result = self._wait(names, probe, judge, spec, describe=describe_membership, once=once)
        return list(result.values()[names[0]])

    @keyword
    def wait_until_node_is_active_everywhere(self, node: str) -> None:
        """Wait until ``node``'s membership row is ``active`` on every active member and on itself.

        Fails at once if the row is decommissioned anywhere or goes backwards during the wait;
        otherwise after ``node_active`` with e.g. ``node ovh-1 still syncing on hetzner-1 after
        20.0 s; 2 of 3 nodes agree``.

        Example: ``Wait Until Node Is Active Everywhere    ovh-1``
        """
        node = str(node)
        record = self.ctx.refresh_records().get(node)
        if record is None or record.status in (
            LegionNodeStatus.FAILED,
            LegionNodeStatus.DESTROYED,
            LegionNodeStatus.PLANNED,
        ):
            # Nothing to wait for: fail at once rather than after node_active.
            state = "not known to Legion" if record is None else f"{record.status.value} in Legion"
            raise TribesFailure(f"node {node} cannot become active everywhere: it is {state}")
        self._learn_node_ids()
        observers = [n for n in self.ctx.active_names() if n != node] + [node]
        timeouts = self.ctx.require_timeouts()
        judge = NodeActiveJudge(
            self.ctx.node_id(node), started_at=self.clock.wall(), skew_s=timeouts.clock_skew
        )
        spec = _WaitSpec(
            f"node {node} not active everywhere",
            f"node {node} active everywhere",
            timeouts.node_active,
            timeouts.poll_interval,
            "membership row \\ observer",
        )
        self._wait(observers, self._membership_rows, judge, spec, describe=describe_membership)

    @keyword
    def node_should_be_archived_as_decommissioned(
        self, node: str, since: str | datetime | None = None
    ) -> None:
        """Every remaining active node keeps ``node``'s row as ``decommissioned`` and no longer syncs with it.

        Polls up to ``membership_converged``: the row exists with status ``decommissioned`` and
        ``decommissioned_at`` set (not before ``since``, an RFC 3339 time or a datetime, less
        the ``clock_skew`` allowance of the timeouts table), and ``node``'s transport address is
        none of the observers' ``sync.status`` servers.

        Example:
        | ${before}=    Get Current Time UTC
        | Decommission Node    ovh-1
        | Node Should Be Archived As Decommissioned    ovh-1    since=${before}
        """
        node = str(node)
        moment = None if since is None else parse_time(since, "since")
        records = self.ctx.refresh_records()
        observers = [
            n for n, r in records.items() if r.status is LegionNodeStatus.READY and n != node
        ]
        if not observers:
            raise TribesFailure(f"node {node}: no remaining active node to check the archive on")
        record = records.get(node)
        timeouts = self.ctx.require_timeouts()
        address = record.transport_address if record else None
        judge = ArchiveJudge(self.ctx.node_id(node), address, moment, timeouts.clock_skew)

        def probe(observer: str) -> dict[str, Any]:
            client = self._poll_client(observer)
            rows = fetch_membership_rows(client)
            status = client.call_typed("sync.status")
            return {"rows": rows, "servers": [s.url for s in status.servers]}  # type: ignore[attr-defined]

        def describe(view: Any) -> str:
            if not isinstance(view, Mapping):
                return short_repr(view)
            row = _by_id(view["rows"]).get(self.ctx.node_id(node))
            state = "no row" if row is None else str(row.get("status"))
            return f"{node}:{state}, {len(view['servers'])} servers"

        spec = _WaitSpec(
            f"node {node} not archived as decommissioned",
            f"node {node} archived as decommissioned",
            timeouts.membership_converged,
            timeouts.poll_interval,
            "membership row \\ observer",
        )
        self._wait(observers, probe, judge, spec, describe=describe)

    @keyword
    def activation_should_be_fresh(self, node: str, after: str | datetime) -> None:
        """``node``'s ``activated_at`` is later than ``after`` on every active node (one look).

        Use it after a reactivation or replacement: take the time before the step with
        ``Get Current Time UTC``. ``after`` is moved back by the ``clock_skew`` of the timeouts
        table (node clocks against the runner's; 0 on the simulator).

        Example:
        | ${before}=    Get Current Time UTC
        | Reactivate Node    ovh-1
        | Activation Should Be Fresh    ovh-1    ${before}
        """
        node = str(node)
        skew = self.ctx.require_timeouts().clock_skew
        moment = parse_time(after, "after")
        observers = self.nodes_or_active(())
        if node not in observers:
            observers.append(node)
        views, errors = self._once(observers, self._membership_rows_patient)
        problems, mismatches = activation_problems(
            self.ctx.node_id(node), views, errors, moment, skew
        )
        if problems:
            good = len(observers) - len({m.node for m in mismatches} | set(errors))
            judgement = Judgement(
                False,
                "; ".join(problems),
                _agree_phrase(good, len(observers)),
                matrix=membership_matrix(views),
                mismatches=mismatches,
            )
            allowance = f", allowing {skew:g} s of clock skew" if skew else ""
            message = (
                f"activation of {node} is not fresh (before {_iso(moment)} at the node's "
                f"precision{allowance}): "
                f"{judgement.problem}; {judgement.agreement}"
            )
            raise self._failure(message, judgement, None, title="membership row \\ observer")
        logger.info(f"{node}: activated_at after {_iso(moment)} on {len(observers)} node(s)")

    @keyword("Get Current Time UTC")
    def get_current_time_utc(self) -> datetime:
        """The current time as an aware UTC datetime (for ``since`` / ``after`` arguments).

        Example: ``${before}=    Get Current Time UTC``
        """
        return self.clock.wall()

    @keyword
    def sync_endpoints_should_match_transport_addresses(self, *nodes: str) -> None:
        """Legion's ``sync_endpoint`` of each active node equals what every peer reports, and serves.

        For each node: Legion's value equals the ``transport_address`` of its row on every
        active node, the URL is ``http``/``https`` with an explicit port, and
        the endpoint answers on its scheme and port (any HTTP answer below 500: a real mesh endpoint
        may refuse a plain GET). One look, all nodes at once.

        Example: ``Sync Endpoints Should Match Transport Addresses``
        """
        names = self.nodes_or_active(nodes)
        records = self.ctx.refresh_records()
        views, errors = self._once(names, self._membership_rows_patient)
        timeout = min(self.ctx.require_timeouts().management_call, 5.0)
        target = self.ctx.require_target()

        def reach(name: str) -> str | None:
            record = records.get(name)
            endpoint = record.sync_endpoint if record else None
            if not endpoint:
                return None
            # ws/wss endpoints are HTTP(S) servers until the upgrade.
            url = re.sub(r"^ws", "http", endpoint.rstrip("/")) + SYNC_HEALTH_PATH
            return target.sync_endpoint_problem(url, timeout)

        reachability, _ = self._once(names, reach)
        failures: list[str] = []
        cells: dict[tuple[str, str], dict[str, Any] | None] = {}
        columns = ["Legion", *names]
        for name in names:
            record = records.get(name)
            endpoint = record.sync_endpoint if record else None
            cells[(name, "Legion")] = {
                "transport_address": endpoint,
                "health": "ok" if reachability.get(name) is None else "unreachable",
            }
            for observer in names:
                rows = views.get(observer)
                if rows is None:
                    continue
                row = _by_id(rows).get(self.ctx.node_id(name))
                cells[(name, observer)] = (
                    None if row is None else {"transport_address": row.get("transport_address")}
                )
            problems = sync_endpoint_problems(name, endpoint, views, reachability.get(name))
            if problems:
                failures.append(f"{name}: " + "; ".join(problems))
        for observer, error in errors.items():
            failures.append(f"{observer} unreachable ({_short_error(error)})")
        if failures:
            matrix = Matrix(
                list(names),
                columns,
                cells,
                ["transport_address", "health"],
                [n for n in names if views.get(n) is None],
            )
            message = "sync endpoints do not match transport addresses: " + " | ".join(failures)
            raise self._failure(
                message,
                Judgement(False, message, "", matrix=matrix),
                None,
                title="node \\ Legion and observers",
            )
        logger.info(
            f"sync endpoints of {len(names)} node(s) match and answer on their scheme and port"
        )

    @keyword
    def cluster_status_should_be_healthy_on_nodes(self, *nodes: str) -> None:
        """``cluster_status.status`` is ``healthy`` on every node, polled up to ``membership_converged``.

        Example: ``Cluster Status Should Be Healthy On Nodes    hetzner-1    scaleway-1``
        """
        names = self.nodes_or_active(nodes)
        timeouts = self.ctx.require_timeouts()

        def probe(node: str) -> dict[str, Any]:
            return self._poll_client(node).call_typed("cluster_status").model_dump(mode="json")

        spec = _WaitSpec(
            "cluster_status not healthy",
            "cluster_status healthy",
            timeouts.membership_converged,
            timeouts.poll_interval,
            "field \\ node",
        )
        self._wait(
            names,
            probe,
            ClusterHealthJudge(),
            spec,
            describe=lambda v: f"{v.get('status')} ({v.get('self_status')})",
        )

    @keyword
    def wait_until_tribe_converged(self, *nodes: str) -> None:
        """Every node answers ``tribe.status`` with the same digest and version.

        A node answering 409 ``tribe-unknown`` has not replayed the tribe yet: it is waited
        for, not an error. Polls up to ``membership_converged``.

        Example: ``Wait Until Tribe Converged``
        """
        names = self.nodes_or_active(nodes)
        timeouts = self.ctx.require_timeouts()

        def probe(node: str) -> dict[str, Any]:
            try:
                return self._poll_client(node).call_typed("tribe.status").model_dump(mode="json")
            except ManagementError as error:
                if error.code == "tribe-unknown":
                    return dict(TRIBE_UNKNOWN)
                raise

        def describe(view: Any) -> str:
            if view == TRIBE_UNKNOWN:
                return "tribe-unknown"
            return f"v{view.get('version')} {str(view.get('digest'))[:8]}"

        spec = _WaitSpec(
            "tribe not converged",
            "tribe converged",
            timeouts.membership_converged,
            timeouts.poll_interval,
            "field \\ node",
        )
        self._wait(names, probe, TribeJudge(), spec, describe=describe)

    # -- plugin state --------------------------------------------------------------------------
    @keyword
    def wait_until_plugin_state_converged(
        self,
        run_id: str,
        *nodes: str,
        expected_cases: int | None = None,
        expected_events: int | None = None,
    ) -> dict[str, Any]:
        """Wait until every node holds the same supertest cases, events and counters for ``run_id``.

        Optional ``expected_cases`` / ``expected_events``: how many each node must hold. Polls
        the plugin API (HTTP or SSH, per target) up to ``plugin_state_converged``; the report
        shows ``case:<id>`` / ``event:<id>`` rows x nodes. Returns the converged state
        (``cases``, ``events``). Nodes: every active node, or the ones given.

        Example:
        | Wait Until Plugin State Converged    ${run_id}    expected_cases=2    expected_events=3
        | Wait Until Plugin State Converged    ${run_id}    hetzner-1    ovh-1
        """
        names = self.nodes_or_active(nodes)
        judge = PluginStateJudge(str(run_id), expected_cases, expected_events)
        timeouts = self.ctx.require_timeouts()
        spec = _WaitSpec(
            f"plugin state of run {run_id} not converged",
            f"plugin state of run {run_id} converged",
            timeouts.plugin_state_converged,
            timeouts.poll_interval,
            "item \\ node",
        )
        result = self._wait(
            names,
            lambda n: self._plugin_state(n, str(run_id)),
            judge,
            spec,
            describe=describe_plugin_state,
        )
        return dict(result.values()[names[0]])

    def _wait_item(
        self, node: str, run_id: str, kind: str, item_id: str, counter: int | None
    ) -> dict[str, Any]:
        timeouts = self.ctx.require_timeouts()
        judge = ItemVisibleJudge(kind, item_id, counter)
        spec = _WaitSpec(
            f"run {run_id}",
            f"run {run_id}: {kind[:-1]} {item_id} visible on {node}",
            timeouts.case_visible,
            timeouts.poll_interval,
            "item \\ node",
        )

        def describe(state: Any) -> str:
            found = _find_item(state, item_id) if isinstance(state, Mapping) else None
            if found is None:
                return f"absent ({describe_plugin_state(state)})"
            return f"present counter={found[1].get('counter')}" if kind == "cases" else "present"

        result = self._wait(
            [node], lambda n: self._plugin_state(n, run_id), judge, spec, describe=describe
        )
        found = _find_item(result.values()[node], item_id)
        assert found is not None
        return dict(found[1])

    @keyword
    def wait_until_case_is_visible_on_node(
        self, node: str, run_id: str, case_id: str, counter: int | None = None
    ) -> Case:
        """Wait until ``node`` holds case ``case_id`` of ``run_id`` (with ``counter`` when given).

        Polls up to ``case_visible``; returns the case (``${case.counter}``, ``${case.name}``).

        Example: ``${case}=    Wait Until Case Is Visible On Node    ovh-1    ${run}    ${id}    counter=3``
        """
        item = self._wait_item(str(node), str(run_id), "cases", str(case_id), counter)
        return Case.model_validate(item)

    @keyword
    def wait_until_event_is_visible_on_node(self, node: str, run_id: str, event_id: str) -> Event:
        """Wait until ``node`` holds event ``event_id`` of ``run_id``; returns the event.

        Example: ``Wait Until Event Is Visible On Node    scaleway-1    ${run}    ${event.id}``
        """
        item = self._wait_item(str(node), str(run_id), "events", str(event_id), None)
        return Event.model_validate(item)

    @keyword
    def node_should_stay_stale_for(
        self,
        node: str,
        run_id: str,
        case_or_event_id: str,
        duration: timedelta | None = None,
    ) -> None:
        """``case_or_event_id`` stays ABSENT on ``node`` for ``duration`` ("consistently").

        Default duration: the ``stays_stale`` timeout. Fails at the first poll where the id
        appears (or the plugin state cannot be read), naming the node and when it appeared.

        Example: ``Node Should Stay Stale For    ovh-1    ${run}    ${case.id}    duration=2``
        """
        node, run_id, item_id = str(node), str(run_id), str(case_or_event_id)
        timeouts = self.ctx.require_timeouts()
        seconds = timeouts.stays_stale if duration is None else duration.total_seconds()
        judge = StaysAbsentJudge(item_id)
        what = f"{node} did not stay stale for {seconds:g} s"

        def describe(state: Any) -> str:
            found = _find_item(state, item_id) if isinstance(state, Mapping) else None
            return "absent" if found is None else f"PRESENT ({found[0][:-1]})"

        # One read before the window opens the node's transport (an SSH login can take longer
        # than a poll): inside the window every read counts, and a slow first one is no evidence.
        try:
            self._plugin_state(node, run_id)
        except Exception as error:
            raise TribesFailure(
                f"{what}: could not read the plugin state of {node} before the window "
                f"({_short_error(str(error))})"
            ) from None
        try:
            result = consistently(
                [node],
                lambda n: self._plugin_state(n, run_id),
                judge,
                what=what,
                duration_s=seconds,
                interval_s=timeouts.poll_interval,
                clock=self.clock,
                describe=describe,
                # A read that cannot answer within a whole management call is a failed read.
                probe_timeout_s=max(self._probe_timeout(), timeouts.management_call),
            )
        except ConvergenceFailure as failure:
            judgement = judge.last
            assert judgement is not None
            message = (
                f"{judgement.problem} after {failure.result.elapsed_s:.1f} s "
                f"(expected it to stay absent for {seconds:g} s; run {run_id})"
            )
            raise self._failure(message, judgement, failure.result, title="item \\ node") from None
        logger.info(
            f"{item_id} stayed absent on {node} for {result.elapsed_s:.1f} s ({result.attempts} polls)"
        )
