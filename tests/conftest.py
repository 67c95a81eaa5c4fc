"""Session-wide test plumbing: prints the fault catch table after a run that built one."""

from __future__ import annotations

from typing import Any


def pytest_terminal_summary(terminalreporter: Any) -> None:
    try:
        from tests.matrix.test_lifecycle_matrix import CATCH_TABLE
    except ImportError:
        return
    if not CATCH_TABLE:
        return
    terminalreporter.section("fault catch table (fault x suite)")
    for (fault, suite), verdict in sorted(CATCH_TABLE.items()):
        terminalreporter.write_line(f"{fault:<26} {suite:<42} {verdict}")
