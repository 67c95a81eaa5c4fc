"""Console progress of a long wait: a line when it starts, one per change, one at the end.

A real-fleet wait may take 900-3600 s; without a word on the console nobody can tell a slow
fleet from a stuck run. ``WaitProgress`` writes one line when the wait starts, one each time the
judge's summary changes (never one per poll), and one when it ends::

    membership converged: waiting up to 900 s (poll 5 s)
    membership converged: 2 of 3 nodes agree (12 s of 900 s)
    membership converged: done: 3 of 3 nodes agree (47 s of 900 s)

Pure Python like the rest of ``waiting``: the engine calls the reporter, the caller decides
where the lines go (the library writes them to Robot's console) and which waits get one
(``set_progress_factory``: the library's factory gives one to waits of at least
``progress_after`` seconds, and none under pabot unless asked).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Progress(Protocol):
    """What the engine tells a reporter (elapsed seconds since the wait started)."""

    def start(self) -> None: ...

    def observe(self, summary: str, elapsed_s: float) -> None: ...

    def end(self, outcome: str, summary: str, elapsed_s: float) -> None: ...

    def stop(self, elapsed_s: float) -> None: ...


class WaitProgress:
    """Lines for one wait, written through ``write`` (one call per line)."""

    def __init__(
        self, what: str, timeout_s: float, interval_s: float, write: Callable[[str], None]
    ) -> None:
        self.what = what
        self.timeout_s = timeout_s
        self.interval_s = interval_s
        self.write = write
        self._last: str | None = None
        self._ended = False

    def _of(self, elapsed_s: float) -> str:
        return f"({elapsed_s:.0f} s of {self.timeout_s:g} s)"

    def start(self) -> None:
        self.write(f"{self.what}: waiting up to {self.timeout_s:g} s (poll {self.interval_s:g} s)")

    def observe(self, summary: str, elapsed_s: float) -> None:
        """After an attempt that did not end the wait: a line only when the summary changed."""
        if summary != self._last:
            self._last = summary
            self.write(f"{self.what}: {summary} {self._of(elapsed_s)}")

    def end(self, outcome: str, summary: str, elapsed_s: float) -> None:
        """The wait's last line: ``done``, ``held``, ``timed out``, ``failed``..."""
        self._ended = True
        self.write(f"{self.what}: {outcome}: {summary} {self._of(elapsed_s)}")

    def stop(self, elapsed_s: float) -> None:
        """The wait left without an outcome (an error in a judge, an interrupt): say so once."""
        if not self._ended:
            self.end("stopped", self._last or "no attempt judged", elapsed_s)


# what, timeout_s, interval_s -> a reporter for this wait, or None (no lines).
ProgressFactory = Callable[[str, float, float], "Progress | None"]

_factory: ProgressFactory | None = None


def set_progress_factory(factory: ProgressFactory | None) -> None:
    """Install who decides which waits report progress (the keyword library does, at import);
    None: no wait reports."""
    global _factory
    _factory = factory


def progress_for(what: str, timeout_s: float, interval_s: float) -> Progress | None:
    """The installed factory's reporter for a wait, if any."""
    return _factory(what, timeout_s, interval_s) if _factory is not None else None
