"""What a wait returns or raises: observations, verdicts, the compact timeline, the failures."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

# --------------------------------------------------------------------------------------------
# Data returned by a wait
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observation:
    """What one probe of one node returned during one attempt."""

    node: str
    value: Any
    """The probe's return value; None when the probe failed."""
    error: str | None
    """``"<ExceptionType>: <message>"`` when the probe raised, else None."""
    elapsed_s: float
    """Seconds since the wait started, taken when the probe finished."""

    @property
    def ok(self) -> bool:
        """True when the probe answered (whatever the answer)."""
        return self.error is None


@dataclass(slots=True)
class Verdict:
    """The judge's reading of one attempt."""

    done: bool
    summary: str
    """One short phrase, e.g. ``"2 of 3 nodes agree"``."""
    lagging: list[str] = field(default_factory=list)
    """Nodes not yet in the wanted state (or deviating from it, for ``consistently``)."""
    terminal: str | None = None
    """Set when waiting longer cannot help: the wait fails at once with this reason."""


Judge = Callable[[dict[str, Observation]], Verdict]


@dataclass(slots=True)
class TimelineRow:
    """One or more consecutive attempts that saw exactly the same thing."""

    first_attempt: int
    last_attempt: int
    first_s: float
    last_s: float
    cells: dict[str, str]
    """Per node: ``describe(value)`` or the error text."""
    errors: frozenset[str]
    """Nodes whose cell is an error rather than a value."""
    summary: str
    """The verdict summary of these attempts."""

    @property
    def count(self) -> int:
        """How many attempts this row stands for."""
        return self.last_attempt - self.first_attempt + 1

    def same_as(self, cells: Mapping[str, str], errors: frozenset[str], summary: str) -> bool:
        """True when an attempt with these contents collapses into this row."""
        return self.cells == cells and self.errors == errors and self.summary == summary


@dataclass(slots=True)
class Timeline:
    """Compact history of a wait: identical consecutive attempts collapse into one row.

    Values that change at every poll (a growing counter) would still make one row per poll,
    so beyond ``max_rows`` the middle of the history is dropped and counted in ``elided_rows``
    (the beginning and the end are what explain a failure).
    """

    rows: list[TimelineRow] = field(default_factory=list)
    max_rows: int = 200
    elided_rows: int = 0

    def add(
        self,
        attempt: int,
        elapsed_s: float,
        observations: Mapping[str, Observation],
        summary: str,
        describe: Callable[[Any], str],
    ) -> None:
        """Record one attempt, merging it into the last row when nothing changed."""
        cells: dict[str, str] = {}
        errors: set[str] = set()
        for node, observation in observations.items():
            if observation.error is not None:
                cells[node] = observation.error
                errors.add(node)
            else:
                cells[node] = _safe_describe(describe, observation.value)
        frozen_errors = frozenset(errors)
        if self.rows and self.rows[-1].same_as(cells, frozen_errors, summary):
            last = self.rows[-1]
            last.last_attempt = attempt
            last.last_s = elapsed_s
            return
        self.rows.append(
            TimelineRow(attempt, attempt, elapsed_s, elapsed_s, cells, frozen_errors, summary)
        )
        if len(self.rows) > self.max_rows:
            # Keep the first quarter (how it started) and the rest (how it ended).
            del self.rows[max(1, self.max_rows // 4)]
            self.elided_rows += 1

    @property
    def attempts(self) -> int:
        """Attempt number of the last recorded attempt (0 when empty)."""
        return self.rows[-1].last_attempt if self.rows else 0

    def __iter__(self) -> Iterator[TimelineRow]:
        """Iterate over the rows, oldest first."""
        return iter(self.rows)

    def __len__(self) -> int:
        """Number of rows (not attempts)."""
        return len(self.rows)


@dataclass(slots=True)
class WaitResult:
    """Everything a wait saw: enough to log a report without polling again."""

    what: str
    attempts: int
    elapsed_s: float
    observations: dict[str, Observation]
    """The final attempt, per node."""
    verdict: Verdict
    """The judge's reading of the final attempt."""
    timeline: Timeline

    def values(self) -> dict[str, Any]:
        """Final values per node (None for nodes whose probe failed)."""
        return {node: obs.value for node, obs in self.observations.items()}


class ConvergenceFailure(AssertionError):
    """A wait or a ``consistently`` check failed; ``result`` holds what was observed."""

    def __init__(self, message: str, result: WaitResult) -> None:
        """Keep the one-line message for Robot and the data for the report."""
        super().__init__(message)
        self.message = message
        self.result = result


class WaitTimeout(ConvergenceFailure):
    """The deadline passed before the judge said done."""


class WaitTerminal(ConvergenceFailure):
    """The judge saw a state waiting cannot fix (e.g. a node decommissioned)."""


class ConsistencyViolation(ConvergenceFailure):
    """A property that had to hold for a while stopped holding."""


def short_repr(value: Any, limit: int = 60) -> str:
    """Compact one-line text of ``value`` for timeline cells (strings unquoted)."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, Mapping | list | tuple):
        try:
            text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
        except (TypeError, ValueError):
            text = repr(value)
    else:
        text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _safe_describe(describe: Callable[[Any], str], value: Any) -> str:
    """A broken ``describe`` must not hide the wait's real outcome."""
    try:
        return str(describe(value))
    except Exception:  # describe is caller code: fall back to a repr
        return short_repr(value)
