"""What a judge returns (``Judgement``) and the small pure helpers every judge shares.

Pure Python: no Robot, no network. A judge reads one attempt's per-node answers and says
*done*, *not yet* or *terminal* (settled evidence: the wait fails at that poll)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tribesqa.contract import (
    ClusterNodeRow,
)
from tribesqa.contract.node_time import NodeStamp, parse_stamp
from tribesqa.diagnostics import TribesFailure
from tribesqa.reporting.diffing import (
    MEMBERSHIP_FIELDS,
    Matrix,
    Mismatch,
    membership_matrix,
    summarize,
)
from tribesqa.waiting import (
    Observation,
    Verdict,
    short_repr,
)

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
