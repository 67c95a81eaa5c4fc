"""The lifecycle matrix itself: green against the simulator, green through the real-fleet strategy,
and red (with a readable message naming the node and the property) for every catalogue fault.

The catch table (fault x suite) is printed at the end of the run.
"""

from __future__ import annotations

import re

import pytest

from tests.matrix.conftest import RESULTS, run_matrix
from tribes_sim.faults import CATALOGUE

pytestmark = pytest.mark.slow

NODE_NAME = re.compile(r"\b(hetzner|scaleway|ovh)-\d+\b")

# What a failure message must talk about when the fault is on (the violated property).
PROPERTY_WORDS: dict[str, re.Pattern[str]] = {
    "stuck-syncing": re.compile(r"syncing", re.I),
    "decommission-deletes-row": re.compile(r"decommission|missing|row", re.I),
    "rollback-keeps-tables": re.compile(r"table|migration", re.I),
    "one-way-sync": re.compile(r"event|case|plugin state", re.I),
    "heal-loses-writes": re.compile(r"case|plugin state|counter", re.I),
    "wrong-transport-address": re.compile(r"sync endpoint|transport", re.I),
    "stale-activated-at": re.compile(r"activated_at|activation", re.I),
    "selected-not-running": re.compile(r"selected|running", re.I),
    "replay-accepted": re.compile(r"replay", re.I),
    "counter-not-merged": re.compile(r"counter", re.I),
}

CATCH_TABLE: dict[tuple[str, str], str] = {}


def test_every_fault_has_a_property_pattern() -> None:
    assert set(PROPERTY_WORDS) == set(CATALOGUE)


def test_matrix_passes_against_the_simulator() -> None:
    run = run_matrix(RESULTS / "matrix-sim")
    assert run.failures == {}, "the matrix failed with no fault switched on:\n" + "\n".join(
        f"{name}: {message}" for name, message in run.failures.items()
    )
    assert run.passed >= 20, f"only {run.passed} tests ran"


def test_matrix_passes_through_the_real_fleet_strategy() -> None:
    run = run_matrix(RESULTS / "matrix-sim-as-real", target="variables/sim-as-real.yaml")
    assert run.failures == {}, "the matrix failed through the real strategy:\n" + "\n".join(
        f"{name}: {message}" for name, message in run.failures.items()
    )
    assert run.passed >= 20, f"only {run.passed} tests ran"


@pytest.mark.parametrize(
    ("fault", "suite"),
    [(fault.name, suite) for fault in CATALOGUE.values() for suite in fault.caught_by],
)
def test_fault_turns_its_suite_red(fault: str, suite: str) -> None:
    run = run_matrix(RESULTS / "teeth" / f"{fault}--{suite}", suites=[suite], faults=fault)
    readable = {
        name: message
        for name, message in run.failures.items()
        if NODE_NAME.search(message)
        and PROPERTY_WORDS[fault].search(message)
        and "Traceback" not in message
    }
    CATCH_TABLE[(fault, suite)] = (
        f"caught: {next(iter(readable.values()))[:110]}"
        if readable
        else f"NOT CAUGHT ({run.failed} failed)"
    )
    assert run.failures, f"fault {fault} did not turn suite {suite} red"
    assert readable, (
        f"fault {fault} failed suite {suite}, but no failure names a node and the property "
        f"({PROPERTY_WORDS[fault].pattern}):\n"
        + "\n".join(f"{n}: {m}" for n, m in run.failures.items())
    )
