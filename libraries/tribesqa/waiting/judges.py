"""Ready-made judges for the engine: every node satisfies a predicate, or every node agrees."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tribesqa.waiting.results import Judge, Observation, Verdict

# --------------------------------------------------------------------------------------------
# Ready-made judges
# --------------------------------------------------------------------------------------------


def all_nodes_satisfy(
    is_ok: Callable[[Any], bool],
    *,
    label: str = "ok",
    terminal: Callable[[str, Any], str | None] | None = None,
) -> Judge:
    """Judge: done when every node answered and ``is_ok(value)`` holds for each.

    Summary ``"2 of 3 nodes <label>"``; unreachable nodes count as lagging. ``terminal(node,
    value)`` may return a reason that makes the wait fail at once (e.g. "decommissioned").
    """

    def judge(observations: dict[str, Observation]) -> Verdict:
        lagging: list[str] = []
        for node, observation in observations.items():
            if observation.error is not None:
                lagging.append(node)
                continue
            if terminal is not None:
                reason = terminal(node, observation.value)
                if reason:
                    return Verdict(False, reason, [node], terminal=reason)
            if not is_ok(observation.value):
                lagging.append(node)
        good = len(observations) - len(lagging)
        return Verdict(not lagging, f"{good} of {len(observations)} nodes {label}", lagging)

    return judge


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def all_nodes_agree(key: Callable[[Any], Any] | None = None) -> Judge:
    """Judge: done when every node answered and all ``key(value)`` are equal.

    The reference is what most nodes say (ties: the first node in order); summary
    ``"2 of 3 nodes agree"``; lagging = unreachable nodes and those off the reference.
    """

    def judge(observations: dict[str, Observation]) -> Verdict:
        groups: dict[str, list[str]] = {}
        unreachable: list[str] = []
        for node, observation in observations.items():
            if observation.error is not None:
                unreachable.append(node)
                continue
            value = observation.value if key is None else key(observation.value)
            groups.setdefault(_canonical(value), []).append(node)
        # max() keeps the first of equal counts, and dicts keep first-seen order.
        majority = max(groups.values(), key=len) if groups else []
        lagging = [node for node in observations if node not in majority]
        summary = f"{len(majority)} of {len(observations)} nodes agree"
        if unreachable:
            summary += f"; unreachable: {', '.join(unreachable)}"
        return Verdict(not lagging, summary, lagging)

    return judge
