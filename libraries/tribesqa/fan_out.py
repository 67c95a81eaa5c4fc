"""One fan-out: run an action on every node at once; each node's answer or error is data.

Every "all nodes at once" call of the library goes through ``fan_out`` (one-look checks,
keywords acting on several nodes, failure snapshots); the waits poll through
``tribesqa.waiting``, which keeps its probes running across attempts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

#: Threads for one fan-out: enough for a 50-node fleet's calls to run side by side.
MAX_WORKERS = 64


def error_text(error: BaseException) -> str:
    """An exception's message (as raised: a rollout failure keeps its log lines), else its type."""
    return str(error) or type(error).__name__


def fan_out(
    names: Iterable[str], action: Callable[[str], T], *, max_workers: int = MAX_WORKERS
) -> tuple[dict[str, T], dict[str, str]]:
    """``(results, errors)`` by node, in the order given; an exception never escapes."""
    ordered = list(names)
    results: dict[str, T] = {}
    errors: dict[str, str] = {}
    if not ordered:
        return results, errors
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(ordered)))) as pool:
        futures = {name: pool.submit(action, name) for name in ordered}
        for name, future in futures.items():
            try:
                results[name] = future.result()
            except Exception as error:  # a failing node is data, not a crash
                errors[name] = error_text(error)
    return results, errors
