"""The production guard: a destructive act on a guarded target needs ``ALLOW_DESTRUCTIVE``.

A destructive act changes a fleet in a way a read-only check never does: provision, plan,
materialize, decommission, replace, reactivate or destroy a node, inject a fault, start a
rollout, a rollback or a resync, write plugin rows. The target declares whether its acts are
guarded (``Target.guards_destructive_acts``: a real fleet yes, the simulator's private fleet
no); ``LibraryContext.require_destructive_allowed`` is the one place that decides, reading
``${ALLOW_DESTRUCTIVE}`` with Robot's truth rules. Keywords that always act are marked with
``@destructive("...")`` (libdoc shows them with the ``destructive`` tag); keywords that act only
sometimes (``Ensure Roster Nodes Exist`` when a roster node is missing, ``Call Management
Method`` with a method that changes the node) call the context themselves at the act.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from robot.libraries.BuiltIn import BuiltIn, RobotNotRunningError
from robot.utils import is_truthy, printable_name

from tribesqa.diagnostics import TribesFailure

VARIABLE = "ALLOW_DESTRUCTIVE"
# The keyword tag libdoc shows on every keyword marked with @destructive.
TAG = "destructive"
# The management methods that change a node (docs/contract.md §1); every other one only reads.
MUTATING_METHODS = frozenset(
    {
        "sync.resync",
        "rollout.start",
        "generation.rollback",
        "control.apply_membership",
        "control.init_tribe",
    }
)

F = TypeVar("F", bound=Callable[..., Any])


class DestructiveActRefused(TribesFailure):
    """A destructive act on a guarded target without ``ALLOW_DESTRUCTIVE``."""


def allow_destructive_value() -> tuple[bool, str]:
    """``${ALLOW_DESTRUCTIVE}`` by Robot's truth rules, and how it reads (for the message).

    Unset (or Robot not running) is false: a real fleet is never changed by default.
    """
    try:
        value = BuiltIn().get_variable_value("${" + VARIABLE + "}")
    except RobotNotRunningError:
        return False, "not set (Robot is not running)"
    if value is None:
        return False, "not set"
    return is_truthy(value), f"{value!r}" if isinstance(value, str) else str(value)


def refusal(keyword: str, act: str, target: str, value: str) -> DestructiveActRefused:
    return DestructiveActRefused(
        f"{keyword} refused: it would {act} on the real target {target}, and {VARIABLE} is "
        f"{value}. Destructive acts on a real fleet need {VARIABLE}: true (in the target file, "
        f"--variable {VARIABLE}:true, or tribes-qa run --allow-destructive)"
    )


def destructive_keywords(methods: dict[str, Callable[..., Any]]) -> dict[str, str]:
    """Keyword name -> act template, for the keywords marked with ``@destructive``."""
    return {
        name: act
        for name, method in methods.items()
        if (act := getattr(method, "tribes_destructive", None)) is not None
    }


def _shown(values: list[Any] | tuple[Any, ...]) -> str:
    """Node lists as the keywords take them: none given means every active node."""
    return ", ".join(map(str, values)) if values else "every active node"


def _describe(method: Callable[..., Any], act: str, args: tuple[Any, ...], kwargs: Any) -> str:
    """The act with the call's arguments filled in (``decommission {node}`` -> ``decommission
    ovh-1``); the template as it is when the arguments do not bind."""
    try:
        bound = inspect.signature(method).bind(None, *args, **kwargs)
        bound.apply_defaults()
        values = {
            name: _shown(value) if isinstance(value, (list, tuple)) else value
            for name, value in bound.arguments.items()
        }
        return act.format_map(values)
    except (TypeError, KeyError, IndexError, ValueError):
        return act


def destructive(act: str) -> Callable[[F], F]:
    """Mark a keyword method of a ``Component`` as a destructive act: before it runs,
    ``ctx.require_destructive_allowed`` refuses it on a guarded target without
    ``ALLOW_DESTRUCTIVE``. ``act`` names what it does, with the method's parameters in braces
    (``"decommission node {node}"``). Put it under ``@keyword``."""

    def mark(method: F) -> F:
        keyword_name = printable_name(method.__name__, code_style=True)

        @functools.wraps(method)
        def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
            name = getattr(guarded, "robot_name", None) or keyword_name
            self.ctx.require_destructive_allowed(name, _describe(method, act, args, kwargs))
            return method(self, *args, **kwargs)

        guarded.tribes_destructive = act  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return mark
