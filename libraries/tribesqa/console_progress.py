"""Which waits write progress lines to Robot's console, and the writing.

A wait reports (``waiting.progress.WaitProgress``) when its timeout is at least the timeouts
table's ``progress_after`` and the console is wanted: always under plain robot, never under
pabot (each process's console goes to its own file and N processes would interleave), unless
``TRIBES_QA_PROGRESS`` says otherwise. ``TRIBES_QA_PROGRESS`` is read as a Robot variable
(``--variable TRIBES_QA_PROGRESS:1``) first, then from the environment; true turns the lines
on even under pabot, false turns them off everywhere (Robot's truth rules).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from robot.api import logger
from robot.libraries.BuiltIn import BuiltIn, RobotNotRunningError
from robot.utils import is_truthy

from tribesqa.waiting.progress import Progress, ProgressFactory, WaitProgress

SWITCH = "TRIBES_QA_PROGRESS"
# pabot hands every robot process these (as --variable; they are looked for in the
# environment too).
PABOT_MARKERS = ("PABOTQUEUEINDEX", "PABOTEXECUTIONPOOLID")


def _variable(name: str) -> Any:
    try:
        return BuiltIn().get_variable_value("${" + name + "}")
    except RobotNotRunningError:
        return None


def under_pabot() -> bool:
    return any(os.environ.get(m) is not None or _variable(m) is not None for m in PABOT_MARKERS)


def console_wanted() -> bool:
    """``TRIBES_QA_PROGRESS`` (variable, then environment) if given, else: not under pabot."""
    for value in (_variable(SWITCH), os.environ.get(SWITCH)):
        if value is not None and str(value).strip() != "":
            return is_truthy(value)
    return not under_pabot()


def write_console(line: str) -> None:
    logger.console(line)


def progress_factory(
    threshold: Callable[[], float | None], write: Callable[[str], None] = write_console
) -> ProgressFactory:
    """The library's factory: ``threshold()`` is the open target's ``progress_after`` (None
    when no target is open or the table has no entry: no lines)."""

    def factory(what: str, timeout_s: float, interval_s: float) -> Progress | None:
        after = threshold()
        if after is None or timeout_s < after or not console_wanted():
            return None
        lines = 0

        def write_line(line: str) -> None:
            # Robot's verbose console has the test's name on the current line, no newline yet:
            # a wait's first line starts on a line of its own.
            nonlocal lines
            write(line if lines else "\n" + line)
            lines += 1

        return WaitProgress(what, timeout_s, interval_s, write_line)

    return factory
