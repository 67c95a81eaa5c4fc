"""PluginKeywords: unit checks against a fake transport, then Robot suites on the simulator.

The Robot suites run the same keywords over loopback HTTP (``variables/sim.yaml``) and over
``curl`` through SSH (``variables/sim-as-real.yaml``), and against a simulator whose rollback
skips the down migrations (``rollback-keeps-tables``): ``Plugin Tables Should Not Exist`` must
catch that.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.keywords.conftest import (
    SIM_AS_REAL_VARIABLES,
    SIM_VARIABLES,
    RunRobot,
    put_venv_on_path,
)
from tribesqa.context import LibraryContext
from tribesqa.contract import Diagnostics
from tribesqa.diagnostics import TribesFailure
from tribesqa.keywords.plugin_keywords import PluginKeywords, migration_history

CASE = {
    "id": "case-1",
    "run_id": "run-1",
    "name": "c",
    "counter": 3,
    "updated_at": "2026-05-01T10:00:00Z",
    "origin_node": "n1",
}
EVENT = {
    "id": "event-1",
    "run_id": "run-1",
    "case_id": "case-1",
    "kind": "seen",
    "payload": {"a": 1},
    "created_at": "2026-05-01T10:00:00Z",
    "origin_node": "n1",
}


class FakeTransport:
    def __init__(self, answers: dict[str, tuple[int, Any]]) -> None:
        self.answers = answers
        self.requests: list[tuple[str, str, str, Any]] = []

    def request(self, node: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        self.requests.append((node, method, path, body))
        return self.answers[re.split(r"[?/]", path, maxsplit=1)[0]]


class FakeClient:
    def __init__(self, migrations: dict[str, Any]) -> None:
        self.migrations = migrations

    def call_typed(self, method: str, params: Any = None) -> Diagnostics:
        assert method == "diagnostics"
        return Diagnostics(migrations=self.migrations)


def plugins(answers: dict[str, tuple[int, Any]]) -> tuple[PluginKeywords, FakeTransport]:
    ctx = LibraryContext()
    transport = FakeTransport(answers)
    ctx.plugins = lambda: transport  # type: ignore[method-assign,assignment,return-value]
    return PluginKeywords(ctx), transport


def with_diagnostics(migrations: dict[str, Any]) -> PluginKeywords:
    ctx = LibraryContext()
    ctx.client = lambda node: FakeClient(migrations)  # type: ignore[method-assign,assignment,return-value]
    return PluginKeywords(ctx)


# -- unit ------------------------------------------------------------------------------------------


def test_healthy_returns_the_parsed_health() -> None:
    keywords, transport = plugins(
        {"health": (200, {"status": "ok", "plugin": "supertest", "version": "1"})}
    )
    assert keywords.plugin_api_should_be_healthy("n1").version == "1"
    assert transport.requests == [("n1", "GET", "health", None)]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ((404, {"error": "not-found"}), "node n1 / plugin GET health answered HTTP 404"),
        ((200, {"status": "degraded", "plugin": "supertest", "version": "1"}), "'degraded'"),
        ((200, {"status": "ok", "plugin": "other", "version": "1"}), "plugin 'other'"),
        ((200, {"status": "ok"}), "does not match PluginHealth"),
    ],
)
def test_unhealthy_answers_fail_naming_the_node(answer: tuple[int, Any], message: str) -> None:
    keywords, _ = plugins({"health": answer})
    with pytest.raises((TribesFailure, ValueError), match=re.escape(message)):
        keywords.plugin_api_should_be_healthy("n1")


def test_absent_passes_on_404_and_names_any_other_status() -> None:
    plugins({"health": (404, {"error": "not-found"})})[0].plugin_api_should_be_absent("n1")
    for status in (200, 500, 503):
        keywords, _ = plugins({"health": (status, "boom")})
        with pytest.raises(TribesFailure, match=f"answered HTTP {status}: boom"):
            keywords.plugin_api_should_be_absent("n1")


def test_tables_should_exist_names_the_missing_table() -> None:
    keywords, _ = plugins({"schema": (200, {"tables": ["supertest_cases"], "migrations": ["m1"]})})
    with pytest.raises(TribesFailure, match=r"plugin table\(s\) supertest_events missing"):
        keywords.plugin_tables_should_exist("n1")


def test_non_2xx_write_fails_with_node_call_status_and_body() -> None:
    keywords, _ = plugins({"cases": (409, {"error": "conflict", "message": "nope"})})
    with pytest.raises(TribesFailure) as failure:
        keywords.increment_case("n1", "case 1/x", 2)
    text = str(failure.value)
    assert "node n1 / plugin POST cases/case%201%2Fx/increment answered HTTP 409" in text
    assert '"message": "nope"' in text


@pytest.mark.parametrize("by", ["1.5", 1.5, "abc", True, None, ""])
def test_increment_by_must_be_a_whole_number(by: Any) -> None:
    keywords, transport = plugins({"cases": (200, CASE)})
    with pytest.raises(TribesFailure, match="argument by must be a whole number"):
        keywords.increment_case("n1", "case-1", by)
    assert transport.requests == []


def test_increment_accepts_numbers_and_numeric_strings() -> None:
    keywords, transport = plugins({"cases": (200, CASE)})
    assert keywords.increment_case("n1", "case-1", "-2").counter == 3
    keywords.increment_case("n1", "case-1")
    assert [r[3] for r in transport.requests] == [{"by": -2}, {"by": 1}]


def test_create_case_event_and_state_send_the_contract_bodies() -> None:
    keywords, transport = plugins(
        {
            "cases": (201, CASE),
            "events": (201, EVENT),
            "state": (200, {"cases": [CASE], "events": [EVENT]}),
        }
    )
    assert keywords.create_case("n1", "run-1", "c").id == "case-1"
    assert keywords.create_event("n1", "run-1", "case-1", "seen", '{"a": 1}').payload == {"a": 1}
    keywords.create_event("n1", "run-1", "case-1", "seen")
    state = keywords.get_plugin_state("n1", "run 1&x")
    assert len(state.cases) == 1
    assert transport.requests == [
        ("n1", "POST", "cases", {"run_id": "run-1", "name": "c"}),
        (
            "n1",
            "POST",
            "events",
            {"run_id": "run-1", "case_id": "case-1", "kind": "seen", "payload": {"a": 1}},
        ),
        (
            "n1",
            "POST",
            "events",
            {"run_id": "run-1", "case_id": "case-1", "kind": "seen", "payload": {}},
        ),
        ("n1", "GET", "state?run_id=run%201%26x", None),
    ]


def test_bad_arguments_fail_before_any_request() -> None:
    keywords, transport = plugins({})
    with pytest.raises(TribesFailure, match="argument payload must be a dictionary"):
        keywords.create_event("n1", "run-1", "case-1", "seen", "[1, 2]")
    with pytest.raises(TribesFailure, match="argument run_id must be a non-empty string"):
        keywords.create_case("n1", "  ", "c")
    assert transport.requests == []


def test_plugin_state_should_hold_lists_every_difference() -> None:
    keywords, _ = plugins({"state": (200, {"cases": [CASE], "events": []})})
    keywords.plugin_state_should_hold("n1", "run-1", cases=1, events="0", counter=3)
    with pytest.raises(TribesFailure) as failure:
        keywords.plugin_state_should_hold("n1", "run-1", cases=2, events=1, counter=4)
    assert "cases 1, expected 2; events 0, expected 1; counter 3, expected 4" in str(failure.value)


def test_new_run_ids_are_unique_and_readable() -> None:
    keywords, _ = plugins({})
    ids = {keywords.new_run_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"run-\d{8}T\d{6}Z-[0-9a-f]{8}", run_id) for run_id in ids)


UP = [
    "2026-05-01T10:00:00Z up 20260401000000_create_supertest_cases",
    "2026-05-01T10:00:00Z up 20260401000001_create_supertest_events",
]
DOWN = [
    "2026-05-01T11:00:00Z down 20260401000001_create_supertest_events",
    "2026-05-01T11:00:00Z down 20260401000000_create_supertest_cases",
]


def test_migration_history_keeps_the_last_direction() -> None:
    assert set(migration_history(UP).values()) == {"up"}
    assert set(migration_history(UP + DOWN).values()) == {"down"}
    assert set(migration_history(UP + DOWN + UP[:1]).values()) == {"up", "down"}


def test_tables_should_not_exist_passes_after_down_migrations() -> None:
    with_diagnostics(
        {"log": UP + DOWN, "applied": [], "tables": ["events", "meta"]}
    ).plugin_tables_should_not_exist("n1")
    # never installed: nothing to revert
    with_diagnostics({"log": [], "applied": [], "tables": []}).plugin_tables_should_not_exist("n1")


@pytest.mark.parametrize(
    ("migrations", "message"),
    [
        (
            {"log": UP + DOWN, "applied": [], "tables": ["supertest_cases"]},
            "table(s) supertest_cases still exist",
        ),
        (
            {"log": UP, "applied": ["20260401000000_create_supertest_cases"], "tables": []},
            "migration(s) 20260401000000_create_supertest_cases still applied",
        ),
        (
            {"log": UP, "applied": [], "tables": []},
            "the migration log shows no down migration for 20260401000000_create_supertest_cases",
        ),
        ({"log": UP + DOWN}, "has neither 'tables' nor 'applied'"),
    ],
)
def test_tables_should_not_exist_fails_on_any_trace(
    migrations: dict[str, Any], message: str
) -> None:
    with pytest.raises(TribesFailure, match=re.escape(message)) as failure:
        with_diagnostics(migrations).plugin_tables_should_not_exist("n1")
    assert str(failure.value).startswith("node n1: ")


# -- against the simulator -------------------------------------------------------------------------

SUITE = """
*** Settings ***
Library           tribesqa.library.TribesLibrary
Suite Setup       Open Target
Suite Teardown    Close Target

