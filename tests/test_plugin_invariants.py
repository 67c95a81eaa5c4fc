"""The generation and plugin data invariants (issue 14 item 2) over hand-made histories."""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_history_invariants import History
from tribesqa.history import HistoryCheckError, check, failure_message
from tribesqa.history.plugin_invariants import (
    acknowledged_writes_survive,
    generation_holds_after_success,
    plugin_values_never_go_back,
)

G1, G2 = "/gnu/store/aaa-system", "/gnu/store/bbb-system"
RUN = "run-1"
T1, T2, T3 = "2026-01-01T00:00:01.000Z", "2026-01-01T00:00:02.000Z", "2026-01-01T00:00:03.000Z"


def job(h: History, node: str, state: str, selected: str, running: str, job_id: str = "j1") -> None:
    value = {"job_id": job_id, "kind": "rollout", "state": state, "stage": "done"}
    h.add(
        "observation", node, "rollout.status", {**value, "selected": selected, "running": running}
    )


def start(h: History, node: str, job_id: str = "j1", what: str = "rollout.start") -> None:
    h.add("invoke", node, what, {"plan_id": "p"})
    h.add("ok", node, what, {"job_id": job_id})


def generation(h: History, node: str, selected: str, running: str) -> None:
    h.add("observation", node, "generation.status", {"selected": selected, "running": running})


def case(case_id: str, counter: int = 0, updated: str = T1, run: str = RUN) -> dict[str, Any]:
    return {"id": case_id, "run_id": run, "counter": counter, "updated_at": updated}


def read(h: History, node: str, *cases: dict[str, Any], run: str | None = RUN) -> None:
    value: dict[str, Any] = {"status": 200, "body": {"cases": list(cases), "events": []}}
    if run is not None:
        value["query"] = {"run_id": run}
    h.add("observation", node, "plugin.state", value)


def write(h: History, node: str, what: str, row: dict[str, Any], body: Any = None) -> None:
    h.add("invoke", node, f"plugin.write:{what}", {"method": "POST", "body": body or {}})
    h.records[-1]["op"] = f"op-{h.records[-1]['seq']}"
    h.add("ok", node, f"plugin.write:{what}", [201, row])
    h.records[-1]["op"] = h.records[-2]["op"]


def increment(h: History, node: str, row: dict[str, Any], by: int) -> None:
    write(h, node, f"plugin.cases/{row['id']}/increment", row, {"by": by})


# -- generations --------------------------------------------------------------------------------


@pytest.mark.req("HIST-6")
def test_an_acknowledged_case_missing_from_a_nodes_last_read_is_a_lost_write() -> None:
    h = History()
    write(h, "a", "plugin.cases", case("c1"), {"run_id": RUN})
    read(h, "b")  # not there yet: a later read decides
    read(h, "a", case("c1"))
    read(h, "b")  # b's last read: still missing
    [violation] = acknowledged_writes_survive(h.records)
    assert (violation.node, violation.row) == ("b", "c1")
    assert (violation.first["seq"], violation.second["seq"]) == (2, 5)
    assert "c1 is missing" in violation.reason


@pytest.mark.req("HIST-6")
def test_a_write_seen_eventually_by_every_node_is_no_loss() -> None:
    h = History()
    write(h, "a", "plugin.cases", case("c1"), {"run_id": RUN})
    read(h, "b")
    read(h, "b", case("c1"))
    read(h, "a", case("c1"))
    read(h, "a", run="run-2")  # another run's read holds none of run-1's rows
    assert acknowledged_writes_survive(h.records) == []


