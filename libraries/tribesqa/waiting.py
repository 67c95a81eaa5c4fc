"""Convergence waits: poll every node concurrently, judge, fail fast, keep a compact timeline.

Pure Python, no network and no Robot logging: the functions here return data (``WaitResult``)
or raise ``ConvergenceFailure`` carrying the same data, and the keyword library decides what
to log (like Browser's assertion polling, only the final state and one compact timeline end up
in log.html, never one entry per poll).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

__all__ = [
    "SYSTEM_CLOCK",
    "Clock",
    "ConsistencyViolation",
    "ConvergenceFailure",
    "FakeClock",
    "Judge",
    "Observation",
    "SystemClock",
    "Timeline",
    "TimelineRow",
    "Verdict",
    "WaitResult",
    "WaitTerminal",
    "WaitTimeout",
    "all_nodes_agree",
    "all_nodes_satisfy",
    "consistently",
    "poll_until",
    "short_repr",
]

T = TypeVar("T")

# Float slack when comparing clock readings with the deadline, so that 50 * 0.2 s counts as
# "at the deadline" although the sum of floats lands a hair short of it.
_EPSILON_S = 1e-9


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


# --------------------------------------------------------------------------------------------
# Polling
# --------------------------------------------------------------------------------------------


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


class _Poller(Generic[T]):
    """Runs attempts: every node probed concurrently on one executor shared by all attempts."""

    def __init__(
        self,
        nodes: Sequence[str],
        probe: Callable[[str], T],
        *,
        clock: Clock,
        max_workers: int,
        probe_timeout_s: float | None,
    ) -> None:
        if not nodes:
            raise ValueError("a wait needs at least one node")
        if len(set(nodes)) != len(nodes):
            raise ValueError(f"duplicate node names: {list(nodes)}")
        self.nodes = list(nodes)
        self.probe = probe
        self.clock = clock
        self.probe_timeout_s = probe_timeout_s
        self.start = clock.now()
        self._executor = ThreadPoolExecutor(
            max_workers=max(1, min(max_workers, len(self.nodes))),
            thread_name_prefix="tribesqa-probe",
        )
        # A probe still running from an earlier attempt (only possible with probe_timeout_s)
        # is awaited again instead of stacking a second call to the same stuck node.
        self._in_flight: dict[str, Future[Observation]] = {}

    def _run_probe(self, node: str) -> Observation:
        """Call the probe; any exception becomes an error observation, never propagates."""
        try:
            value = self.probe(node)
        except Exception as exc:  # a failing node is data, not a crash
            message = " ".join(str(exc).split()) or "(no message)"
            return Observation(
                node, None, f"{type(exc).__name__}: {message}", self.clock.now() - self.start
            )
        return Observation(node, value, None, self.clock.now() - self.start)

    def attempt(self) -> dict[str, Observation]:
        """Probe every node at once and return their observations in node order."""
        futures: dict[str, Future[Observation]] = {}
        for node in self.nodes:
            pending = self._in_flight.get(node)
            futures[node] = (
                pending
                if pending is not None and not pending.done()
                else self._executor.submit(self._run_probe, node)
            )
        wait(futures.values(), timeout=self.probe_timeout_s)
        observations: dict[str, Observation] = {}
        self._in_flight = {}
        for node, future in futures.items():
            if future.done():
                observations[node] = future.result()
            else:
                self._in_flight[node] = future
                observations[node] = Observation(
                    node,
                    None,
                    f"ProbeTimeout: no answer within {self.probe_timeout_s:g} s",
                    self.clock.now() - self.start,
                )
        return observations

    def elapsed(self) -> float:
        """Seconds since the wait started."""
        return self.clock.now() - self.start

    def close(self) -> None:
        """Do not wait for stuck probes: the failure must be reported now."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def _next_start(start: float, interval_s: float, attempts_done: int, now: float) -> float:
    """Start of the next attempt on the fixed grid ``start + k * interval_s``.

    Attempts start every ``interval_s`` whatever the probes cost; when an attempt overran its
    slot, the next one waits for the next grid point instead of bursting to catch up.
    """
    slot = attempts_done
    candidate = start + slot * interval_s
    if candidate < now - _EPSILON_S:
        slot = math.ceil((now - start) / interval_s - _EPSILON_S)
        candidate = start + slot * interval_s
    return candidate


def _lagging_text(lagging: Sequence[str]) -> str:
    return ", ".join(lagging) if lagging else "none"


def _timeout_message(what: str, result: WaitResult, nodes_label: str) -> str:
    verdict = result.verdict
    return (
        f"{what}: {verdict.summary}; {nodes_label}: {_lagging_text(verdict.lagging)} "
        f"after {result.elapsed_s:.1f} s ({result.attempts} polls)"
    )


def _terminal_message(what: str, result: WaitResult) -> str:
    return f"{what}: {result.verdict.terminal} (after {result.elapsed_s:.1f} s)"


def _check_timing(name: str, total_s: float, interval_s: float) -> None:
    if total_s < 0:
        raise ValueError(f"{name} must be >= 0, got {total_s}")
    if interval_s <= 0:
        raise ValueError(f"interval_s must be > 0, got {interval_s}")