*** Test Cases ***
Before The Rollout The Plugin Is Absent
    ${init}=    Provision Init Node    hetzner
    VAR    ${NODE}    ${init.name}    scope=SUITE
    ${generation}=    Get Generation Status    ${NODE}
    VAR    ${BASELINE}    ${generation.running}    scope=SUITE
    Plugin API Should Be Absent    ${NODE}
    Plugin Tables Should Not Exist    ${NODE}
    Run Keyword And Expect Error    *answered HTTP 404*    Plugin API Should Be Healthy    ${NODE}

The Plugin Serves Writes And Reads
    Roll Out Plugin To Nodes    supertest    e042f3265db7a40d4d558132800238c6d466e8dd    ${NODE}
    ${health}=    Plugin API Should Be Healthy    ${NODE}
    Should Be Equal    ${health.plugin}    supertest
    ${schema}=    Plugin Tables Should Exist    ${NODE}
    Run Keyword And Expect Error    *plugin API should be absent (404) but GET health answered HTTP 200*
    ...    Plugin API Should Be Absent    ${NODE}
    Run Keyword And Expect Error    *table(s) supertest_cases, supertest_events still exist*
    ...    Plugin Tables Should Not Exist    ${NODE}
    ${run}=    New Run Id
    ${case}=    Create Case    ${NODE}    ${run}    smoke case
    ${case}=    Increment Case    ${NODE}    ${case.id}    by=3
    Should Be Equal As Integers    ${case.counter}    3
    Run Keyword And Expect Error    argument by must be a whole number, got '1.5'
    ...    Increment Case    ${NODE}    ${case.id}    by=1.5
    Run Keyword And Expect Error    *POST cases/no-such-case/increment answered HTTP 404*
    ...    Increment Case    ${NODE}    no-such-case
    ${event}=    Create Event    ${NODE}    ${run}    ${case.id}    seen    {"n": 1}
    Should Be Equal As Integers    ${event.payload}[n]    1
    ${state}=    Get Plugin State    ${NODE}    ${run}
    Length Should Be    ${state.cases}    1
    Should Be Equal    ${state.events[0].id}    ${event.id}
    Plugin State Should Hold    ${NODE}    ${run}    cases=1    events=1    counter=3
    ${other}=    New Run Id
    Plugin State Should Hold    ${NODE}    ${other}    cases=0    events=0