@pytest.mark.req("HIST-6")
def test_only_reads_after_the_last_heal_of_active_nodes_in_the_same_table_life_count() -> None:
    h = History()
    write(h, "a", "plugin.cases", case("c1"), {"run_id": RUN})
    h.add("invoke", "b", "fault.partition", {"args": ["b", []]})
    read(h, "b")  # cut off: not after the last heal
    h.add("invoke", "c", "legion.decommission", {"args": ["c"]})
    h.add("ok", "c", "legion.decommission", {})
    read(h, "c")  # decommissioned: receives no new writes
    h.add("invoke", "d", "generation.rollback", {"generation": 1})
    read(h, "d")  # its tables started a new life after the write
    assert acknowledged_writes_survive(h.records) == []
    h.add("invoke", None, "heal.all", {"args": []})
    read(h, "b")  # healed and still missing: lost
    assert [v.node for v in acknowledged_writes_survive(h.records)] == ["b"]


@pytest.mark.req("HIST-6")
def test_a_refused_decommission_leaves_the_node_judged() -> None:
    h = History()
    write(h, "a", "plugin.cases", case("c1"), {"run_id": RUN})
    h.add("invoke", "c", "legion.decommission", {"args": ["c"]})
    h.add("fail", "c", "legion.decommission", {"error": "unsafe-operation"})
    read(h, "c")
    assert [v.node for v in acknowledged_writes_survive(h.records)] == ["c"]


@pytest.mark.req("HIST-6")
def test_a_counter_below_its_acknowledged_increments_is_a_lost_write() -> None:
    h = History()
    write(h, "a", "plugin.cases", case("c1"), {"run_id": RUN})
    increment(h, "a", case("c1", 3), 3)
    increment(h, "b", case("c1", 10), 10)
    read(h, "a", case("c1", 3))  # the 10 from b never arrived
    read(h, "b", case("c1", 13))
    [violation] = acknowledged_writes_survive(h.records)
    assert violation.node == "a" and "counter 3, below the 13" in violation.reason


@pytest.mark.req("HIST-6")
def test_a_negative_increment_leaves_the_counter_unjudged() -> None:
    h = History()
    write(h, "a", "plugin.cases", case("c1"), {"run_id": RUN})
    increment(h, "a", case("c1", 3), 3)
    increment(h, "a", case("c1", 1), -2)
    read(h, "a", case("c1", 0))
    assert acknowledged_writes_survive(h.records) == []


# -- values never go back -------------------------------------------------------------------------


@pytest.mark.req("HIST-7")
@pytest.mark.parametrize(
    ("later", "words"),
    [
        (case("c1", 2, T3), "counter of c1 went back from 3 to 2"),
        (None, "c1 disappeared"),
    ],
)
def test_a_plugin_row_that_goes_back_is_named_with_both_reads(
    later: dict[str, Any] | None, words: str
) -> None:
    h = History()
    read(h, "a", case("c1", 3, T2))
    read(h, "a", *([later] if later else []))
    read(h, "a", case("c1", 3, T2))
    [violation] = plugin_values_never_go_back(h.records)
    assert (violation.node, violation.row) == ("a", "c1")
    assert (violation.first["seq"], violation.second["seq"]) == (1, 2)
    assert words in violation.reason


@pytest.mark.req("HIST-7")
def test_other_runs_other_observers_resyncs_and_new_table_lives_are_no_going_back() -> None:
    h = History()
    read(h, "a", case("c1", 3, T2))
    read(h, "b", case("c1", 1, T1))  # another observer lagging
    read(h, "a", run="run-2")  # a read of another run
    h.add("invoke", "a", "sync.resync", {"full": True})
    read(h, "a", case("c1", 1, T1))  # mid-resync, in the resync's test
    h.add("invoke", "a", "generation.rollback", {"generation": 1})
    read(h, "a")  # the rollback dropped the tables
    assert plugin_values_never_go_back(h.records) == []


@pytest.mark.req("HIST-6")
def test_the_failure_message_shows_the_acknowledgement_and_the_read_without_the_row() -> None:
    h = History()
    write(h, "a", "plugin.cases", case("c1"), {"run_id": RUN})
    read(h, "a", case("c2"))
    message = failure_message(check(h.records), "artifacts/S/history.jsonl")
    assert "invariant 'acknowledged writes survive', node a: a acknowledged plugin.cases" in message
    assert '"without": "c1"' in message and '"cases": 1' in message
    assert "history: artifacts/S/history.jsonl" in message


