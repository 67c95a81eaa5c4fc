"""The one wait engine: poll every node concurrently, judge each attempt, fail fast on settled
evidence, keep a compact timeline; ``poll_until`` (until done) and ``consistently`` (stays done)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Generic, TypeVar

from tribesqa.waiting.clocks import SYSTEM_CLOCK, Clock
from tribesqa.waiting.progress import Progress, progress_for
from tribesqa.waiting.results import (
    ConsistencyViolation,
    Judge,
    Observation,
    Timeline,
    WaitResult,
    WaitTerminal,
    WaitTimeout,
    short_repr,
)

T = TypeVar("T")

# Float slack when comparing clock readings with the deadline, so that 50 * 0.2 s counts as
# "at the deadline" although the sum of floats lands a hair short of it.
_EPSILON_S = 1e-9


# --------------------------------------------------------------------------------------------
# Polling
# --------------------------------------------------------------------------------------------


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


def _end(report: Progress | None, outcome: str, summary: str, elapsed: float) -> None:
    if report is not None:
        report.end(outcome, summary, elapsed)


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
    progress: Progress | None = None,
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

    ``progress`` (default: the installed factory's, ``waiting.progress``) hears the start, each
    attempt's summary and the end, for console lines on long waits.
    """
    _check_timing("timeout_s", timeout_s, interval_s)
    poller = _Poller(
        nodes, probe, clock=clock, max_workers=max_workers, probe_timeout_s=probe_timeout_s
    )
    deadline = poller.start + timeout_s
    timeline = Timeline()
    attempts = 0
    report = progress if progress is not None else progress_for(what, timeout_s, interval_s)
    if report is not None:
        report.start()
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
                _end(report, "failed", verdict.terminal, elapsed)
                raise WaitTerminal(_terminal_message(what, result), result)
            if verdict.done:
                _end(report, "done", verdict.summary, elapsed)
                return result
            if attempt_start >= deadline - _EPSILON_S:
                _end(report, "timed out", verdict.summary, elapsed)
                raise WaitTimeout(_timeout_message(what, result, "lagging"), result)
            if report is not None:
                report.observe(verdict.summary, elapsed)
            now = clock.now()
            next_start = min(_next_start(poller.start, interval_s, attempts, now), deadline)
            clock.sleep(max(0.0, next_start - now))
    finally:
        if report is not None:
            report.stop(poller.elapsed())
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
    progress: Progress | None = None,
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
    report = progress if progress is not None else progress_for(what, duration_s, interval_s)
    if report is not None:
        report.start()
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
                _end(report, "failed", verdict.terminal, elapsed)
                raise WaitTerminal(_terminal_message(what, result), result)
            if not verdict.done:
                _end(report, "broke", verdict.summary, elapsed)
                raise ConsistencyViolation(_timeout_message(what, result, "deviating"), result)
            if attempt_start >= end - _EPSILON_S:
                _end(report, "held", verdict.summary, elapsed)
                return result
            if report is not None:
                report.observe(verdict.summary, elapsed)
            now = clock.now()
            next_start = min(_next_start(poller.start, interval_s, attempts, now), end)
            clock.sleep(max(0.0, next_start - now))
    finally:
        if report is not None:
            report.stop(poller.elapsed())
        poller.close()
