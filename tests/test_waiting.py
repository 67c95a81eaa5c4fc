"""Unit tests of the convergence waits (fake clock: no real sleeps)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from tests.fakes import ScriptedFleet
from tribesqa.waiting import (
    ConsistencyViolation,
    ConvergenceFailure,
    FakeClock,
    Observation,
    Timeline,
    Verdict,
    WaitTerminal,
    WaitTimeout,
    all_nodes_agree,
    all_nodes_satisfy,
    consistently,
    poll_until,
    short_repr,
)

NODES = ["hetzner-1", "scaleway-1", "ovh-1"]


def active_everywhere(observations: dict[str, Observation]) -> Verdict:
    """Done when every node reports 'active'."""
    lagging = [n for n, o in observations.items() if o.value != "active"]
    summary = "; ".join(
        [f"node {n} still {observations[n].value or 'down'}" for n in lagging]
        + [f"{len(observations) - len(lagging)} of {len(observations)} nodes agree"]
    )
    return Verdict(done=not lagging, summary=summary, lagging=lagging)


# ---------------------------------------------------------------------------- clocks


def test_fake_clock_sleep_advances_instantly_and_wall_follows() -> None:
    clock = FakeClock(start=5.0, wall_start=datetime(2025, 3, 1, tzinfo=UTC))
    clock.sleep(2.5)
    clock.advance(0.5)
    assert clock.now() == 8.0
    assert clock.wall() == datetime(2025, 3, 1, 0, 0, 3, tzinfo=UTC)
    assert clock.wall().tzinfo is not None
    assert clock.sleeps == [2.5]


def test_fake_clock_rejects_naive_wall_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        FakeClock(wall_start=datetime(2025, 1, 1))  # naive on purpose


# ---------------------------------------------------------------------------- poll_until


def test_success_after_n_polls_returns_final_observations() -> None:
    clock = FakeClock()
    fleet = ScriptedFleet(
        {
            "hetzner-1": ["active"],
            "scaleway-1": ["active"],
            "ovh-1": ["syncing", "syncing", "syncing", "active"],
        }
    )
    result = poll_until(
        NODES,
        fleet.probe,
        active_everywhere,
        what="membership converged",
        timeout_s=10,
        interval_s=0.5,
        clock=clock,
    )
    assert result.attempts == 4
    assert result.elapsed_s == pytest.approx(1.5)
    assert result.values() == dict.fromkeys(NODES, "active")
    assert result.verdict.done
    assert fleet.calls == dict.fromkeys(NODES, 4)
    # Attempts start every interval: the sleeps fill the gaps exactly.
    assert clock.sleeps == [0.5, 0.5, 0.5]


def test_attempts_start_every_interval_even_when_probes_are_slow() -> None:
    clock = FakeClock()

    def slow_probe(node: str) -> str:
        clock.advance(0.1 / len(NODES))  # the whole attempt costs 0.1 s
        return "syncing"

    with pytest.raises(WaitTimeout):
        poll_until(
            NODES,
            slow_probe,
            active_everywhere,
            what="x",
            timeout_s=1.0,
            interval_s=0.5,
            clock=clock,
        )
    assert clock.sleeps == [pytest.approx(0.4), pytest.approx(0.4)]


def test_timeout_message_is_one_exact_line() -> None:
    clock = FakeClock()
    fleet = ScriptedFleet({"hetzner-1": ["active"], "scaleway-1": ["active"], "ovh-1": ["syncing"]})
    with pytest.raises(WaitTimeout) as caught:
        poll_until(
            NODES,
            fleet.probe,
            active_everywhere,
            what="membership converged",
            timeout_s=10,
            interval_s=0.2,
            clock=clock,
        )
    assert str(caught.value) == (
        "membership converged: node ovh-1 still syncing; 2 of 3 nodes agree; "
        "lagging: ovh-1 after 10.0 s (51 polls)"
    )
    assert isinstance(caught.value, ConvergenceFailure)
    assert isinstance(caught.value, AssertionError)
    result = caught.value.result
    assert result.attempts == 51
    assert result.observations["ovh-1"].value == "syncing"
    assert result.verdict.lagging == ["ovh-1"]
    # First attempt at once, last one exactly at the deadline.
    assert fleet.calls["ovh-1"] == 51
    assert result.elapsed_s == pytest.approx(10.0)


def test_always_one_attempt_even_with_zero_timeout() -> None:
    fleet = ScriptedFleet({node: ["syncing"] for node in NODES})
    with pytest.raises(WaitTimeout) as caught:
        poll_until(
            NODES,
            fleet.probe,
            active_everywhere,
            what="w",
            timeout_s=0,
            interval_s=1,
            clock=FakeClock(),
        )
    assert caught.value.result.attempts == 1
    assert fleet.calls == dict.fromkeys(NODES, 1)


def test_final_attempt_at_deadline_can_still_succeed() -> None:
    clock = FakeClock()
    # Interval does not divide the timeout: attempts at 0, 3, 6, then a last one at 7.
    fleet = ScriptedFleet({"n1": ["syncing", "syncing", "syncing", "active"]})
    result = poll_until(
        ["n1"],
        fleet.probe,
        active_everywhere,
        what="w",
        timeout_s=7,
        interval_s=3,
        clock=clock,
    )
    assert result.attempts == 4
    assert result.elapsed_s == pytest.approx(7.0)


def test_terminal_verdict_fails_fast_at_that_attempt() -> None:
    clock = FakeClock()
    fleet = ScriptedFleet(
        {
            "hetzner-1": ["active"],
            "scaleway-1": ["active"],
            "ovh-1": ["syncing", "syncing", "decommissioned", "active"],
        }
    )

    def judge(observations: dict[str, Observation]) -> Verdict:
        verdict = active_everywhere(observations)
        if observations["ovh-1"].value == "decommissioned":
            verdict.terminal = "node ovh-1 was decommissioned"
        return verdict

    with pytest.raises(WaitTerminal) as caught:
        poll_until(
            NODES, fleet.probe, judge, what="join ovh-1", timeout_s=60, interval_s=1, clock=clock
        )
    assert str(caught.value) == "join ovh-1: node ovh-1 was decommissioned (after 2.0 s)"
    assert fleet.calls == dict.fromkeys(NODES, 3)
    assert caught.value.result.attempts == 3
    assert clock.now() - 1000.0 == pytest.approx(2.0)


def test_probe_exceptions_become_error_observations() -> None:
    fleet = ScriptedFleet(
        {
            "hetzner-1": ["active"],
            "scaleway-1": [ConnectionRefusedError("connection refused"), "active"],
            "ovh-1": [TimeoutError("read timed out\nafter 2 s"), "active"],
        }
    )
    seen: list[dict[str, Observation]] = []

    def judge(observations: dict[str, Observation]) -> Verdict:
        seen.append(observations)
        return active_everywhere(observations)

    result = poll_until(
        NODES, fleet.probe, judge, what="w", timeout_s=5, interval_s=1, clock=FakeClock()
    )
    first = seen[0]
    assert first["scaleway-1"].error == "ConnectionRefusedError: connection refused"
    assert first["scaleway-1"].value is None
    assert not first["scaleway-1"].ok
    assert first["ovh-1"].error == "TimeoutError: read timed out after 2 s"
    assert first["hetzner-1"].ok
    assert result.attempts == 2
    assert list(first) == NODES  # observations come in node order whatever finished first


def test_probes_of_one_attempt_run_concurrently() -> None:
    nodes = [f"node-{i}" for i in range(8)]
    barrier = threading.Barrier(len(nodes), timeout=5)
    threads: set[str] = set()

    def probe(node: str) -> str:
        # Sequential probes would break the barrier (BrokenBarrierError -> error observation).
        barrier.wait()
        threads.add(threading.current_thread().name)
        return "active"

    result = poll_until(
        nodes, probe, active_everywhere, what="w", timeout_s=1, interval_s=1, clock=FakeClock()
    )
    assert all(obs.ok for obs in result.observations.values())
    assert result.attempts == 1
    assert len(threads) == len(nodes)


def test_probe_timeout_reports_a_stuck_node_without_waiting_for_it() -> None:
    release = threading.Event()
    calls: Counter[str] = Counter()

    def probe(node: str) -> str:
        calls[node] += 1
        if node == "stuck":
            release.wait(5)
        return "active"

    try:
        with pytest.raises(WaitTimeout) as caught:
            poll_until(
                ["ok", "stuck"],
                probe,
                active_everywhere,
                what="w",
                timeout_s=2,
                interval_s=1,
                clock=FakeClock(),
                # Real seconds: long enough that the trivial "ok" probe always answers in time.
                probe_timeout_s=0.5,
            )
    finally:
        release.set()
    stuck = caught.value.result.observations["stuck"]
    assert stuck.error == "ProbeTimeout: no answer within 0.5 s"
    # The stuck probe is awaited again, not called again on every attempt.
    assert calls["stuck"] == 1
    assert calls["ok"] == 3


def test_judge_errors_propagate_and_bad_arguments_are_refused() -> None:
    def broken_judge(observations: dict[str, Observation]) -> Verdict:
        raise KeyError("bug in judge")

    with pytest.raises(KeyError):
        poll_until(
            ["a"], lambda n: 1, broken_judge, what="w", timeout_s=1, interval_s=1, clock=FakeClock()
        )
    with pytest.raises(ValueError, match="interval_s"):
        poll_until(["a"], lambda n: 1, active_everywhere, what="w", timeout_s=1, interval_s=0)
    with pytest.raises(ValueError, match="duplicate"):
        poll_until(["a", "a"], lambda n: 1, active_everywhere, what="w", timeout_s=1, interval_s=1)
    with pytest.raises(ValueError, match="at least one node"):
        poll_until([], lambda n: 1, active_everywhere, what="w", timeout_s=1, interval_s=1)


# ---------------------------------------------------------------------------- timeline


def test_timeline_collapses_identical_attempts_into_one_row() -> None:
    clock = FakeClock()
    fleet = ScriptedFleet({"hetzner-1": ["active"], "ovh-1": ["syncing"] * 99 + ["active"]})
    result = poll_until(
        ["hetzner-1", "ovh-1"],
        fleet.probe,
        active_everywhere,
        what="w",
        timeout_s=100,
        interval_s=0.5,
        clock=clock,
    )
    assert result.attempts == 100
    rows = result.timeline.rows
    assert len(rows) == 2
    assert (rows[0].first_attempt, rows[0].last_attempt, rows[0].count) == (1, 99, 99)
    assert rows[0].first_s == pytest.approx(0.0)
    assert rows[0].last_s == pytest.approx(49.0)
    assert rows[0].cells == {"hetzner-1": "active", "ovh-1": "syncing"}
    assert rows[1].cells == {"hetzner-1": "active", "ovh-1": "active"}
    assert rows[1].count == 1


def test_hundred_identical_polls_make_one_row_with_errors_and_describe() -> None:
    fleet = ScriptedFleet({"a": [{"status": "syncing", "hwm": 7}], "b": [OSError("refused")]})
    with pytest.raises(WaitTimeout) as caught:
        poll_until(
            ["a", "b"],
            fleet.probe,
            active_everywhere,
            what="w",
            timeout_s=99,
            interval_s=1,
            clock=FakeClock(),
            describe=lambda value: f"{value['status']}@{value['hwm']}",
        )
    timeline = caught.value.result.timeline
    assert caught.value.result.attempts == 100
    assert len(timeline) == 1
    assert timeline.rows[0].count == 100
    assert timeline.rows[0].cells == {"a": "syncing@7", "b": "OSError: refused"}
    assert timeline.rows[0].errors == frozenset({"b"})


def test_timeline_caps_rows_keeping_beginning_and_end() -> None:
    timeline = Timeline(max_rows=8)
    for attempt in range(1, 21):
        observations = {"a": Observation("a", attempt, None, float(attempt))}
        timeline.add(attempt, float(attempt), observations, "s", short_repr)
    assert len(timeline) == 8
    assert timeline.elided_rows == 12
    assert [row.cells["a"] for row in timeline][:2] == ["1", "2"]
    assert [row.cells["a"] for row in timeline][-1] == "20"
    assert timeline.attempts == 20


def test_short_repr_is_compact() -> None:
    assert short_repr("active") == "active"
    assert short_repr({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'
    assert short_repr("x" * 100, limit=10) == "x" * 9 + "…"
    assert short_repr(None) == "None"


def test_broken_describe_falls_back_to_repr() -> None:
    result = poll_until(
        ["a"],
        lambda n: "active",
        active_everywhere,
        what="w",
        timeout_s=1,
        interval_s=1,
        clock=FakeClock(),
        describe=lambda value: value["missing"],
    )
    assert result.timeline.rows[0].cells == {"a": "active"}


# ---------------------------------------------------------------------------- consistently


def test_consistently_passes_when_the_property_holds_throughout() -> None:
    clock = FakeClock()
    fleet = ScriptedFleet({node: ["active"] for node in NODES})
    result = consistently(
        NODES,
        fleet.probe,
        active_everywhere,
        what="stays active",
        duration_s=5,
        interval_s=1,
        clock=clock,
    )
    assert result.attempts == 6  # at 0, 1, ..., 5 s
    assert len(result.timeline) == 1
    assert fleet.calls == dict.fromkeys(NODES, 6)


def test_consistently_fails_at_the_first_deviation() -> None:
    clock = FakeClock()
    fleet = ScriptedFleet(
        {
            "hetzner-1": ["active"],
            "scaleway-1": ["active", "active", "active", "syncing", "active"],
            "ovh-1": ["active"],
        }
    )
    with pytest.raises(ConsistencyViolation) as caught:
        consistently(
            NODES,
            fleet.probe,
            active_everywhere,
            what="membership stays stable",
            duration_s=30,
            interval_s=1,
            clock=clock,
        )
    assert str(caught.value) == (
        "membership stays stable: node scaleway-1 still syncing; 2 of 3 nodes agree; "
        "deviating: scaleway-1 after 3.0 s (4 polls)"
    )
    assert fleet.calls == dict.fromkeys(NODES, 4)
    assert isinstance(caught.value, ConvergenceFailure)


def test_consistently_terminal_fails_fast() -> None:
    def judge(observations: dict[str, Observation]) -> Verdict:
        return Verdict(False, "x", ["a"], terminal="node a crashed")

    with pytest.raises(WaitTerminal, match=r"^w: node a crashed \(after 0\.0 s\)$"):
        consistently(
            ["a"], lambda n: 1, judge, what="w", duration_s=5, interval_s=1, clock=FakeClock()
        )


# ---------------------------------------------------------------------------- ready-made judges


def _observations(values: dict[str, object]) -> dict[str, Observation]:
    return {
        node: Observation(node, None, str(value), 0.0)
        if isinstance(value, Exception)
        else Observation(node, value, None, 0.0)
        for node, value in values.items()
    }


def test_all_nodes_satisfy_counts_lagging_and_unreachable() -> None:
    judge = all_nodes_satisfy(lambda v: v == "active", label="active")
    verdict = judge(_observations({"a": "active", "b": "syncing", "c": OSError("down")}))
    assert not verdict.done
    assert verdict.summary == "1 of 3 nodes active"
    assert verdict.lagging == ["b", "c"]
    assert judge(_observations({"a": "active", "b": "active"})).done


def test_all_nodes_satisfy_terminal_reason() -> None:
    judge = all_nodes_satisfy(
        lambda v: v == "active",
        terminal=lambda node, v: f"{node} decommissioned" if v == "decommissioned" else None,
    )
    verdict = judge(_observations({"a": "active", "b": "decommissioned"}))
    assert verdict.terminal == "b decommissioned"
    assert verdict.lagging == ["b"]


def test_all_nodes_agree_majority_and_ties() -> None:
    judge = all_nodes_agree()
    verdict = judge(_observations({"a": {"d": 1}, "b": {"d": 2}, "c": {"d": 2}}))
    assert verdict.summary == "2 of 3 nodes agree"
    assert verdict.lagging == ["a"]
    tie = judge(_observations({"a": 1, "b": 2}))
    assert tie.lagging == ["b"]  # ties go to the first node
    down = judge(_observations({"a": 1, "b": 1, "c": OSError("x")}))
    assert down.summary == "2 of 3 nodes agree; unreachable: c"
    assert down.lagging == ["c"]
    assert judge(_observations({"a": [1], "b": [1]})).done
    by_key = all_nodes_agree(key=lambda v: v["digest"])
    assert by_key(_observations({"a": {"digest": "x", "t": 1}, "b": {"digest": "x", "t": 2}})).done


def test_all_nodes_satisfy_reads_every_node_after_an_unreachable_one() -> None:
    judge = all_nodes_satisfy(lambda v: v == "active")
    verdict = judge(_observations({"a": OSError("down"), "b": "syncing", "c": "active"}))
    assert verdict.summary == "1 of 3 nodes ok"  # the default label
    assert verdict.lagging == ["a", "b"]


def test_a_terminal_reason_fails_the_verdict_and_is_its_summary() -> None:
    judge = all_nodes_satisfy(
        lambda v: True, terminal=lambda node, v: f"{node} gone" if v else None
    )
    verdict = judge(_observations({"a": 0, "b": 1}))
    assert (verdict.done, verdict.summary, verdict.terminal) == (False, "b gone", "b gone")


def test_all_nodes_agree_after_an_unreachable_node_and_with_none_reachable() -> None:
    judge = all_nodes_agree()
    verdict = judge(_observations({"a": OSError("x"), "b": 1, "c": 2, "d": 2}))
    assert verdict.summary == "2 of 4 nodes agree; unreachable: a"
    assert verdict.lagging == ["a", "b"]
    silent = judge(_observations({"a": OSError("x"), "b": OSError("y")}))
    assert (silent.done, silent.lagging) == (False, ["a", "b"])
    assert silent.summary == "0 of 2 nodes agree; unreachable: a, b"


def test_answers_agree_whatever_their_key_order_and_may_hold_times() -> None:
    judge = all_nodes_agree()
    when = datetime(2025, 1, 1, tzinfo=UTC)
    same = judge(_observations({"a": {"x": 1, "at": when}, "b": {"at": when, "x": 1}}))
    assert same.done
    later = judge(_observations({"a": {"at": when}, "b": {"at": when + timedelta(seconds=1)}}))
    assert later.lagging == ["b"]