@pytest.mark.req("HIST-1")
def test_an_invariant_that_cannot_read_a_record_is_named_not_a_traceback() -> None:
    def broken(records: Any) -> list[Any]:
        raise KeyError("seq")

    with pytest.raises(
        HistoryCheckError, match="invariant 'broken' could not judge the history: KeyError"
    ):
        check([], {"broken": broken})


# -- every rule on its own (the mutation run's survivors showed which were only implied) ----------


@pytest.mark.req("HIST-6")
def test_the_exact_wording_of_a_lost_write() -> None:
    h = History()
    write(h, "a", "plugin.cases", case("c1"), {"run_id": RUN})
    read(h, "b")
    [violation] = acknowledged_writes_survive(h.records)
    assert violation.reason == (
        "a acknowledged plugin.cases (#2), but b's last read after the last heal (#3) "
        "says c1 is missing"
    )
    assert (violation.invariant, violation.node, violation.observer, violation.row) == (
        "acknowledged writes survive",
        "b",
        None,
        "c1",
    )


def _lost_on_b(*between: tuple[str, str | None, str, Any]) -> list[str]:
    """Nodes that lost c1 when ``between`` (records: type, node, what, value) happen after the
    write and before b's last read, which lacks it."""
    h = History()
    write(h, "a", "plugin.cases", case("c1"), {"run_id": RUN})
    for kind, node, what, value in between:
        h.add(kind, node, what, value)
    read(h, "b")
    return [v.node for v in acknowledged_writes_survive(h.records)]


@pytest.mark.req("HIST-6")
@pytest.mark.parametrize(
    ("between", "lost"),
    [
        ([], ["b"]),
        ([("invoke", "b", "fault.partition", {"args": ["b", []]})], []),
        ([("invoke", "c", "fault.partition", {"args": ["c", []]})], []),  # any fault in effect
        (
            [
                ("invoke", "b", "fault.partition", {"args": ["b", []]}),
                ("invoke", None, "heal.all", {"args": []}),
            ],
            ["b"],
        ),
        ([("invoke", "b", "fault.crash", {"args": ["b"]})], []),
        (
            [
                ("invoke", "b", "fault.crash", {"args": ["b"]}),
                ("invoke", "c", "fault.restart", {"args": ["c"]}),
            ],
            [],
        ),
        (
            [
                ("invoke", "b", "fault.crash", {"args": ["b"]}),
                ("invoke", "b", "fault.restart", {"args": ["b"]}),
            ],
            ["b"],
        ),
        ([("invoke", "b", "fault.outage", {"args": ["b", True]})], []),
        (
            [
                ("invoke", "b", "fault.outage", {"args": ["b", True]}),
                ("invoke", "b", "fault.outage", {"args": ["b", False]}),
            ],
            ["b"],
        ),
        ([("ok", "b", "legion.decommission", {})], []),
        ([("fail", "b", "legion.decommission", {"error": "refused"})], ["b"]),
        ([("ok", "b", "legion.decommission", {}), ("ok", "b", "legion.reactivate", {})], ["b"]),
        ([("ok", "b", "legion.decommission", {}), ("fail", "b", "legion.reactivate", {})], []),
        ([("invoke", "b", "rollout.start", {})], []),
        ([("invoke", "b", "generation.rollback", {})], []),
        ([("invoke", "b", "legion.destroy", {})], []),
        ([("invoke", "b", "legion.replace", {})], []),
        ([("invoke", "c", "generation.rollback", {})], ["b"]),  # another node's tables
        ([("ok", "b", "rollout.start", {})], ["b"]),  # the invoke starts the new life
    ],
)
def test_which_reads_are_after_the_last_heal_of_an_active_node_in_the_same_life(
    between: list[tuple[str, str | None, str, Any]], lost: list[str]
) -> None:
    assert _lost_on_b(*between) == lost


