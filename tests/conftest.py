"""Session-wide test plumbing: prints the fault catch table after a run that built one."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import settings


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


# Property tests: no per-example deadline (a shared 2-core machine stalls any process now and
# then, which is not a failure of the property), and fixed examples under CI so its verdict
# is repeatable; locally every run explores new examples.
settings.register_profile("tribes", deadline=None, derandomize=bool(os.environ.get("CI")))
settings.load_profile("tribes")
# Mutation testing (`make mutation`, `--hypothesis-profile=mutation`): the same fixed examples for
# every mutant and no example database, so one mutant's failing example is not replayed on the next.
settings.register_profile("mutation", deadline=None, derandomize=True, database=None)
