"""Failure diagnostics in one place: one message, one HTML report, links to artifacts.

Keywords raise; this module turns what they raise into what QA reads in log.html: a single
failure message naming node(s), step and property, and (for waits) one HTML table with the
differing cells marked plus a compact timeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from robot.api import logger

from tribesqa.reporting.diffing import Matrix, Mismatch
from tribesqa.reporting.report_html import failure_report_html


class TribesFailure(AssertionError):
    """A keyword failure whose message is complete; Robot shows it without a type name."""

    ROBOT_SUPPRESS_NAME = True


def fail(
    message: str,
    *,
    matrix: Matrix | None = None,
    timeline: Any = None,
    mismatches: list[Mismatch] | None = None,
    links: Mapping[str, str] | None = None,
    title: str = "Per-node view",
) -> TribesFailure:
    """Log the HTML report once (if there is anything beyond the message) and return the error."""
    if matrix is not None or timeline is not None or mismatches or links:
        logger.info(
            failure_report_html(
                message,
                matrix=matrix,
                timeline=timeline,
                links=links,
                mismatches=mismatches,
                matrix_title=title,
            ),
            html=True,
        )
    return TribesFailure(message)


def clean_failure(error: BaseException) -> TribesFailure:
    """Any library error as a clean Robot failure: the message, never a Python traceback."""
    if isinstance(error, TribesFailure):
        return error
    text = str(error).strip() or type(error).__name__
    if not isinstance(error, AssertionError):
        # Unexpected error types still get a readable line; the type helps a maintainer.
        logger.debug(f"{type(error).__module__}.{type(error).__qualname__}: {text}")
    if isinstance(error, _PROGRAMMING_ERRORS):
        # A red verdict must say whether the cluster or the test library is at fault.
        return TribesFailure(
            f"internal error in the test library ({type(error).__name__}), not a finding about "
            f"the cluster: {text}"
        )
    return TribesFailure(text)


# Errors that only a bug in this library raises (bad input and node answers raise ValueError,
# OSError or TribesFailure with their own messages).
_PROGRAMMING_ERRORS = (
    TypeError,
    AttributeError,
    NameError,
    KeyError,
    IndexError,
    ZeroDivisionError,
    NotImplementedError,
    RecursionError,
)
