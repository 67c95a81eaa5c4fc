"""What every component shares: the context and a few helpers to read Robot arguments."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from tribesqa.context import LibraryContext
from tribesqa.diagnostics import TribesFailure
from tribesqa.fan_out import fan_out

T = TypeVar("T")


class Component:
    # The domain tags every keyword of the component carries (TribesLibrary.get_keyword_tags):
    # libdoc groups keywords by them (target, legion, node, plugin, convergence, fault, ...).
    TAGS: tuple[str, ...] = ()

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
        results, errors = fan_out(names, action)
        if errors:
            # Messages that already open with "node <name>" are not prefixed twice.
            detail = "; ".join(
                message if message.startswith(f"node {node}") else f"{node}: {message}"
                for node, message in errors.items()
            )
            raise TribesFailure(f"{what} failed on {len(errors)} of {len(names)} node(s): {detail}")
        return results