@pytest.mark.req("HIST-6")
def test_a_reactivated_node_is_judged_again() -> None:
    h = History()
    h.add("ok", "b", "legion.decommission", {})
    h.add("ok", "b", "legion.reactivate", {})
    write(h, "a", "plugin.cases", case("c1"), {"run_id": RUN})
    read(h, "b")
    assert [v.node for v in acknowledged_writes_survive(h.records)] == ["b"]


@pytest.mark.req("HIST-6")
@pytest.mark.parametrize(
    "answer",
    [
        [500, {"id": "c1", "run_id": RUN}],
        ["201", {"id": "c1", "run_id": RUN}],
        [201, "c1"],
        [201, {"run_id": RUN}],
        [201],
        {"status": 201},
    ],
)
def test_only_a_2xx_answer_with_a_row_id_is_an_acknowledgement(answer: Any) -> None:
    h = History()
    h.add("ok", "a", "plugin.write:plugin.cases", answer)
    read(h, "b")
    assert acknowledged_writes_survive(h.records) == []


@pytest.mark.req("HIST-6")
def test_events_are_acknowledged_writes_too_and_reads_before_the_ack_say_nothing() -> None:
    h = History()
    read(h, "b")
    write(h, "a", "plugin.events", {"id": "e1", "run_id": RUN, "created_at": T1})
    write(h, "a", "plugin.other", {"id": "o1", "run_id": RUN})  # not a create this checks
    assert acknowledged_writes_survive(h.records) == []
    event = {"id": "e1", "run_id": RUN, "created_at": T1}
    h.add("observation", "b", "plugin.state", {"status": 200, "body": {"events": [event]}})
    h.records[-1]["value"]["query"] = {"run_id": RUN}
    assert acknowledged_writes_survive(h.records) == []
    h.add("observation", "c", "plugin.state", {"status": 200, "body": {"events": []}})
    assert [v.row for v in acknowledged_writes_survive(h.records)] == ["e1"]


@pytest.mark.req("HIST-6")
@pytest.mark.parametrize(
    ("steps", "shown", "lost"),
    [
        ([3, 10], 13, False),
        ([3, 10], 12, True),
        ([2], 2, False),
        ([True], 0, False),  # not an increment count
        ([3, -1], 0, False),
    ],
)
def test_the_counter_is_at_least_its_acknowledged_increments(
    steps: list[Any], shown: int, lost: bool
) -> None:
    h = History()
    write(h, "a", "plugin.cases", case("c1"), {"run_id": RUN})
    for by in steps:
        increment(h, "a", case("c1", 0), by)
    read(h, "a", case("c1", shown))
    increment(h, "a", case("c1", 0), 100)  # after the last read: not yet owed
    found = acknowledged_writes_survive(h.records)
    assert bool(found) is lost
    if lost:
        assert found[0].reason.endswith(
            f"says c1 has counter {shown}, below the {sum(steps)} its acknowledged increments "
            "add up to"
        )


@pytest.mark.req("HIST-6")
def test_an_increment_without_by_counts_one_and_a_counter_that_is_not_a_number_is_skipped() -> None:
    h = History()
    write(h, "a", "plugin.cases", case("c1"), {"run_id": RUN})
    increment(h, "a", case("c1", 1), 1)
    h.records[-2]["value"]["body"] = {}  # the invoke's body: no `by`
    read(h, "a", case("c1", 0))
    assert [v.row for v in acknowledged_writes_survive(h.records)] == ["c1"]
    read(h, "a", {**case("c1"), "counter": None})
    assert acknowledged_writes_survive(h.records) == []


@pytest.mark.req("HIST-7")
def test_one_violation_per_row_and_life_and_events_keep_their_created_at() -> None:
    h = History()
    read(h, "a", case("c1", 3, T2))
    read(h, "a", case("c1", 2, T2))
    read(h, "a", case("c1", 1, T2))  # the same row again: not a second violation
    event = {"id": "e1", "run_id": RUN, "created_at": T2}
    h.add("observation", "a", "plugin.state", {"status": 200, "body": {"events": [event]}})
    h.add("observation", "a", "plugin.state", {"status": 200, "body": {"events": []}})
    found = plugin_values_never_go_back(h.records)
    assert [(v.row, v.reason) for v in found] == [
        ("c1", "counter of c1 went back from 3 to 2"),
        ("e1", "e1 disappeared after it had been read"),
    ]
    assert (found[0].invariant, found[0].node, found[0].observer) == (
        "plugin values never go back",
        "a",
        None,
    )


