"""Test doubles shared by the unit tests."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class ScriptedFleet:
    """Probe whose answers follow a per-node script (the last answer repeats); counts calls.

    An answer that is an exception is raised instead of returned.
    """

    def __init__(self, scripts: dict[str, list[Any]]) -> None:
        self.scripts = scripts
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def probe(self, node: str) -> Any:
        with self._lock:
            index = self.calls[node]
            self.calls[node] += 1
        script = self.scripts[node]
        answer = script[min(index, len(script) - 1)]
        if isinstance(answer, Exception):
            raise answer
        return answer

    __call__ = probe
