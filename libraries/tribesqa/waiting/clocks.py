"""Time sources of the waits: the real clock and a fake one that never really sleeps."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

# --------------------------------------------------------------------------------------------
# Clocks
# --------------------------------------------------------------------------------------------


class Clock(Protocol):
    """Time source of a wait; injected so unit tests never really sleep."""

    def now(self) -> float:
        """Monotonic seconds (only differences are meaningful)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds``."""
        ...

    def wall(self) -> datetime:
        """Current wall-clock time, timezone-aware UTC."""
        ...


class SystemClock:
    """The real clock: ``time.monotonic`` / ``time.sleep`` / ``datetime.now(UTC)``."""

    def now(self) -> float:
        """Monotonic seconds."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Really sleep (negative durations are ignored)."""
        if seconds > 0:
            time.sleep(seconds)

    def wall(self) -> datetime:
        """Aware UTC now."""
        return datetime.now(UTC)


SYSTEM_CLOCK: Clock = SystemClock()


class FakeClock:
    """Deterministic clock for tests: ``sleep`` advances time instantly.

    Thread-safe, because probes run in worker threads and may read or advance it.
    ``sleeps`` records every requested sleep so tests can assert on the pacing.
    """

    def __init__(
        self,
        start: float = 1000.0,
        wall_start: datetime = datetime(2025, 1, 1, tzinfo=UTC),
    ) -> None:
        """Start at monotonic ``start`` seconds and wall time ``wall_start`` (must be aware)."""
        if wall_start.tzinfo is None:
            raise ValueError("wall_start must be timezone-aware")
        self._start = start
        self._now = start
        self._wall_start = wall_start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> float:
        """Current fake monotonic time."""
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        """Advance time by ``seconds`` without blocking."""
        with self._lock:
            self.sleeps.append(seconds)
            self._now += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        """Move time forward, e.g. to simulate a slow probe."""
        with self._lock:
            self._now += max(0.0, seconds)

    def wall(self) -> datetime:
        """Wall time that moves in lock-step with ``now``."""
        with self._lock:
            return (self._wall_start + timedelta(seconds=self._now - self._start)).astimezone(UTC)
