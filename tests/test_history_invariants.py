"""The history invariants as pure functions over hand-made histories (issue 14 item 2)."""

from __future__ import annotations

from itertools import count
from typing import Any

import pytest

from tribesqa.history import check, failure_message
from tribesqa.history.invariants import (
    RESET_OPERATIONS,
    Licenses,
    Violation,
    _materialized,
    activation_never_decreases,
    decommissioned_server_stays_out,
    membership_moves_forward,
    no_ghost_rows,
    node_ids,
    observations,
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


# ---------------------------------------------------------------------------------------------
# Each rule on its own: the shared helpers, licenses, and the whole violation of each invariant
# ---------------------------------------------------------------------------------------------

_MOVED_BACK = "with no resync, reactivation, crash or restart of either node in between"


@pytest.mark.req("HIST-1")
def test_observations_are_the_reads_of_one_kind_and_nothing_else() -> None:
    h = History()
    h.rows("a", b=("active", T1))
    _servers(h, "a", "http://b:1")  # another read
    h.add("invoke", "a", "sync.resync")  # an operation
    h.rows("c", b=("active", T1))
    rows = [h.records[0], h.records[3]]
    assert observations(h.records, "cluster_nodes.list") == rows


@pytest.mark.req("HIST-1")
def test_node_ids_come_from_node_ids_info_records_only_and_later_ones_add_to_them() -> None:
    h = History()
    h.add("info", None, "node_ids", {"hetzner-1": "id-1"})
    h.add("info", None, "node_ids", {"ovh-1": "id-2"})
    h.add("info", None, "target", {"ovh-1": "elsewhere"})  # another info: not node ids
    assert node_ids(h.records) == {"hetzner-1": "id-1", "ovh-1": "id-2"}


@pytest.mark.req("HIST-1")
def test_a_license_spans_its_invoke_to_the_end_of_its_test_and_covers_both_ends() -> None:
    h = History()
    h.add("info", None, "node_ids", {"hetzner-1": "id-1"})
    h.add("invoke", None, "fault.restart")  # no node: licenses nobody, nor hides the ones after it
    crash = h.add("invoke", "hetzner-1", "fault.crash")
    h.add("ok", "hetzner-1", "fault.crash")
    last = h.add("invoke", "b", "legion.decommission")  # not a reset: no license of its own
    h.test = "S.T2"
    after = h.add("observation", "a", "cluster_nodes.list", {})
    licenses = Licenses(h.records, RESET_OPERATIONS)
    assert licenses.ranges == {"id-1": [(3, 5)]}  # keyed by the membership id
    assert licenses.covers(("id-1",), h.records[0], crash)  # ends where the license starts
    assert licenses.covers(("id-1",), last, after)  # starts where the license ends
    assert not licenses.covers(("id-1",), after, after)
    assert not licenses.covers(("hetzner-1", "b"), h.records[0], after)


@pytest.mark.req("HIST-1")
def test_a_license_lasts_to_the_end_of_its_test_however_the_test_before_ended() -> None:
    h = History()
    h.rows("a", c=("active", T1))  # the previous test
    h.test = "S.T2"
    h.add("invoke", "b", "sync.resync")
    h.rows("a", b=("active", T1))
    h.rows("a", b=("syncing", None))  # after the invoke, within the test: licensed
    h.rows("a", b=("active", T2))
    h.test = "S.T3"
    h.rows("a", b=("active", T2))
    h.rows("a", b=("syncing", None))  # the next test: not licensed
    first, second = h.records[5], h.records[6]
    reason = f"row b went active -> syncing on a {_MOVED_BACK}"
    assert membership_moves_forward(h.records) == [
        Violation("membership moves forward", "b", "a", first, second, reason)
    ]


@pytest.mark.req("HIST-1")
def test_a_reset_late_in_a_test_licenses_the_step_back_first_seen_in_the_next_test() -> None:
    h = History()
    h.add("invoke", "b", "fault.restart")
    h.rows("a", b=("active", T1))  # the test's last record: the license ends here
    h.test = "S.T2"
    h.rows("a", b=("syncing", None))
    assert membership_moves_forward(h.records) == []


@pytest.mark.req("HIST-1")
def test_a_license_taken_in_suite_setup_does_not_reach_into_suite_teardown() -> None:
    h = History()
    h.test = None  # suite setup
    h.add("invoke", "b", "fault.restart")
    h.test = "S.T1"
    h.rows("a", b=("active", T1))
    h.test = None  # suite teardown: no test either, but not the setup
    h.rows("a", b=("active", T1))
    h.rows("a", b=("syncing", None))
    assert [v.second["seq"] for v in membership_moves_forward(h.records)] == [4]


@pytest.mark.req("HIST-1")
def test_a_crash_of_the_observer_named_by_legion_licenses_the_rows_it_holds() -> None:
    h = History()
    h.add("info", None, "node_ids", {"hetzner-1": "id-1", "ovh-1": "id-2"})
    h.rows("hetzner-1", **{"id-2": ("active", T1)})
    h.add("invoke", "hetzner-1", "fault.crash")
    h.rows("hetzner-1", **{"id-2": ("syncing", None)})
    assert membership_moves_forward(h.records) == []


@pytest.mark.req("HIST-1")
@pytest.mark.parametrize(
    ("before", "after"),
    [
        (None, ("syncing", None)),  # a row seen for the first time
        (("active", T1), ("left", None)),  # a row of a status the invariant does not rank
        (("syncing", None), ("active", T1)),  # a row moving forward
    ],
    ids=["new-row", "unranked-status", "row-moving-forward"],
)
def test_a_row_going_back_is_named_whatever_row_comes_before_it_in_the_list(
    before: tuple[str, str | None] | None, after: tuple[str, str | None]
) -> None:
    h = History()
    h.rows("a", **({} if before is None else {"b": before}), c=("active", T1))
    h.rows("a", b=after, c=("syncing", None))
    first, second = h.records
    reason = f"row c went active -> syncing on a {_MOVED_BACK}"
    assert membership_moves_forward(h.records) == [
        Violation("membership moves forward", "c", "a", first, second, reason)
    ]


@pytest.mark.req("HIST-2")
def test_an_activation_going_back_is_named_whole_after_a_row_with_no_stamp() -> None:
    h = History()
    h.rows("a", b=("syncing", None), c=("active", T2))
    h.rows("a", b=("syncing", None), c=("active", T1))
    first, second = h.records
    reason = f"activated_at of c on a went back from {T2} to {T1}"
    assert activation_never_decreases(h.records) == [
        Violation("activation never decreases", "c", "a", first, second, reason)
    ]


@pytest.mark.req("HIST-2")
def test_every_activation_going_back_in_one_observation_is_named() -> None:
    h = History()
    h.rows("a", b=("active", T2), c=("active", T2))
    h.rows("a", b=("active", T1), c=("active", T1))
    assert [v.node for v in activation_never_decreases(h.records)] == ["b", "c"]


@pytest.mark.req("HIST-2")
def test_each_observer_keeps_its_own_activation_stamps() -> None:
    h = History()
    h.rows("a", b=("active", T2))
    h.rows("c", b=("active", T1))  # c still shows an older activation: not a step back on c
    h.rows("c", b=("active", T2))
    assert activation_never_decreases(h.records) == []


@pytest.mark.req("HIST-2")
def test_a_crash_licenses_an_earlier_activation_stamp() -> None:
    h = History()
    h.rows("a", b=("active", T2))
    h.add("invoke", "b", "fault.crash")
    h.rows("a", b=("active", T1))
    assert activation_never_decreases(h.records) == []


@pytest.mark.req("HIST-2")
def test_activation_stamps_with_a_lowercase_z_are_judged_too() -> None:
    # RFC 3339 allows "z"; contract.node_time reads it, so the history check must not skip it
    h = History()
    later, earlier = "2026-01-01T00:00:02z", "2026-01-01T00:00:01z"
    h.rows("a", b=("active", later))
    h.rows("a", b=("active", earlier))
    first, second = h.records
    reason = f"activated_at of b on a went back from {later} to {earlier}"
    assert activation_never_decreases(h.records) == [
        Violation("activation never decreases", "b", "a", first, second, reason)
    ]


@pytest.mark.req("HIST-3")
def test_a_node_counts_as_materialized_from_the_first_record_showing_it() -> None:
    h = History()
    h.add("observation", None, "legion.list", {"a": "ready", "p": "planned"})
    h.add("ok", None, "legion.provision_init", None)  # no answer: names nobody
    h.add("ok", None, "legion.materialize", {"skipped": ["p"]})  # materialized nobody
    h.add("invoke", None, "legion.provision_init", {"args": ["x"]})  # asked, not done
    h.add("ok", "b", "legion.replace", {"name": "c"})
    h.add("observation", None, "legion.list", {"a": "ready", "c": "provisioning"})
    assert _materialized(h.records) == {"a": h.records[0], "c": h.records[4]}


@pytest.mark.req("HIST-3")
def test_a_ghost_row_is_named_once_per_observer_against_legion_s_latest_list() -> None:
    h = History()
    h.add("observation", None, "legion.list", {"a": "ready"})
    legion = h.add("observation", None, "legion.list", {"a": "ready", "b": "ready"})
    h.rows("a", a=("active", T1), b=("active", T1), z=("syncing", None))
    h.rows("a", a=("active", T1), b=("active", T1), z=("syncing", None))  # already named
    h.rows("b", z=("syncing", None))
    on_a, on_b = h.records[2], h.records[4]
    assert no_ghost_rows(h.records) == [
        Violation(
            "no ghost rows",
            "z",
            observer,
            legion,
            record,
            f"{observer} holds a row for z, which Legion never materialized (materialized: a, b)",
        )
        for observer, record in (("a", on_a), ("b", on_b))
    ]


@pytest.mark.req("HIST-3")
def test_a_ghost_seen_before_any_legion_list_has_no_first_record() -> None:
    h = History()
    h.add("ok", None, "legion.provision_init", {"name": "a"})
    h.rows("a", z=("syncing", None))
    reason = "a holds a row for z, which Legion never materialized (materialized: a)"
    assert no_ghost_rows(h.records) == [
        Violation("no ghost rows", "z", "a", None, h.records[1], reason)
    ]


@pytest.mark.req("HIST-3")
def test_materialized_legion_names_are_matched_by_membership_id() -> None:
    h = History()
    h.add("info", None, "node_ids", {"hetzner-1": "id-1"})
    legion = h.add("observation", None, "legion.list", {"hetzner-1": "ready"})
    h.rows("hetzner-1", **{"id-1": ("active", T1), "id-9": ("syncing", None)})
    reason = "id-1 holds a row for id-9, which Legion never materialized (materialized: id-1)"
    assert no_ghost_rows(h.records) == [
        Violation("no ghost rows", "id-9", "id-1", legion, h.records[2], reason)
    ]


@pytest.mark.req("HIST-3")
def test_other_reads_hold_no_membership_rows() -> None:
    h = History()
    h.add("observation", None, "legion.list", {"a": "ready"})
    h.add("observation", "a", "plugin.state", {"status": 200, "body": {"cases": [], "events": []}})
    assert no_ghost_rows(h.records) == []


@pytest.mark.req("HIST-4")
def test_a_returning_decommissioned_server_is_named_whole_by_membership_ids() -> None:
    h = History()
    h.add("info", None, "node_ids", {"hetzner-1": "id-1", "ovh-1": "id-2"})
    h.rows("hetzner-1", **{"id-2": ("decommissioned", T1)})
    dropped = h.add("observation", "hetzner-1", "sync.status", {"servers": []})
    back = h.add("observation", "hetzner-1", "sync.status", {"servers": ["http://id-2:1"]})
    reason = (
        "id-1 syncs from http://id-2:1 again, the transport address of decommissioned id-2, "
        "after it had dropped it"
    )
    assert decommissioned_server_stays_out(h.records) == [
        Violation("decommissioned server stays out", "id-2", "id-1", dropped, back, reason)
    ]


@pytest.mark.req("HIST-4")
def test_a_resync_and_other_reads_in_between_do_not_let_the_address_back() -> None:
    h = History()
    h.rows("a", b=("decommissioned", T1))
    _servers(h, "a")
    h.add("invoke", "a", "sync.resync")  # a resync is no reactivation of b
    h.add("ok", "a", "sync.resync")
    h.add("observation", None, "legion.list", {"a": "ready", "b": "decommissioned"})
    _servers(h, "a", "http://b:1")
    assert [
        (v.first["seq"], v.second["seq"]) for v in decommissioned_server_stays_out(h.records)
    ] == [(2, 6)]


@pytest.mark.req("HIST-4")
def test_a_row_with_no_transport_address_does_not_hide_the_decommissioned_rows_after_it() -> None:
    h = History()
    row = {"activated_at": None, "decommissioned_at": None}
    h.add(
        "observation",
        "a",
        "cluster_nodes.list",
        {
            "n": {**row, "status": "syncing", "transport_address": None},
            "b": {**row, "status": "decommissioned", "transport_address": "http://b:1"},
        },
    )
    _servers(h, "a")
    _servers(h, "a", "http://b:1")
    assert [v.node for v in decommissioned_server_stays_out(h.records)] == ["b"]


@pytest.mark.req("HIST-4")
def test_each_observer_must_have_dropped_the_address_itself() -> None:
    h = History()
    h.rows("a", b=("decommissioned", T1))
    _servers(h, "a")
    _servers(h, "c", "http://b:1")  # c has not dropped it yet: lag, not a return
    _servers(h, "c")
    _servers(h, "c", "http://b:1")
    violations = decommissioned_server_stays_out(h.records)
    assert [(v.observer, v.first["seq"], v.second["seq"]) for v in violations] == [("c", 4, 5)]


@pytest.mark.req("HIST-2")
def test_a_stamp_without_an_offset_is_no_stamp_not_a_crash() -> None:
    h = History()
    h.rows("a", b=("active", "2026-01-01T00:00:02Z"))
    h.rows("a", b=("active", "2026-01-01T00:00:01"))  # no offset: RFC 3339 requires one
    h.rows("a", b=("active", "2026-01-01T00:00:02Z"))
    assert activation_never_decreases(h.records) == []
