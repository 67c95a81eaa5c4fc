"""Convergence waits: poll every node concurrently, judge, fail fast, keep a compact timeline.

Pure Python, no network and no Robot logging: the functions here return data (``WaitResult``)
or raise ``ConvergenceFailure`` carrying the same data, and the keyword library decides what
to log (like Browser's assertion polling, only the final state and one compact timeline end up
in log.html, never one entry per poll). Every wait of the library goes through ``engine``.
"""

from tribesqa.waiting.clocks import SYSTEM_CLOCK, Clock, FakeClock, SystemClock
from tribesqa.waiting.engine import consistently, poll_until
from tribesqa.waiting.judges import all_nodes_agree, all_nodes_satisfy
from tribesqa.waiting.progress import Progress, WaitProgress, set_progress_factory
from tribesqa.waiting.results import (
    ConsistencyViolation,
    ConvergenceFailure,
    Judge,
    Observation,
    Timeline,
    TimelineRow,
    Verdict,
    WaitResult,
    WaitTerminal,
    WaitTimeout,
    short_repr,
)

__all__ = [
    "SYSTEM_CLOCK",
    "Clock",
    "ConsistencyViolation",
    "ConvergenceFailure",
    "FakeClock",
    "Judge",
    "Observation",
    "Progress",
    "SystemClock",
    "Timeline",
    "TimelineRow",
    "Verdict",
    "WaitProgress",
    "WaitResult",
    "WaitTerminal",
    "WaitTimeout",
    "all_nodes_agree",
    "all_nodes_satisfy",
    "consistently",
    "poll_until",
    "set_progress_factory",
    "short_repr",
]
