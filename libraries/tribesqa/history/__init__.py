"""The run history (every observation and operation of a suite) and the invariants over it."""

from tribesqa.history.checker import (
    INVARIANTS,
    HistoryCheckError,
    check,
    describe_record,
    failure_message,
)
from tribesqa.history.invariants import Violation
from tribesqa.history.recorder import (
    HISTORY_FILE,
    OPERATION_METHODS,
    HistoryRecorder,
    history_enabled,
    read_history,
)

__all__ = [
    "HISTORY_FILE",
    "INVARIANTS",
    "OPERATION_METHODS",
    "HistoryCheckError",
    "HistoryRecorder",
    "Violation",
    "check",
    "describe_record",
    "failure_message",
    "history_enabled",
    "read_history",
]
