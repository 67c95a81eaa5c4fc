"""The fault/heal registry: heals registered before injection, run newest first at test end.

Fake nemesis objects record every call; no fleet is started.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tribesqa.config import load_timeouts
from tribesqa.context import LibraryContext
from tribesqa.diagnostics import TribesFailure
from tribesqa.keywords.fault_keywords import FaultKeywords
from tribesqa.library import TribesLibrary
from tribesqa.targets.base import Nemesis
from tribesqa.timing import DEFAULT_TIMEOUTS_FILE, TimeoutTable


class FakeNemesis(Nemesis):
    def __init__(self, fail_on: set[str] | None = None) -> None:
        self.calls: list[str] = []
        self.fail_on = fail_on or set()

    def _do(self, call: str) -> None:
        self.calls.append(call)
        if call in self.fail_on:
            raise AssertionError(f"{call} refused by the fake")

    def partition(self, node: str, peers: list[str]) -> None:
        self._do(f"partition {node} {','.join(peers) or '*'}")

    def heal_all(self) -> None:
        self._do("heal")

    def crash(self, node: str) -> None:
        self._do(f"crash {node}")

    def restart(self, node: str) -> None:
        self._do(f"restart {node}")

    def outage(self, node: str, active: bool) -> None:
        self._do(f"outage {node} {'on' if active else 'off'}")


class FakeClient:
    """``healthz`` answers from a script; the last answer repeats."""

    def __init__(self, answers: list[int]) -> None:
        self.answers = list(answers)
        self.polls = 0

    def healthz(self) -> tuple[int, Any]:
        self.polls += 1
        status = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return status, {"status": "ok" if status == 200 else "starting"}

    def close(self) -> None:
        pass


class FakeTarget:
    kind = "sim"
    guards_destructive_acts = False  # a private simulated fleet, like SimTarget

    def __init__(self, nemesis: FakeNemesis) -> None:
        self.nemesis = nemesis
        self.legion = SimpleNamespace(list_nodes=list)


def wire(ctx: LibraryContext, nemesis: FakeNemesis, health: list[int] | None = None) -> FakeClient:
    ctx.target = FakeTarget(nemesis)  # type: ignore[assignment]
    ctx.timeouts = load_timeouts("sim").model_copy(
        update={"node_ready": 0.5, "poll_interval": 0.01}
    )
    ctx.timeouts_table = TimeoutTable(ctx.timeouts, "sim", DEFAULT_TIMEOUTS_FILE)
    client = FakeClient(health or [200])
    ctx.client = lambda node: client  # type: ignore[method-assign]
    return client


@pytest.fixture
def ctx() -> LibraryContext:
    return LibraryContext()


def test_heal_is_registered_before_the_fault_is_injected(ctx: LibraryContext) -> None:
    nemesis = FakeNemesis(fail_on={"crash n1"})
    wire(ctx, nemesis)
    faults = FaultKeywords(ctx)
    with pytest.raises(AssertionError, match="crash n1 refused"):
        faults.crash_node("n1")
    assert [h.description for h in ctx.heals] == ["restart crashed node n1"]
    assert ctx.run_heals() == []
    assert nemesis.calls == ["crash n1", "restart n1"]


def test_heals_run_newest_first_and_clear_the_registry(ctx: LibraryContext) -> None:
    nemesis = FakeNemesis()
    wire(ctx, nemesis)
    faults = FaultKeywords(ctx)
    faults.partition_node_from_peers("n1", "n2")
    faults.start_publish_outage("n2")
    faults.crash_node("n3")
    nemesis.calls.clear()
    faults.heal_all_registered_faults()
    assert nemesis.calls == ["restart n3", "outage n2 off", "heal"]
    assert ctx.heals == []
    faults.registered_heals_should_be_empty()


def test_a_failing_heal_does_not_stop_the_others(ctx: LibraryContext) -> None:
    nemesis = FakeNemesis(fail_on={"outage n2 off"})
    wire(ctx, nemesis)
    faults = FaultKeywords(ctx)
    faults.partition_node_from_peers("n1")
    faults.start_publish_outage("n2")
    faults.crash_node("n3")
    nemesis.calls.clear()
    with pytest.raises(TribesFailure) as failure:
        faults.heal_all_registered_faults()
    assert nemesis.calls == ["restart n3", "outage n2 off", "heal"]
    assert "1 of 3 heal(s) failed" in str(failure.value)
    assert "stop publish outage on n2" in str(failure.value)
    assert ctx.heals == []


def test_registered_heals_should_be_empty_lists_what_is_pending(ctx: LibraryContext) -> None:
    wire(ctx, FakeNemesis())
    faults = FaultKeywords(ctx)
    faults.partition_node_from_peers("n1", "n2", "n3")
    with pytest.raises(
        TribesFailure, match=r"1 heal\(s\) still registered: heal partition of n1 from n2, n3"
    ):
        faults.registered_heals_should_be_empty()


def test_partitioning_a_node_from_itself_is_refused(ctx: LibraryContext) -> None:
    nemesis = FakeNemesis()
    wire(ctx, nemesis)
    with pytest.raises(TribesFailure, match="cannot partition n1 from itself"):
        FaultKeywords(ctx).partition_node_from_peers("n1", "n1")
    assert nemesis.calls == [] and ctx.heals == []


def test_manual_heals_retire_only_what_they_satisfied(ctx: LibraryContext) -> None:
    nemesis = FakeNemesis()
    wire(ctx, nemesis)
    faults = FaultKeywords(ctx)
    faults.partition_node_from_peers("n1")
    faults.partition_node_from_peers("n2", "n3")
    faults.start_publish_outage("n1")
    faults.start_publish_outage("n2")
    faults.crash_node("n3")
    faults.heal_all_partitions()
    faults.stop_publish_outage("n1")
    faults.restart_node("n3")
    assert faults.get_registered_heals() == ["stop publish outage on n2"]


def test_a_failed_manual_heal_keeps_the_registered_heal(ctx: LibraryContext) -> None:
    nemesis = FakeNemesis(fail_on={"heal"})
    wire(ctx, nemesis)
    faults = FaultKeywords(ctx)
    faults.partition_node_from_peers("n1")
    with pytest.raises(AssertionError):
        faults.heal_all_partitions()
    assert len(ctx.heals) == 1


def test_restart_waits_until_healthz_answers_200(ctx: LibraryContext) -> None:
    nemesis = FakeNemesis()
    client = wire(ctx, nemesis, health=[503, 503, 200])
    FaultKeywords(ctx).restart_node("n1")
    assert client.polls == 3
    assert nemesis.calls == ["restart n1"]


def test_restart_fails_naming_the_node_when_it_never_gets_healthy(ctx: LibraryContext) -> None:
    nemesis = FakeNemesis()
    wire(ctx, nemesis, health=[503])
    faults = FaultKeywords(ctx)
    faults.crash_node("n1")
    with pytest.raises(
        TribesFailure, match=r"node n1 not healthy 0.5 s after the restart.*HTTP 503"
    ):
        faults.restart_node("n1")
    # the node is still down: its crash heal stays registered for teardown
    assert faults.get_registered_heals() == ["restart crashed node n1"]


def test_the_crash_heal_waits_for_health_and_reports_when_it_never_comes(
    ctx: LibraryContext,
) -> None:
    nemesis = FakeNemesis()
    wire(ctx, nemesis, health=[503])
    FaultKeywords(ctx).crash_node("n1")
    problems = ctx.run_heals()
    assert len(problems) == 1
    assert "restart crashed node n1" in problems[0] and "not healthy" in problems[0]


# -- through the library listener ---------------------------------------------------------------


def _library(nemesis: FakeNemesis) -> tuple[TribesLibrary, FaultKeywords]:
    library = TribesLibrary()
    wire(library.ctx, nemesis)
    faults = next(c for c in library.components if isinstance(c, FaultKeywords))
    return library, faults


def _test(name: str) -> SimpleNamespace:
    return SimpleNamespace(name=name, full_name=f"Suite.{name}")


def test_heals_registered_in_a_test_run_at_that_tests_end_even_after_a_failure() -> None:
    nemesis = FakeNemesis()
    library, faults = _library(nemesis)
    library.start_suite(SimpleNamespace(parent=None), SimpleNamespace(full_name="Suite"))
    library.start_test(None, _test("Crashes And Fails"))
    faults.crash_node("n1")
    with pytest.raises(TribesFailure):
        library.run_keyword("Registered Heals Should Be Empty", ())  # the test fails here
    library.end_test(None, _test("Crashes And Fails"))
    assert nemesis.calls == ["crash n1", "restart n1"]
    assert library.ctx.heals == []


def test_suite_setup_heals_outlive_tests_and_run_at_suite_end() -> None:
    nemesis = FakeNemesis()
    library, faults = _library(nemesis)
    # The listener reads the suite's `full_name` (RF 7; `longname` is deprecated): the result
    # stand-in has no `longname`, so reading it would fail here.
    library.start_suite(SimpleNamespace(parent=None), SimpleNamespace(full_name="Top.Suite"))
    assert library.ctx.labels.suite == "Top.Suite"
    faults.start_publish_outage("n1")  # suite setup: no test running
    library.start_test(None, _test("Partitions"))
    faults.partition_node_from_peers("n2")
    library.end_test(None, _test("Partitions"))
    assert nemesis.calls == ["outage n1 on", "partition n2 *", "heal"]
    assert [h.description for h in library.ctx.heals] == ["stop publish outage on n1"]
    library.end_suite(SimpleNamespace(parent=None), SimpleNamespace(full_name="Suite"))
    assert nemesis.calls[-1] == "outage n1 off"
    assert library.ctx.heals == []


def test_a_failing_heal_at_test_end_is_warned_and_the_rest_still_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    warnings: list[str] = []
    monkeypatch.setattr("tribesqa.library.logger.warn", warnings.append)
    nemesis = FakeNemesis(fail_on={"heal"})
    library, faults = _library(nemesis)
    library.start_test(None, _test("Two Faults"))
    faults.start_publish_outage("n1")
    faults.partition_node_from_peers("n2")
    library.end_test(None, _test("Two Faults"))
    assert nemesis.calls[-2:] == ["heal", "outage n1 off"]
    assert len(warnings) == 1 and "heal partition of n2" in warnings[0]
    assert library.ctx.heals == []


def test_close_target_runs_the_heals_left(tmp_path: Path) -> None:
    nemesis = FakeNemesis()
    ctx = LibraryContext()
    wire(ctx, nemesis)
    closed: list[bool] = []
    ctx.target.close = lambda: closed.append(True)  # type: ignore[union-attr]
    FaultKeywords(ctx).start_publish_outage("n1")
    assert ctx.close_target() == []
    assert nemesis.calls == ["outage n1 on", "outage n1 off"]
    assert closed == [True]