@pytest.mark.req("HIST-7")
def test_a_negative_increment_frees_the_counter_and_failed_reads_say_nothing() -> None:
    h = History()
    increment(h, "a", case("c1", 1), -2)
    read(h, "a", case("c1", 3, T2))
    h.add("observation", "a", "plugin.state", {"status": 503, "body": {}})
    h.add("observation", "a", "plugin.state", {"status": 200, "body": "busy"})
    read(h, "a", case("c1", 1, T3))
    assert plugin_values_never_go_back(h.records) == []
    read(h, "a")
    assert [v.reason for v in plugin_values_never_go_back(h.records)] == [
        "c1 disappeared after it had been read"
    ]


@pytest.mark.req("HIST-7")
def test_an_updated_at_that_moves_back_is_last_writer_wins_not_a_regression() -> None:
    # Two writers' clocks a second apart: the later increment carries the earlier stamp.
    h = History()
    read(h, "a", case("c1", 3, T2))
    read(h, "a", case("c1", 4, T1))
    assert plugin_values_never_go_back(h.records) == []


@pytest.mark.req("HIST-7")
def test_a_resync_licenses_only_its_own_node_and_test() -> None:
    h = History()
    read(h, "a", case("c1", 3, T2))
    h.add("invoke", "b", "sync.resync", {"full": True})
    read(h, "a", case("c1", 1, T2))
    assert [v.node for v in plugin_values_never_go_back(h.records)] == ["a"]
    h = History()
    h.add("invoke", "a", "sync.resync", {"full": True})
    h.test = "S.T2"  # the resync's license ended with its test
    read(h, "a", case("c1", 3, T2))
    read(h, "a", case("c1", 1, T2))
    assert [v.node for v in plugin_values_never_go_back(h.records)] == ["a"]


@pytest.mark.req("HIST-6")
@pytest.mark.parametrize(("status", "owed"), [(200, True), (299, True), (300, False), (199, False)])
def test_every_2xx_status_and_only_those_acknowledge(status: int, owed: bool) -> None:
    h = History()
    h.add("ok", "a", "plugin.write:plugin.cases", [status, case("c1")])
    read(h, "b")
    assert bool(acknowledged_writes_survive(h.records)) is owed


@pytest.mark.req("HIST-6")
def test_a_later_lost_write_is_found_after_writes_that_say_nothing() -> None:
    h = History()
    write(h, "a", "plugin.cases", case("c1"), {"run_id": RUN})
    increment(h, "a", case("c1", 1), 1)
    read(h, "b", case("c1", 1))  # c2 is not acknowledged yet: this read owes it nothing
    write(h, "a", "plugin.cases", case("c2"), {"run_id": RUN})
    write(h, "a", "plugin.cases", case("c3"), {"run_id": RUN})
    read(h, "b", case("c1", 1), case("c3"))
    assert [(v.node, v.row) for v in acknowledged_writes_survive(h.records)] == [("b", "c2")]


@pytest.mark.req("HIST-6")
def test_increments_count_by_their_own_row_and_one_without_by_or_invoke_counts_one() -> None:
    h = History()
    write(h, "a", "plugin.cases", case("c1"), {"run_id": RUN})
    write(h, "a", "plugin.cases/c1/rename", case("c1"), {"name": "x"})  # not an increment
    h.add("ok", "a", "plugin.write:plugin.cases/c1/increment", [200, case("c1", 1)])  # no invoke
    increment(h, "a", case("c1", 2), 1)
    h.records[-2]["value"]["body"] = {}  # the invoke's body: no `by`
    increment(h, "a", case("c1", 2), 0)  # zero is not negative: still counted
    read(h, "a", case("c1", 2))
    assert acknowledged_writes_survive(h.records) == []
    read(h, "a", case("c1", 1))
    [violation] = acknowledged_writes_survive(h.records)
    assert "counter 1, below the 2" in violation.reason


