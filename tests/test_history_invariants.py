"""The history invariants as pure functions over hand-made histories (issue 14 item 2)."""

from __future__ import annotations

from itertools import count
from typing import Any

import pytest

from tribesqa.history import check, failure_message
from tribesqa.history.invariants import (
    activation_never_decreases,
    decommissioned_server_stays_out,
    membership_moves_forward,
    no_ghost_rows,
)

T1, T2 = "2026-01-01T00:00:01.000Z", "2026-01-01T00:00:02.000Z"


class History:
    """Builds records in the recorder's format, one ``seq`` after the other."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self._seq = count(1)
        self.test: str | None = "S.T1"

    def add(self, kind: str, node: str | None, what: str, value: Any = None) -> dict[str, Any]:
        seq = next(self._seq)
        record = {
            "seq": seq,
            "type": kind,
            "test": self.test,
            "node": node,
            "what": what,
            "op": None,
            "mono": float(seq),
            "wall": f"2026-01-01T00:00:{seq:02d}Z",
            "digest": f"{seq:016x}",
            "value": value,
        }
        self.records.append(record)
        return record

    def rows(self, observer: str, **rows: tuple[str, str | None]) -> None:
        value = {
            node: {
                "status": status,
                "activated_at": stamp,
                "decommissioned_at": None,
                "transport_address": f"http://{node}:1",
            }
            for node, (status, stamp) in rows.items()
        }
        self.add("observation", observer, "cluster_nodes.list", value)


@pytest.mark.req("HIST-1")
def test_a_row_that_goes_back_to_syncing_is_named_with_both_observations() -> None:
    h = History()
    h.rows("a", b=("syncing", None))
    h.rows("a", b=("active", T1))
    h.rows("a", b=("syncing", None))
    h.rows("a", b=("active", T1))
    [violation] = membership_moves_forward(h.records)
    assert (violation.node, violation.observer) == ("b", "a")
    assert (violation.first["seq"], violation.second["seq"]) == (2, 3)
    assert "active -> syncing" in violation.reason


@pytest.mark.req("HIST-1")
def test_rows_moving_forward_and_other_observers_lagging_are_fine() -> None:
    h = History()
    h.rows("a", b=("syncing", None))
    h.rows("c", b=("syncing", None))
    h.rows("a", b=("active", T1))
    h.rows("c", b=("syncing", None))  # another observer lagging behind is no regression
    h.rows("a", b=("decommissioned", T1))
    assert membership_moves_forward(h.records) == []


@pytest.mark.req("HIST-1")
@pytest.mark.parametrize(
    ("operation", "node"),
    [("sync.resync", "b"), ("sync.resync", "a"), ("legion.reactivate", "b"), ("fault.crash", "a")],
)
def test_a_resync_reactivation_or_crash_licenses_going_back(operation: str, node: str) -> None:
    h = History()
    h.rows("a", b=("active", T1))
    h.add("invoke", node, operation)
    h.add("ok", node, operation)
    h.rows("a", b=("syncing", None))
    h.rows("a", b=("active", T2))
    assert membership_moves_forward(h.records) == []


@pytest.mark.req("HIST-1")
def test_a_license_ends_with_the_test_it_ran_in() -> None:
    h = History()
    h.add("invoke", "b", "sync.resync")
    h.rows("a", b=("syncing", None))  # the resync's own regression, observed in the test
    h.test = "S.T2"
    h.rows("a", b=("active", T1))
    h.rows("a", b=("syncing", None))  # once the test is over, going back is a violation again
    assert [v.second["seq"] for v in membership_moves_forward(h.records)] == [4]


@pytest.mark.req("HIST-1")
def test_decommissioned_back_to_active_needs_a_reactivation() -> None:
    h = History()
    h.rows("a", b=("decommissioned", T1))
    h.rows("a", b=("active", T1))
    [violation] = membership_moves_forward(h.records)
    assert "decommissioned -> active" in violation.reason


@pytest.mark.req("HIST-1")
def test_node_ids_map_legion_names_to_membership_ids() -> None:
    h = History()
    h.add("info", None, "node_ids", {"hetzner-1": "id-1", "ovh-1": "id-2"})
    h.rows("hetzner-1", **{"id-2": ("active", T1)})
    h.add("invoke", "ovh-1", "sync.resync")
    h.rows("hetzner-1", **{"id-2": ("syncing", None)})
    assert membership_moves_forward(h.records) == []


@pytest.mark.req("HIST-2")
def test_an_activation_stamp_that_moves_back_is_named() -> None:
    h = History()
    h.rows("a", b=("active", T2))
    h.rows("a", b=("active", T1))
    h.rows("a", b=("active", T2))
    [violation] = activation_never_decreases(h.records)
    assert violation.invariant == "activation never decreases"
    assert T1 in violation.reason and T2 in violation.reason
    assert (violation.first["seq"], violation.second["seq"]) == (1, 2)


@pytest.mark.req("HIST-2")
def test_a_fresh_activation_and_a_missing_stamp_are_fine() -> None:
    h = History()
    h.rows("a", b=("active", T1))
    h.rows("a", b=("syncing", None))
    h.rows("a", b=("active", T2))
    assert activation_never_decreases(h.records) == []


@pytest.mark.req("HIST-3")
def test_a_row_for_a_node_legion_never_materialized_is_a_ghost() -> None:
    h = History()
    h.add("observation", None, "legion.list", {"a": "ready", "b": "planned"})
    h.rows("a", a=("active", T1), b=("syncing", None))
    [violation] = no_ghost_rows(h.records)
    assert (violation.node, violation.observer) == ("b", "a")
    assert violation.first is not None and violation.first["what"] == "legion.list"


@pytest.mark.req("HIST-3")
def test_materialized_nodes_come_from_legion_operations_too() -> None:
    h = History()
    h.add("ok", None, "legion.provision_init", {"name": "a"})
    h.add("ok", None, "legion.materialize", {"materialized": ["b"]})
    h.add("ok", "b", "legion.replace", {"name": "c"})
    h.rows("a", a=("active", T1), b=("active", T1), c=("syncing", None))
    assert no_ghost_rows(h.records) == []


@pytest.mark.req("HIST-3")
def test_no_legion_record_means_nothing_to_judge_ghosts_by() -> None:
    h = History()
    h.rows("a", z=("active", T1))
    assert no_ghost_rows(h.records) == []


def _servers(h: History, observer: str, *addresses: str) -> None:
    h.add("observation", observer, "sync.status", {"servers": list(addresses)})


@pytest.mark.req("HIST-4")
def test_a_decommissioned_address_coming_back_into_sync_servers_is_named() -> None:
    h = History()
    _servers(h, "a", "http://b:1")
    h.rows("a", b=("decommissioned", T1))
    _servers(h, "a", "http://b:1")  # propagation lag: not yet dropped, fine
    _servers(h, "a")
    _servers(h, "a", "http://b:1")
    [violation] = decommissioned_server_stays_out(h.records)
    assert (violation.node, violation.observer) == ("b", "a")
    assert (violation.first["seq"], violation.second["seq"]) == (4, 5)


@pytest.mark.req("HIST-4")
def test_a_reactivated_node_may_come_back_into_sync_servers() -> None:
    h = History()
    h.rows("a", b=("decommissioned", T1))
    _servers(h, "a")
    h.add("invoke", "b", "legion.reactivate")
    h.rows("a", b=("active", T2))
    _servers(h, "a", "http://b:1")
    assert decommissioned_server_stays_out(h.records) == []


@pytest.mark.req("HIST-1")
def test_the_failure_message_names_invariant_node_both_observations_and_the_history() -> None:
    h = History()
    h.rows("a", b=("active", T1), c=("active", T1))
    h.rows("a", b=("syncing", None), c=("active", T1))
    message = failure_message(check(h.records), "artifacts/S/history.jsonl")
    assert "invariant 'membership moves forward', node b on a" in message
    assert "first:  #1 2026-01-01T00:00:01Z [S.T1] a cluster_nodes.list digest=" in message
    assert "second: #2" in message and '"status": "syncing"' in message
    assert '"c"' not in message  # only the contradicting row is shown
    assert message.endswith("history: artifacts/S/history.jsonl")
