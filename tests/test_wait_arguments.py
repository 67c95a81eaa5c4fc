"""Every keyword that waits takes the call's own ``timeout=`` (or ``duration=``) and ``poll=``.

Which keywords wait is read from the source, not from a hand-kept list: a keyword waits when
its method calls ``poll_until`` or ``consistently``, directly or through a method of its
component (``self._wait(...)``, ``self.wait_for_rollout(...)``, a base class's helper). Each of
them must accept ``poll`` and ``timeout`` or ``duration`` and show the override in its libdoc,
unless it is named in ``NOT_A_WAIT`` with the reason its engine call is no wait of the keyword.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from robot.api.deco import keyword

from tribesqa.keywords.component import Component
from tribesqa.library import TribesLibrary
from tribesqa.waiting import poll_until

WAIT_ENGINE = frozenset({"poll_until", "consistently"})
WINDOW_ARGUMENTS = ("timeout", "duration")

NOT_A_WAIT = {
    "Membership Should Match": "one look: it reuses the wait's judge and report with once=True",
    "Crash Node": "the healthz wait belongs to the heal it registers, run at teardown",
}


@cache
def _methods(cls: type) -> dict[str, ast.FunctionDef]:
    """The methods a component's instances resolve (its own first, then its bases')."""
    found: dict[str, ast.FunctionDef] = {}
    for klass in cls.__mro__:
        if klass is object:
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        body = tree.body[0]
        assert isinstance(body, ast.ClassDef)
        for node in body.body:
            if isinstance(node, ast.FunctionDef):
                found.setdefault(node.name, node)
    return found


def _calls(function: ast.FunctionDef) -> tuple[bool, set[str]]:
    """Whether ``function`` calls the wait engine itself, and the ``self.<method>`` it calls."""
    engine, own = False, set()
    for node in ast.walk(function):
        if not isinstance(node, ast.Call):
            continue
        called = node.func
        if isinstance(called, ast.Name) and called.id in WAIT_ENGINE:
            engine = True
        elif isinstance(called, ast.Attribute):
            if called.attr in WAIT_ENGINE:
                engine = True
            elif isinstance(called.value, ast.Name) and called.value.id == "self":
                own.add(called.attr)
    return engine, own


def waiting_methods(cls: type) -> set[str]:
    """Names of the methods of ``cls`` that reach ``poll_until`` / ``consistently``."""
    graph = {name: _calls(function) for name, function in _methods(cls).items()}
    reached = {name for name, (engine, _) in graph.items() if engine}
    grew = True
    while grew:
        grew = False
        for name, (_, own) in graph.items():
            if name not in reached and own & reached:
                reached.add(name)
                grew = True
    return reached


def missing_wait_arguments(method: Callable[..., Any]) -> list[str]:
    """What a waiting keyword lacks: ``poll`` / a window argument / the override in its docs."""
    parameters = inspect.signature(method).parameters
    problems = []
    window = [name for name in WINDOW_ARGUMENTS if name in parameters]
    if not window:
        problems.append("no timeout= or duration= argument")
    if "poll" not in parameters:
        problems.append("no poll= argument")
    doc = inspect.getdoc(method) or ""
    if window and f"{window[0]}=" not in doc:
        problems.append(f"its docstring never shows {window[0]}=")
    if "poll" in parameters and "poll=" not in doc:
        problems.append("its docstring never shows poll=")
    return problems


def _waiting_keywords() -> dict[str, Callable[..., Any]]:
    library = TribesLibrary()
    found = {}
    for name in library.get_keyword_names():
        method = library.keywords[name]
        function = getattr(method, "__func__", method)
        if function.__name__ in waiting_methods(type(method.__self__)):
            found[name] = method
    return found


def _robot_name(name: str) -> str:
    """The name Robot shows (``wait_for_rollout`` -> ``Wait For Rollout``)."""
    return name if " " in name else name.replace("_", " ").title()


def test_every_keyword_that_waits_takes_its_own_timeout_and_poll() -> None:
    waiting = {_robot_name(name): method for name, method in _waiting_keywords().items()}
    # The scan finds the waits everyone knows about (else it is scanning nothing).
    assert {
        "Wait Until Cluster Converged",
        "Node Should Stay Stale For",
        "Wait For Rollout",
    } <= set(waiting)
    problems = {
        name: missing
        for name, method in sorted(waiting.items())
        if name not in NOT_A_WAIT and (missing := missing_wait_arguments(method))
    }
    assert not problems, "\n".join(f"{name}: {'; '.join(p)}" for name, p in problems.items())


def test_every_exemption_is_still_a_keyword_that_reaches_the_engine() -> None:
    waiting = {_robot_name(name) for name in _waiting_keywords()}
    stale = sorted(set(NOT_A_WAIT) - waiting)
    assert not stale, f"NOT_A_WAIT names keywords that no longer reach the wait engine: {stale}"


# ------------------------------------------------------------------ the scan itself can fail


class _Forgetful(Component):
    def _helper(self) -> None:
        poll_until([], lambda _: None, lambda _: None, what="x", timeout_s=1, interval_s=1)

    @keyword
    def wait_for_something(self, node: str) -> None:
        """Waits through a helper of its component, with no way to shorten it.

        Example: ``Wait For Something    hetzner-1``
        """
        self._helper()

    @keyword
    def wait_for_something_else(
        self, node: str, *, timeout: float | None = None, poll: float | None = None
    ) -> None:
        """Waits, and its call may say how long: ``timeout=2 s    poll=0.5 s``."""
        self._helper()

    @keyword
    def look_once(self, node: str) -> None:
        """Waits for nothing.

        Example: ``Look Once    hetzner-1``
        """


def test_the_scan_finds_a_wait_behind_a_helper_and_names_what_is_missing() -> None:
    assert waiting_methods(_Forgetful) >= {"_helper", "wait_for_something"}
    assert "look_once" not in waiting_methods(_Forgetful)
    assert missing_wait_arguments(_Forgetful(None).wait_for_something) == [  # type: ignore[arg-type]
        "no timeout= or duration= argument",
        "no poll= argument",
    ]
    assert missing_wait_arguments(_Forgetful(None).wait_for_something_else) == []  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(NOT_A_WAIT))
def test_an_exemption_says_why(name: str) -> None:
    assert len(NOT_A_WAIT[name].split()) >= 5