@pytest.mark.req("HIST-6")
def test_each_rollout_or_rollback_starts_a_new_life_of_the_tables() -> None:
    h = History()
    h.add("invoke", "b", "rollout.start", {})
    write(h, "a", "plugin.cases", case("c1"), {"run_id": RUN})
    h.add("invoke", "b", "generation.rollback", {})
    read(h, "b")  # b's tables are not the ones the write was acknowledged in
    assert acknowledged_writes_survive(h.records) == []


@pytest.mark.req("HIST-7")
def test_equal_reads_other_runs_rows_and_odd_items_are_no_going_back() -> None:
    h = History()
    read(h, "a", case("c0", run="run-0"), case("c1", 3, T2), "not a row", {"id": None})
    read(h, "a", case("c1", 3, T2))  # run-1's read: c0 of run-0 is not expected in it
    read(h, "a", case("c1", 2, T2))
    assert [v.row for v in plugin_values_never_go_back(h.records)] == ["c1"]


@pytest.mark.req("HIST-7")
@pytest.mark.parametrize("later", [T1, T3])
def test_an_events_created_at_that_changes_is_named(later: str) -> None:
    h = History()
    for stamp in (T2, later):
        event = {"id": "e1", "run_id": RUN, "created_at": stamp}
        h.add("observation", "a", "plugin.state", {"status": 200, "body": {"events": [event]}})
    [violation] = plugin_values_never_go_back(h.records)
    assert violation.reason == (
        f"created_at of e1 changed from {T2} to {later} (events are insert-once)"
    )


@pytest.mark.req("HIST-7")
def test_a_resync_is_matched_to_the_reader_through_legions_node_ids() -> None:
    h = History()
    h.add("info", None, "node_ids", {"a": "node-a"})
    read(h, "a", case("c1", 3, T2))
    h.add("invoke", "a", "sync.resync", {"full": True})
    read(h, "a", case("c1", 1, T2))
    assert plugin_values_never_go_back(h.records) == []


@pytest.mark.req("HIST-6")
def test_every_lost_write_is_named_whatever_came_before_it() -> None:
    h = History()
    h.add("ok", "a", "plugin.write:plugin.cases", "not an answer")
    h.add("ok", "a", "plugin.write:plugin.cases", [500, case("c0")])
    write(h, "a", "plugin.cases", case("c1", run="run-0"), {"run_id": "run-0"})
    read(h, "b", run="run-0")  # b's last run-0 read: before c9 ...
    write(h, "a", "plugin.cases", case("c9", run="run-0"), {"run_id": "run-0"})  # ... owes nothing
    write(h, "a", "plugin.cases", case("c2"), {"run_id": RUN})
    write(h, "a", "plugin.cases", case("c3"), {"run_id": RUN})
    read(h, "b")
    found = acknowledged_writes_survive(h.records)
    assert [(v.node, v.row) for v in found] == [("b", "c1"), ("b", "c2"), ("b", "c3")]


@pytest.mark.req("HIST-6")
def test_a_write_in_the_readers_current_table_life_is_judged() -> None:
    h = History()
    h.add("invoke", "b", "rollout.start", {})
    write(h, "a", "plugin.cases", case("c1"), {"run_id": RUN})
    read(h, "b")
    assert [v.node for v in acknowledged_writes_survive(h.records)] == ["b"]


