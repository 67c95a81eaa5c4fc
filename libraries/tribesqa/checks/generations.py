"""Generations that must hold still: selected and running stay on one store path (no rollout
replayed behind the runner's back, e.g. after a restart that follows a rollback). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tribesqa.waiting import Observation, Verdict


class GenerationStaysJudge:
    """Each observation is a ``generation.status`` payload; done while selected == running == ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def problem(self, node: str, status: Mapping[str, Any]) -> str | None:
        selected, running = status.get("selected"), status.get("running")
        if selected == running == self.path:
            return None
        moved = [
            f"{name} {value}"
            for name, value in (("selected", selected), ("running", running))
            if value != self.path
        ]
        return f"node {node}: {', '.join(moved)} (expected both to stay at {self.path})"

    def __call__(self, observations: dict[str, Observation]) -> Verdict:
        problems: list[str] = []
        moved: list[str] = []  # only the nodes that did not hold still are lagging
        for node, seen in observations.items():
            if seen.error is not None:
                problems.append(f"node {node}: generation.status unreadable ({seen.error})")
                moved.append(node)
                continue
            problem = self.problem(node, seen.value)
            if problem:
                problems.append(problem)
                moved.append(node)
        if problems:
            return Verdict(False, "; ".join(problems), moved)
        return Verdict(True, f"selected and running at {self.path}")
