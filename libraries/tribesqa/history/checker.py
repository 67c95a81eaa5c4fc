"""Runs every invariant over a suite's history and words the failure: the invariant, the node,
both observations (seq, wall time, test, what, digest and compact value) and the artifact link."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tribesqa.history.invariants import INVARIANTS, Record, Violation

_VALUE_CHARS = 300


def check(
    records: Sequence[Record],
    invariants: Mapping[str, Callable[[Sequence[Record]], list[Violation]]] | None = None,
) -> list[Violation]:
    """Every violation of every invariant (or of the ``invariants`` given), in invariant order."""
    chosen = INVARIANTS if invariants is None else invariants
    ordered = sorted(records, key=lambda r: r.get("seq", 0))
    return [violation for invariant in chosen.values() for violation in invariant(ordered)]


def describe_record(record: Record | None, node: str | None = None) -> str:
    """One line: ``#12 2026-...Z [test] hetzner-1 cluster_nodes.list digest=...: {...}``."""
    if record is None:
        return "(no earlier observation)"
    value: Any = record.get("value")
    if node is not None and isinstance(value, Mapping) and node in value:
        value = {node: value[node]}  # the contradicting row, not the whole table
    text = json.dumps(value, sort_keys=True, default=str)
    if len(text) > _VALUE_CHARS:
        text = text[: _VALUE_CHARS - 3] + "..."
    test = record.get("test") or "suite setup/teardown"
    return (
        f"#{record.get('seq')} {record.get('wall')} [{test}] {record.get('node')} "
        f"{record.get('what')} digest={record.get('digest')}: {text}"
    )


def failure_message(violations: Sequence[Violation], artifact: str | None, limit: int = 5) -> str:
    """The failure text: a count, then per violation the invariant, the node and both records."""
    if not violations:
        return ""
    lines = [f"the suite history breaks {len(violations)} invariant check(s):"]
    for violation in violations[:limit]:
        where = f" on {violation.observer}" if violation.observer else ""
        lines.append(
            f"- invariant '{violation.invariant}', node {violation.node}{where}: {violation.reason}"
        )
        row = violation.node
        lines.append(f"    first:  {describe_record(violation.first, row)}")
        lines.append(f"    second: {describe_record(violation.second, row)}")
    if len(violations) > limit:
        lines.append(f"... and {len(violations) - limit} more")
    if artifact:
        lines.append(f"history: {artifact}")
    return "\n".join(lines)
