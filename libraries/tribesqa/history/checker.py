"""Runs every invariant over a suite's history and words the failure: the invariant, the node,
both observations (seq, wall time, test, what, digest and compact value) and the artifact link."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tribesqa.history.invariants import (
    Record,
    Violation,
    activation_never_decreases,
    decommissioned_server_stays_out,
    membership_moves_forward,
    no_ghost_rows,
)
from tribesqa.history.plugin_invariants import (
    acknowledged_writes_survive,
    generation_holds_after_success,
    plugin_values_never_go_back,
)

_VALUE_CHARS = 300

INVARIANTS: dict[str, Callable[[Sequence[Record]], list[Violation]]] = {
    "membership moves forward": membership_moves_forward,
    "activation never decreases": activation_never_decreases,
    "no ghost rows": no_ghost_rows,
    "decommissioned server stays out": decommissioned_server_stays_out,
    "generation holds after success": generation_holds_after_success,
    "acknowledged writes survive": acknowledged_writes_survive,
    "plugin values never go back": plugin_values_never_go_back,
}
"""Every invariant the checker runs, by the name a failure message uses."""


def check(
    records: Sequence[Record],
    invariants: Mapping[str, Callable[[Sequence[Record]], list[Violation]]] | None = None,
) -> list[Violation]:
    """Every violation of every invariant (or of the ``invariants`` given), in invariant order."""
    chosen = INVARIANTS if invariants is None else invariants
    ordered = sorted(records, key=lambda r: r.get("seq", 0))
    found: list[Violation] = []
    for name, invariant in chosen.items():
        try:
            found += invariant(ordered)
        except Exception as error:  # a record of a shape no invariant foresaw: say which
            raise HistoryCheckError(
                f"invariant '{name}' could not judge the history: {type(error).__name__}: {error}"
            ) from None
    return found


class HistoryCheckError(ValueError):
    """An invariant met a record it cannot read (the message names the invariant)."""


def describe_record(record: Record | None, node: str | None = None) -> str:
    """One line: ``#12 2026-...Z [test] hetzner-1 cluster_nodes.list digest=...: {...}``."""
    if record is None:
        return "(no earlier observation)"
    value: Any = record.get("value")
    if node is not None and isinstance(value, Mapping) and node in value:
        value = {node: value[node]}  # the contradicting row, not the whole table
    elif node is not None:
        value = _plugin_row(value, node)
    if record.get("what") == "rollout.status" and isinstance(value, Mapping):
        value = {k: v for k, v in value.items() if k != "log"}  # the stages, not their lines
    text = json.dumps(value, sort_keys=True, default=str)
    if len(text) > _VALUE_CHARS:
        text = text[: _VALUE_CHARS - 3] + "..."
    test = record.get("test") or "suite setup/teardown"
    return (
        f"#{record.get('seq')} {record.get('wall')} [{test}] {record.get('node')} "
        f"{record.get('what')} digest={record.get('digest')}: {text}"
    )


def _plugin_row(value: Any, row_id: str) -> Any:
    """A plugin read or write answer narrowed to the contradicting row (status kept), if it is
    there; the whole value otherwise."""
    if not isinstance(value, Mapping) or not isinstance(value.get("body"), Mapping):
        return value
    body = value["body"]
    for kind in ("cases", "events"):
        for item in body.get(kind) or []:
            if isinstance(item, Mapping) and item.get("id") == row_id:
                return {"status": value.get("status"), kind: [item]}
    counts = {kind: len(body.get(kind) or []) for kind in ("cases", "events")}
    return {"status": value.get("status"), "query": value.get("query"), "without": row_id, **counts}


def failure_message(
    violations: Sequence[Violation],
    artifact: str | None,
    limit: int = 5,
    record_links: Sequence[Sequence[str]] = (),
) -> str:
    """The failure text: a count, then per violation the invariant, the node, both records and
    (``record_links``, one entry per violation) the artifacts holding them."""
    if not violations:
        return ""
    lines = [f"the suite history breaks {len(violations)} invariant check(s):"]
    for index, violation in enumerate(violations[:limit]):
        where = f" on {violation.observer}" if violation.observer else ""
        lines.append(
            f"- invariant '{violation.invariant}', node {violation.node}{where}: {violation.reason}"
        )
        row = violation.row or violation.node
        lines.append(f"    first:  {describe_record(violation.first, row)}")
        lines.append(f"    second: {describe_record(violation.second, row)}")
        if index < len(record_links) and record_links[index]:
            lines.append(f"    records: {', '.join(record_links[index])}")
    if len(violations) > limit:
        lines.append(f"... and {len(violations) - limit} more")
    if artifact:
        lines.append(f"history: {artifact}")
    return "\n".join(lines)
