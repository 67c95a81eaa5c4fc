"""Plugin table judges: every node holds the same cases, events and counters; one item visible;
an id that must stay absent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tribesqa.checks.judgement import _MAX_LISTED, Judgement, _agree_phrase, _Judge, _short_error
from tribesqa.reporting.diffing import (
    PRESENCE,
    Mismatch,
    plugin_state_matrix,
    summarize,
)
from tribesqa.waiting import (
    short_repr,
)


class PluginStateJudge(_Judge):
    """All nodes hold the same cases, events and counters (and the expected counts)."""

    def __init__(
        self, expected_cases: int | None = None, expected_events: int | None = None
    ) -> None:
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