Rollback Removes The Plugin And Its Tables
    Roll Back Nodes To Generation    ${BASELINE}    ${NODE}
    Plugin API Should Be Absent    ${NODE}
    Plugin Tables Should Not Exist    ${NODE}
"""


def _statuses(result: Any) -> dict[str, tuple[str, str]]:
    return {test.name: (test.status, test.message) for test in result.suite.all_tests}


def _assert_all_passed(result: Any) -> None:
    failed = {name: msg for name, (status, msg) in _statuses(result).items() if status != "PASS"}
    assert not failed, failed
    assert len(_statuses(result)) == 3


@pytest.mark.slow
def test_plugin_keywords_over_http_on_the_simulator(run_robot: RunRobot) -> None:
    _assert_all_passed(run_robot(SUITE, variablefile=SIM_VARIABLES, name="plugins-http"))


@pytest.mark.slow
def test_plugin_keywords_over_ssh_with_the_real_strategy(
    run_robot: RunRobot, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_venv_on_path(monkeypatch)
    result = run_robot(SUITE, variablefile=SIM_AS_REAL_VARIABLES, name="plugins-ssh")
    _assert_all_passed(result)


@pytest.mark.slow
def test_tables_left_behind_by_a_rollback_are_caught(run_robot: RunRobot, tmp_path: Path) -> None:
    variables = yaml.safe_load(SIM_VARIABLES.read_text())
    variables["TARGET"]["sim"]["faults"] = ["rollback-keeps-tables"]
    faulty = tmp_path / "faulty.yaml"
    faulty.write_text(yaml.safe_dump(variables))
    result = run_robot(SUITE, variablefile=faulty, name="plugins-faulty")
    statuses = _statuses(result)
    status, message = statuses["Rollback Removes The Plugin And Its Tables"]
    assert status == "FAIL"
    assert (
        "plugin tables should not exist but table(s) supertest_cases, supertest_events" in message
    )
    assert "still applied" in message and "no down migration" in message
    assert statuses["The Plugin Serves Writes And Reads"][0] == "PASS"
