"""The fleet gate, one pabot process per roster node, against ONE shared simulated fleet; and the
same suite under plain robot (PabotLib then runs in-process)."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from tests.parallel.conftest import Env, keyword_runs, load, messages, write_target
from tribesqa.history import read_history
from tribesqa.reporting.snapshot import safe_name

pytestmark = pytest.mark.slow

SHARED_HOLD = (
    "Gate Preconditions Should Hold",
    "The Gate Lifecycle Checks Pass On Node",
    "Plugin Write On Node Should Reach Its Plugin Peers",
)


def overlaps(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


@pytest.mark.req("GATE-1", "GATE-8")
def test_gate_per_node_shares_one_fleet_and_serializes_destructive_checks(env: Env) -> None:
    out = env.tmp / "results"
    done = env.tribes_qa(
        "run", "--gate-per-node", "--target", str(env.target), "--outputdir", str(out)
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    args = sorted(p.name for p in (out / "pabot-args").iterdir())
    assert args == ["gate-1-hetzner-1.args", "gate-2-scaleway-1.args", "gate-3-ovh-1.args"]
    result = load(out / "output.xml")
    processes = result.suite.suites
    assert sorted(s.metadata["Gate node"] for s in processes) == [
        "hetzner-1",
        "ovh-1",
        "scaleway-1",
    ]
    assert result.statistics.total.passed == 15 and result.statistics.total.failed == 0

    # ONE fleet: opened by one process (Run Setup Only Once), closed by one (Run Teardown Only
    # Once), every process attached to the same handle.
    assert len(keyword_runs(result, "Open The Shared Gate Fleet")) == 1
    assert len(keyword_runs(result, "Open Target")) == 1
    assert len(keyword_runs(result, "Close Shared Target")) == 1
    attached = messages(result, "Attach To Shared Target")
    handles = {m for text in attached for m in re.findall(r"shared target (\w+)", text)}
    assert len(attached) == 3 and len(handles) == 1, attached

    # Each process checked its own node; destructive sections never overlapped any other
    # process's check (the exclusive hold of the shared fleet).
    for suite in processes:
        node = suite.metadata["Gate node"]
        preconditions = messages(suite, "Gate Preconditions Should Hold")
        assert preconditions == [f"gate preconditions hold on {node}"], preconditions
    destructive = keyword_runs(result, "The Destructive Gate Checks Pass On Node")
    assert len(destructive) == 3
    others = [run for name in SHARED_HOLD for run in keyword_runs(result, name)] + destructive
    for suite_id, start, end, _ in destructive:
        for other_suite, other_start, other_end, _ in others:
            if other_suite != suite_id:
                assert not overlaps((start, end), (other_start, other_end)), (
                    f"{suite_id} destructive {start}-{end} overlapped {other_suite} "
                    f"{other_start}-{other_end}"
                )
    tags = {tag for test in result.suite.all_tests for tag in test.tags if tag.startswith("node:")}
    assert tags == {"node:hetzner-1", "node:scaleway-1", "node:ovh-1"}

    # Each process judged its own history. The resets the others ran while it waited for the
    # fleet are in it, named with the process that ran them (history/shared.py): every
    # exclusive hold after the first one takes in the earlier ones' resyncs and restarts.
    judged = messages(result, "History Should Satisfy Invariants")
    assert len(judged) == 3 and all(
        re.fullmatch(r"\d+ history records hold every invariant \(artifacts/.+\)", m)
        for m in judged
    ), judged
    histories = {
        p.parent.name: read_history(p) for p in (out / "artifacts").glob("*/history.jsonl")
    }
    assert len(histories) == 3, sorted(histories)
    imported = {
        process: [r for r in records if r["type"] == "invoke" and "by" in (r["value"] or {})]
        for process, records in histories.items()
    }
    assert sum(1 for records in imported.values() if records) >= 2, imported
    for process, records in imported.items():
        assert all(safe_name(r["value"]["suite"]) != process for r in records), records
        assert {r["what"] for r in records} <= {"sync.resync", "fault.restart"}, records
    assert env.fleet_dirs() == []


@pytest.mark.req("GATE-3")
def test_a_failing_gate_setup_fails_every_process_and_leaves_nothing(env: Env) -> None:
    # Legion names the first hetzner node hetzner-1: a roster saying hetzner-7 cannot be made.
    target = write_target(
        env.tmp / "bad-roster.yaml",
        env.fleets_dir,
        roster=[
            {"node": "hetzner-7", "role": "init", "provider": "hetzner"},
            {"node": "ovh-1", "role": "verify", "provider": "ovh"},
        ],
    )
    out = env.tmp / "results"
    done = env.tribes_qa("run", "--gate-per-node", "--target", str(target), "--outputdir", str(out))
    assert done.returncode != 0
    result = load(out / "output.xml")
    assert result.statistics.total.failed == 10 and result.statistics.total.passed == 0
    reasons = {test.message for test in result.suite.all_tests}
    assert any("rename the roster entry" in reason for reason in reasons), reasons
    assert any("Setup failed in other process" in reason for reason in reasons), reasons
    assert env.fleet_dirs() == []


@pytest.mark.req("GATE-1")
def test_the_same_gate_runs_sequentially_under_plain_robot(env: Env) -> None:
    out = env.tmp / "results"
    done = env.tribes_qa(
        "run", "--target", str(env.target), "--outputdir", str(out), "--",
        "suites/fleet_gate.robot",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    assert "pabot" not in done.stderr.split("\n", 1)[0]
    result = load(out / "output.xml")
    assert result.statistics.total.passed == 5
    assert messages(result, "Gate Preconditions Should Hold") == [
        "gate preconditions hold on hetzner-1, scaleway-1, ovh-1"
    ]
    # The only user of its fleet closes it at once (no Run Teardown Only Once wait).
    stops = messages(result, "Stop Shared Target")
    assert any(m.startswith("Closed shared target") for m in stops), stops
    assert (out / "fleet-matrix.html").is_file()
    assert env.fleet_dirs() == []