@pytest.mark.req("HIST-7")
def test_a_rollback_starts_a_new_life_and_a_zero_increment_keeps_the_counter_rule() -> None:
    h = History()
    read(h, "a", case("c1", 3, T2))
    h.test = "S.T2"
    h.add("invoke", "a", "generation.rollback", {"generation": 1})
    read(h, "a")  # the tables were dropped: a new life
    assert plugin_values_never_go_back(h.records) == []
    h = History()
    increment(h, "a", case("c1", 3), 0)
    read(h, "a", case("c1", 3, T2))
    read(h, "a", case("c1", 3, T3))  # the same counter, a later stamp: fine
    read(h, "a", case("c1", 2, T3))
    assert [v.reason for v in plugin_values_never_go_back(h.records)] == [
        "counter of c1 went back from 3 to 2"
    ]


# -- generations after a success ------------------------------------------------------------------


@pytest.mark.req("HIST-5")
def test_a_generation_that_moves_after_a_success_report_is_named_with_both_reports() -> None:
    h = History()
    start(h, "a")
    job(h, "a", "running", G2, G1)
    job(h, "a", "succeeded", G1, G1)  # the job says it is done at G1 ...
    generation(h, "a", G2, G2)  # ... and the node runs G2 with no job in between
    generation(h, "a", G2, G2)  # repeats it: one violation per success
    [violation] = generation_holds_after_success(h.records)
    assert (violation.invariant, violation.node, violation.observer) == (
        "generation holds after success",
        "a",
        None,
    )
    assert (violation.first["seq"], violation.second["seq"]) == (4, 5)
    assert violation.reason == (
        f"after rollout job j1 reported succeeded on a at {G1}, a reported selected {G2}, "
        f"running {G2} with no rollout or rollback in between"
    )


@pytest.mark.req("HIST-5")
def test_a_success_report_with_selected_and_running_apart_names_the_report_before_it() -> None:
    h = History()
    start(h, "a")
    job(h, "a", "running", G2, G1)
    job(h, "a", "succeeded", G2, G1)
    start(h, "b", "j9")
    job(h, "b", "succeeded", G2, G1, job_id="j9")  # no report before it
    first, second = generation_holds_after_success(h.records)
    assert (first.first["seq"], first.second["seq"]) == (3, 4)
    assert first.invariant == "generation holds after success"
    assert (
        first.reason
        == f"rollout job j1 reported succeeded on a with selected {G2} but running {G1}"
    )
    assert (second.node, second.first, second.second["seq"]) == ("b", None, 7)


@pytest.mark.req("HIST-5")
def test_only_the_success_of_the_job_started_last_sets_the_generation() -> None:
    h = History()
    job(h, "a", "succeeded", G2, G1)  # no job started in this history: says nothing
    start(h, "a", "j2")
    job(h, "a", "succeeded", G1, G2, job_id="j1")  # an older job's report: says nothing
    job(h, "a", "running", G2, G1, job_id="j2")
    h.add(
        "observation", "a", "rollout.status", {"state": "succeeded", "selected": G2, "running": G2}
    )
    generation(h, "a", G2, G1)  # mid-job: nothing held yet
    assert generation_holds_after_success(h.records) == []
    job(h, "a", "succeeded", G2, G2, job_id="j2")
    job(h, "a", "succeeded", G1, G1, job_id="j1")  # the old job's report stays unjudged
    h.add("invoke", None, "heal.all", {"args": []})
    generation(h, "a", G2, G1)
    [violation] = generation_holds_after_success(h.records)
    assert (violation.first["seq"], violation.second["seq"]) == (8, 11)


@pytest.mark.req("HIST-5")
def test_the_same_jobs_later_report_is_judged() -> None:
    h = History()
    start(h, "a")
    job(h, "a", "succeeded", G2, G2)
    job(h, "a", "succeeded", G1, G1)  # the same job, now at another generation
    [violation] = generation_holds_after_success(h.records)
    assert (violation.first["seq"], violation.second["seq"]) == (3, 4)


