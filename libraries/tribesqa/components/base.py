"""What every component shares: the context and a few helpers to read Robot arguments."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from tribesqa.context import LibraryContext
from tribesqa.diagnostics import TribesFailure

T = TypeVar("T")


class Component:
    def __init__(self, ctx: LibraryContext) -> None:
        self.ctx = ctx

    def nodes_or_active(self, nodes: Sequence[str] | None) -> list[str]:
        """The nodes a keyword was given, or every node Legion reports ready."""
        names = [str(n) for n in nodes] if nodes else self.ctx.active_names()
        if not names:
            raise TribesFailure("no nodes to check: Legion reports no ready node")
        return names

    def on_each(
        self, nodes: Iterable[str], action: Callable[[str], T], *, what: str
    ) -> dict[str, T]:
        """Run ``action`` on every node concurrently; fail once, naming every node that failed."""
        names = list(nodes)
        results: dict[str, T] = {}
        errors: dict[str, str] = {}
        with ThreadPoolExecutor(max_workers=min(32, max(1, len(names)))) as pool:
            futures = {name: pool.submit(action, name) for name in names}
            for name, future in futures.items():
                try:
                    results[name] = future.result()
                except Exception as error:
                    errors[name] = str(error)
        if errors:
            # Messages that already open with "node <name>" are not prefixed twice.
            detail = "; ".join(
                message if message.startswith(f"node {node}") else f"{node}: {message}"
                for node, message in errors.items()
            )
            raise TribesFailure(f"{what} failed on {len(errors)} of {len(names)} node(s): {detail}")
        return results


def as_int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise TribesFailure(f"argument {name} must be a whole number, got {value!r}") from None