def poll_until(
    nodes: Sequence[str],
    probe: Callable[[str], T],
    judge: Judge,
    *,
    what: str,
    timeout_s: float,
    interval_s: float,
    clock: Clock = SYSTEM_CLOCK,
    describe: Callable[[T], str] = short_repr,
    max_workers: int = 32,
    probe_timeout_s: float | None = None,
) -> WaitResult:
    """Poll all ``nodes`` concurrently until ``judge`` says done.

    Each attempt calls ``probe(node)`` for every node at once (a probe exception becomes an
    ``Observation`` with ``error`` set), then ``judge(observations)``. Attempts start every
    ``interval_s``; there is always a first attempt and a last one at or after the deadline.

    Returns the ``WaitResult`` of the first attempt judged done. Raises ``WaitTerminal`` as soon
    as a verdict carries ``terminal``, and ``WaitTimeout`` after the final attempt, both with a
    one-line message, e.g. ``"membership converged: node ovh-1 still syncing; 2 of 3 nodes
    agree; lagging: ovh-1 after 10.0 s (51 polls)"``.

    ``probe_timeout_s`` (real seconds) bounds how long one attempt waits for its probes; a node
    still busy then is reported as an error and its probe is awaited again next attempt.
    """
    _check_timing("timeout_s", timeout_s, interval_s)
    poller = _Poller(
        nodes, probe, clock=clock, max_workers=max_workers, probe_timeout_s=probe_timeout_s
    )
    deadline = poller.start + timeout_s
    timeline = Timeline()
    attempts = 0
    try:
        while True:
            attempt_start = clock.now()
            attempts += 1
            observations = poller.attempt()
            verdict = judge(observations)
            elapsed = poller.elapsed()
            timeline.add(attempts, elapsed, observations, verdict.summary, describe)
            result = WaitResult(what, attempts, elapsed, observations, verdict, timeline)
            if verdict.terminal:
                raise WaitTerminal(_terminal_message(what, result), result)
            if verdict.done:
                return result
            if attempt_start >= deadline - _EPSILON_S:
                raise WaitTimeout(_timeout_message(what, result, "lagging"), result)
            now = clock.now()
            next_start = min(_next_start(poller.start, interval_s, attempts, now), deadline)
            clock.sleep(max(0.0, next_start - now))
    finally:
        poller.close()


def consistently(
    nodes: Sequence[str],
    probe: Callable[[str], T],
    judge: Judge,
    *,
    what: str,
    duration_s: float,
    interval_s: float,
    clock: Clock = SYSTEM_CLOCK,
    describe: Callable[[T], str] = short_repr,
    max_workers: int = 32,
    probe_timeout_s: float | None = None,
) -> WaitResult:
    """Check that ``judge`` says done at every attempt for ``duration_s`` ("stays X for D s").

    Same pacing as ``poll_until`` (first attempt at once, last at or after the end). Raises
    ``ConsistencyViolation`` at the first attempt not judged done, with the same one-line
    shape (``"...; deviating: <nodes> after <t> s (<n> polls)"``), or ``WaitTerminal`` when
    the verdict is terminal. Returns the final ``WaitResult`` when it held throughout.
    """
    _check_timing("duration_s", duration_s, interval_s)
    poller = _Poller(
        nodes, probe, clock=clock, max_workers=max_workers, probe_timeout_s=probe_timeout_s
    )
    end = poller.start + duration_s
    timeline = Timeline()
    attempts = 0
    try:
        while True:
            attempt_start = clock.now()
            attempts += 1
            observations = poller.attempt()
            verdict = judge(observations)
            elapsed = poller.elapsed()
            timeline.add(attempts, elapsed, observations, verdict.summary, describe)
            result = WaitResult(what, attempts, elapsed, observations, verdict, timeline)
            if verdict.terminal:
                raise WaitTerminal(_terminal_message(what, result), result)
            if not verdict.done:
                raise ConsistencyViolation(_timeout_message(what, result, "deviating"), result)
            if attempt_start >= end - _EPSILON_S:
                return result
            now = clock.now()
            next_start = min(_next_start(poller.start, interval_s, attempts, now), end)
            clock.sleep(max(0.0, next_start - now))
    finally:
        poller.close()


# --------------------------------------------------------------------------------------------
# Ready-made judges
# --------------------------------------------------------------------------------------------


def all_nodes_satisfy(
    is_ok: Callable[[Any], bool],
    *,
    label: str = "ok",
    terminal: Callable[[str, Any], str | None] | None = None,
) -> Judge:
    """Judge: done when every node answered and ``is_ok(value)`` holds for each.

    Summary ``"2 of 3 nodes <label>"``; unreachable nodes count as lagging. ``terminal(node,
    value)`` may return a reason that makes the wait fail at once (e.g. "decommissioned").
    """

    def judge(observations: dict[str, Observation]) -> Verdict:
        lagging: list[str] = []
        for node, observation in observations.items():
            if observation.error is not None:
                lagging.append(node)
                continue
            if terminal is not None:
                reason = terminal(node, observation.value)
                if reason:
                    return Verdict(False, reason, [node], terminal=reason)
            if not is_ok(observation.value):
                lagging.append(node)
        good = len(observations) - len(lagging)
        return Verdict(not lagging, f"{good} of {len(observations)} nodes {label}", lagging)

    return judge


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def all_nodes_agree(key: Callable[[Any], Any] | None = None) -> Judge:
    """Judge: done when every node answered and all ``key(value)`` are equal.

    The reference is what most nodes say (ties: the first node in order); summary
    ``"2 of 3 nodes agree"``; lagging = unreachable nodes and those off the reference.
    """

    def judge(observations: dict[str, Observation]) -> Verdict:
        groups: dict[str, list[str]] = {}
        unreachable: list[str] = []
        for node, observation in observations.items():
            if observation.error is not None:
                unreachable.append(node)
                continue
            value = observation.value if key is None else key(observation.value)
            groups.setdefault(_canonical(value), []).append(node)
        # max() keeps the first of equal counts, and dicts keep first-seen order.
        majority = max(groups.values(), key=len) if groups else []
        lagging = [node for node in observations if node not in majority]
        summary = f"{len(majority)} of {len(observations)} nodes agree"
        if unreachable:
            summary += f"; unreachable: {', '.join(unreachable)}"
        return Verdict(not lagging, summary, lagging)

    return judge
