"""How long and how often one wait runs: the timeouts table's entry, or the keyword call's own
``timeout=`` / ``poll=``, with a note of where each value came from (for the failure message)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from tribesqa.config import DEFAULT_TIMEOUTS_FILE, TimeoutProfile
from tribesqa.diagnostics import TribesFailure

POLL_ENTRY = "poll_interval"


@dataclass(frozen=True, slots=True)
class WaitTiming:
    """One wait's deadline and poll interval, and where they came from."""

    timeout_s: float
    interval_s: float
    timeout_note: str
    """e.g. ``timeout 2 s from timeout=`` or ``timeout 20 s from node_active (sim) of ...``."""
    poll_note: str
    """e.g. ``poll 0.1 s from poll_interval (sim) of variables/timeouts.yaml``."""

    @property
    def origin(self) -> str:
        """Both notes, for a failure message: the timeout used and where it came from."""
        return f"{self.timeout_note}, {self.poll_note}"


@dataclass(frozen=True, slots=True)
class TimeoutTable:
    """The column of the timeouts table a target uses, with its file and column names."""

    values: TimeoutProfile
    profile: str
    path: Path

    def where(self, entry: str) -> str:
        name = "variables/timeouts.yaml" if self.path == DEFAULT_TIMEOUTS_FILE else str(self.path)
        return f"{entry} ({self.profile}) of {name}"

    def timing(
        self,
        entry: str,
        timeout: timedelta | float | None = None,
        poll: timedelta | float | None = None,
        *,
        keyword: str,
        timeout_arg: str = "timeout",
    ) -> WaitTiming:
        """The table's ``entry`` and ``poll_interval``, each overridden by a value given to the call.

        ``timeout_arg`` names the call's argument in the origin note (``duration`` for a
        "stays" keyword). Raises :class:`TribesFailure` naming the keyword and argument when a
        given value is negative (timeout) or not positive (poll).
        """
        timeout_s = _seconds(timeout, keyword, timeout_arg, allow_zero=True)
        poll_s = _seconds(poll, keyword, "poll", allow_zero=False)
        table_timeout = float(getattr(self.values, entry))
        table_poll = float(self.values.poll_interval)
        used_timeout = table_timeout if timeout_s is None else timeout_s
        used_poll = table_poll if poll_s is None else poll_s
        timeout_from = self.where(entry) if timeout_s is None else f"{timeout_arg}="
        poll_from = self.where(POLL_ENTRY) if poll_s is None else "poll="
        return WaitTiming(
            used_timeout,
            used_poll,
            f"{timeout_arg} {used_timeout:g} s from {timeout_from}",
            f"poll {used_poll:g} s from {poll_from}",
        )


def _seconds(
    value: timedelta | float | None, keyword: str, argument: str, *, allow_zero: bool
) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0 or (seconds == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise TribesFailure(f"{keyword}: {argument}= must be {bound} seconds, got {seconds:g}")
    return seconds
