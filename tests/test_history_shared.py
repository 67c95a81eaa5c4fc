"""Resets other processes ran on a shared fleet (the per-node gate under pabot) reach this
process's history at its next hold, and license the rows they move, as its own resets would.

Two processes are two ``SharedResets`` with their own recorder over one store (PabotLib's part
the guard uses); the invariants are the real ones."""

from __future__ import annotations

from typing import Any

import pytest

from tribesqa.history import HistoryRecorder, check
from tribesqa.history.shared import SharedResets, resets_since
from tribesqa.shared_fleet import LocalStore

FLEET = "tribes-qa.shared-fleet.abc123"


def recorder(suite: str) -> HistoryRecorder:
    history = HistoryRecorder(enabled=True)
    history.begin_suite(suite, None)
    return history


def observe(history: HistoryRecorder, test: str, status: str) -> None:
    history.test = test
    row = {"node_id": "ovh-1", "status": status, "activated_at": None, "transport_address": "x"}
    history.observe("hetzner-1", "cluster_nodes.list", {"nodes": [row]})


def resync(history: HistoryRecorder, test: str, node: str) -> None:
    history.test = test
    with history.operation(node, "sync.resync", {"full": True}) as out:
        out.append({"job_id": "resync-1"})


def two_processes() -> tuple[Any, Any]:
    store = LocalStore()
    first = (recorder("Gate@1"), SharedResets(store, FLEET, "host:1", "Gate@1"))
    second = (recorder("Gate@2"), SharedResets(store, FLEET, "host:2", "Gate@2"))
    return first, second


@pytest.mark.req("HIST-1")
def test_a_row_another_process_reset_is_unlicensed_in_a_history_blind_to_it() -> None:
    """The gate's subtlety: process 2 read ovh-1 active, process 1 resynced it (its check then
    failed, the row still syncing when it released the fleet), process 2 reads it syncing."""
    blind = recorder("Gate@2")
    observe(blind, "Gate.Lifecycle", "active")
    observe(blind, "Gate.Destructive", "syncing")
    assert [v.invariant for v in check(blind.records())] == ["membership moves forward"]


@pytest.mark.req("HIST-1")
def test_a_row_another_process_reset_is_licensed_once_its_reset_is_imported() -> None:
    (one, one_resets), (two, two_resets) = two_processes()
    two_resets.on_hold(two)
    observe(two, "Gate.Lifecycle", "active")
    two_resets.on_release(two)
    one_resets.on_hold(one)
    resync(one, "Gate.Destructive", "ovh-1")
    one_resets.on_release(one)
    two.test = "Gate.Destructive"
    assert two_resets.on_hold(two) == 1
    observe(two, "Gate.Destructive", "syncing")
    assert check(two.records()) == []
    imported = [r for r in two.records() if r["type"] == "invoke"]
    assert [(r["node"], r["what"], r["test"]) for r in imported] == [
        ("ovh-1", "sync.resync", "Gate.Destructive")
    ]
    assert imported[0]["value"]["by"] == "host:1" and imported[0]["value"]["suite"] == "Gate@1"
    # A later move back, with no reset anywhere since, is still a violation.
    observe(two, "Gate.History", "active")
    two.test = "Gate.Later"
    observe(two, "Gate.Later", "syncing")
    assert [v.invariant for v in check(two.records())] == ["membership moves forward"]


def test_a_process_never_imports_its_own_resets_nor_publishes_imported_ones() -> None:
    (one, one_resets), (two, two_resets) = two_processes()
    one_resets.on_hold(one)
    resync(one, "Gate.Destructive", "hetzner-1")
    one_resets.on_release(one)
    assert one_resets.on_hold(one) == 0  # its own: already in its history
    one_resets.on_release(one)
    assert two_resets.on_hold(two) == 1
    two_resets.on_release(two)  # nothing of its own ran: nothing published, no echo
    assert one_resets.on_hold(one) == 0
    assert resets_since(two.records(), 0) == []


def test_only_resets_run_under_the_hold_are_published() -> None:
    (one, one_resets), (two, two_resets) = two_processes()
    resync(one, "Gate.Setup", "ovh-1")  # before any hold: already seen by whoever held then
    one_resets.on_hold(one)
    one.test = "Gate.Destructive"
    with one.operation("ovh-1", "fault.partition", {}) as out:  # a fault, not a reset
        out.append(None)
    with one.operation("ovh-1", "fault.restart", {}) as out:
        out.append(None)
    one_resets.on_release(one)
    two_resets.on_hold(two)
    assert [(r["node"], r["what"]) for r in two.records() if r["type"] == "invoke"] == [
        ("ovh-1", "fault.restart")
    ]