@pytest.mark.req("HIST-5")
@pytest.mark.parametrize(
    "reset",
    [
        "rollout.start",
        "generation.rollback",
        "legion.destroy",
        "legion.replace",
        "legion.reactivate",
    ],
)
def test_a_new_job_or_a_legion_reset_releases_the_generation_a_restart_does_not(reset: str) -> None:
    h = History()
    start(h, "a")
    job(h, "a", "succeeded", G2, G2)
    h.add("invoke", "a", "fault.restart", {"args": ["a"]})
    generation(h, "a", G2, G1)  # a restart that replays an old plan moves it: a violation
    assert len(generation_holds_after_success(h.records)) == 1
    h = History()
    start(h, "a")
    job(h, "a", "succeeded", G2, G2)
    h.add("invoke", "a", reset, {"args": ["a"]})
    generation(h, "a", G1, G2)
    assert generation_holds_after_success(h.records) == []


@pytest.mark.req("HIST-5")
def test_unreadable_reports_and_other_nodes_say_nothing() -> None:
    h = History()
    start(h, "a")
    job(h, "a", "succeeded", G2, G2)
    h.add("observation", "a", "generation.status", {"error": "connection refused"})
    h.add("info", "a", "generation.status", {"selected": G1, "running": G2})
    h.add("observation", None, "generation.status", {"selected": G1, "running": G2})
    h.add("observation", "a", "generation.status", {"selected": G1, "running": None})
    h.add("observation", "a", "generation.status", {"selected": None, "running": G1})
    generation(h, "b", G1, G2)
    assert generation_holds_after_success(h.records) == []


@pytest.mark.req("HIST-6")
def test_a_node_read_as_syncing_is_still_replaying_and_not_judged() -> None:
    h = History()
    h.add("info", None, "node_ids", {"b": "node-b"})
    write(h, "a", "plugin.cases", case("c1"), {"run_id": RUN})
    h.rows("a", **{"node-b": ("syncing", None)})
    read(h, "b")
    assert acknowledged_writes_survive(h.records) == []
    h.rows("a", **{"node-b": ("active", T1)})
    read(h, "b")
    assert [v.node for v in acknowledged_writes_survive(h.records)] == ["b"]
    h.rows("a", **{"node-b": ("decommissioned", T1)})
    read(h, "b")
    assert acknowledged_writes_survive(h.records) == []


@pytest.mark.req("HIST-5")
def test_reports_that_hold_the_generation_are_fine_and_a_split_names_the_report_before_it() -> None:
    h = History()
    start(h, "a")
    job(h, "a", "succeeded", G2, G2)
    generation(h, "a", G2, G2)
    assert generation_holds_after_success(h.records) == []
    start(h, "a", "j2")
    job(h, "a", "succeeded", G1, G2, job_id="j2")
    [violation] = generation_holds_after_success(h.records)
    assert (violation.first["seq"], violation.second["seq"]) == (4, 7)


@pytest.mark.req("HIST-5")
def test_a_refused_start_still_releases_the_generation() -> None:
    h = History()
    start(h, "a")
    job(h, "a", "succeeded", G2, G2)
    h.add("invoke", "a", "rollout.start", {"plan_id": "p2"})
    h.add("fail", "a", "rollout.start", {"error": "rollout-in-progress"})
    job(h, "a", "succeeded", G2, G2)  # the old job's report sets nothing any more
    generation(h, "a", G1, G1)
    assert generation_holds_after_success(h.records) == []


@pytest.mark.req("HIST-6")
def test_a_node_known_by_its_own_name_read_as_syncing_is_not_judged_and_odd_rows_are_skipped() -> (
    None
):
    h = History()
    write(h, "a", "plugin.cases", case("c1"), {"run_id": RUN})
    h.add("observation", "a", "cluster_nodes.list", {"b": {"status": "syncing"}, "x": "garbage"})
    read(h, "b")
    assert acknowledged_writes_survive(h.records) == []


@pytest.mark.req("HIST-7")
def test_an_event_read_again_unchanged_is_fine() -> None:
    h = History()
    event = {"id": "e1", "run_id": RUN, "created_at": T2}
    for _ in range(2):
        h.add("observation", "a", "plugin.state", {"status": 200, "body": {"events": [event]}})
    assert plugin_values_never_go_back(h.records) == []
