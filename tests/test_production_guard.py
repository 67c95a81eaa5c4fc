"""The production guard, keyword by keyword, without a fleet.

Every keyword of the library is classified here: destructive (marked ``@destructive``),
destructive only for some arguments (guarded at the act), or neither. A new keyword fails
``test_every_keyword_is_classified`` until someone decides. Each destructive keyword is then
called on a target that guards its acts: with ``ALLOW_DESTRUCTIVE`` false it is refused before it
reaches the fleet, naming the keyword and the variable; with it true it goes on to the fleet
(here a fake one that answers every access with ``ReachedTheFleet``). On a simulated target the
guard never asks.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import Any

import pytest
from robot.utils import printable_name

from tribesqa import context as context_module
from tribesqa.context import LibraryContext
from tribesqa.guard import DestructiveActRefused, destructive_keywords
from tribesqa.library import TribesLibrary

pytestmark = pytest.mark.req("GUARD-1")

DESTRUCTIVE = {
    # Legion: provision, plan, materialize, decommission, replace, reactivate, destroy.
    "provision_init_node",
    "plan_join_nodes",
    "plan_one_join_node_per_provider",
    "materialize_planned_nodes",
    "start_materializing_planned_nodes",
    "interrupt_graph_run_after",
    "decommission_node",
    "decommission_should_be_refused",
    "replace_node",
    "reactivate_node",
    "destroy_node",
    "destroy_all_nodes",
    # Faults (their heals are not guarded: they only undo).
    "partition_node_from_peers",
    "crash_node",
    "restart_node",
    "start_publish_outage",
    # Rollout, rollback, resync.
    "start_rollout",
    "roll_out_plugin_to_nodes",
    "roll_back_to_generation",
    "roll_back_nodes_to_generation",
    "force_full_resync",
    "force_full_resync_on_nodes",
    # Plugin writes.
    "create_case",
    "increment_case",
    "create_event",
    "plugin_write_on_node_should_reach_its_plugin_peers",
}

# Destructive only for some arguments: keyword -> (arguments that act, arguments that do not).
CONDITIONAL: dict[str, tuple[tuple[Any, ...], tuple[Any, ...]]] = {
    "call_management_method": (("hetzner-1", "sync.resync"), ("hetzner-1", "plugins.list")),
    "management_call_should_be_refused": (
        ("hetzner-1", "generation.rollback", "invalid-params"),
        ("hetzner-1", "rollout.status", "unknown-job"),
    ),
    "management_body_should_be_refused": (
        ("hetzner-1", '{"method": "sync.resync", "params": [1]}', "invalid-params"),
        ("hetzner-1", "not json", "invalid-payload"),
    ),
    "management_method_should_answer_in_contract_shape": (
        ("hetzner-1", "rollout.start", {"plan_id": "p"}),
        ("hetzner-1", "sync.status"),
    ),
    # Provision only when nodes are missing and the target may provision (tests/keywords/).
    "ensure_roster_nodes_exist": ((), ()),
    "nodes_for_admin_api_checks": ((), ()),
}

NOT_DESTRUCTIVE = {
    # Reads of Legion, nodes, plugins, waits and checks.
    "Get Current Time UTC", "activation_should_be_fresh", "cluster_status_should_be_healthy_on_nodes",
    "membership_should_match", "node_should_be_archived_as_decommissioned",
    "sync_endpoints_should_match_transport_addresses", "wait_until_cluster_converged",
    "wait_until_node_is_active_everywhere", "wait_until_tribe_converged",
    "decommissioned_node_should_receive_no_new_writes",
    "decommissioned_node_should_report_itself_out_of_the_cluster",
    "health_endpoint_should_answer_ok", "management_request_should_be_refused",
    "history_should_satisfy_invariants", "preview_should_report_missing_substitutes",
    "gate_preconditions_should_hold", "get_gate_nodes", "get_transport_address_of_node",
    "node_should_be_cut_from_the_sync_mesh", "skip_unless_destructive_checks_are_allowed",
    "transport_address_of_node_should_be", "Get Admin URL Of Node", "Get NIP-98 Auth",
    "get_legion_node", "get_legion_node_names", "get_legion_state_snapshot",
    "get_sync_endpoint_of", "graph_run_should_still_be_running", "legion_node_list_should_be_empty",
    "legion_snapshot_should_hold_no_secret_material", "legion_snapshot_should_keep_membership_rows",
    "wait_for_graph_run_to_finish", "cluster_status_should_agree_with_membership",
    "derived_sync_servers_should_match_membership", "generation_should_be_converged",
    "generation_should_stay_at", "generations_should_be_converged_on_nodes", "get_cluster_nodes",
    "get_cluster_status", "get_generation_status", "get_node_diagnostics", "get_node_info",
    "get_rollout_job", "get_sync_status", "get_tribe_status", "preview_rollout", "wait_for_rollout",
    "Plugin API Should Be Absent", "Plugin API Should Be Healthy", "get_plugin_state", "new_run_id",
    "plugin_should_be_gone_from", "plugin_should_be_serving_on", "plugin_state_should_hold",
    "plugin_tables_should_exist", "plugin_tables_should_not_exist", "node_should_stay_stale_for",
    "wait_until_case_is_visible_on_node", "wait_until_event_is_visible_on_node",
    "wait_until_plugin_state_converged", "expected_membership_from_legion",
    "graph_run_should_have_materialized", "graph_run_should_have_stopped_half_way",
    "node_should_stay_syncing_for", "nodes_to_decommission_except", "preview_should_install_plugin",
    "running_generation_should_hold_plugin", "skip_if_an_earlier_step_failed",
    "auth_checks_should_run_in_contract_order",
    "refused_auth_event_should_not_enter_the_replay_cache",
    "replayed_management_request_should_be_refused",
    "request_signed_for_another_node_should_be_refused",
    "unsigned_management_request_should_be_refused", "generation_links_should_match_api",
    "get_generation_links_over_ssh",
    # The caller's own ad-hoc command: the guard cannot know what it does (README).
    "run_command_on_node",
    # Heals only undo a fault; the registered ones exist only after a fault was allowed.
    "heal_all_partitions", "stop_publish_outage", "heal_all_registered_faults",
    "get_registered_heals", "registered_heals_should_be_empty",
    # Artifacts and the target's lifecycle (Close Target destroys only what this run created).
    "capture_cluster_snapshot", "get_artifacts_directory", "attach_to_shared_target",
    "close_shared_target", "close_target", "get_roster", "get_roster_node_names",
    "hold_shared_target", "open_target", "release_shared_target", "share_target",
    "stop_shared_target",
}  # fmt: skip


class ReachedTheFleet(Exception):
    """The keyword went past the guard and touched the target."""


class FakeTargetConfig:
    name = "fake-production"


class FakeGuardedTarget:
    """A target whose acts are guarded; any use of its Legion, nemesis or plugins is recorded."""

    config = FakeTargetConfig()
    kind = "real"

    def __init__(self, guards: bool = True) -> None:
        self.guards_destructive_acts = guards
        self.provisions_missing_roster_nodes = True

    def __getattr__(self, name: str) -> Any:
        raise ReachedTheFleet(f"reached the fake fleet: target.{name}")


class FleetlessContext(LibraryContext):
    """A context whose every way to the fleet raises ``ReachedTheFleet``."""

    def __init__(self, target: FakeGuardedTarget) -> None:
        super().__init__()
        self.target = target  # type: ignore[assignment]

    def _reach(self, *_: Any, **__: Any) -> Any:
        raise ReachedTheFleet("reached the fake fleet")

    client = record = refresh_records = active_names = member_names = plugins = ssh = _reach  # type: ignore[assignment]
    # A wait's timing is looked up once the guard let the keyword through: acting, as far as the
    # guard is concerned.
    wait_timing = _reach  # type: ignore[assignment]


@pytest.fixture
def library() -> Iterator[TribesLibrary]:
    yield TribesLibrary()


def with_context(library: TribesLibrary, ctx: LibraryContext) -> TribesLibrary:
    for component in library.components:
        component.ctx = ctx
    library.ctx = ctx
    return library


def dummy_arguments(method: Any) -> tuple[Any, ...]:
    """Plausible values for a keyword's required arguments (the guard runs before any is used)."""
    values = {"provider": "hetzner", "count": 1, "nodes": 1, "by": 1, "generation": "1"}
    arguments: list[Any] = []
    for parameter in inspect.signature(method).parameters.values():
        if parameter.kind is parameter.VAR_POSITIONAL:
            arguments.append("scaleway-1")
        elif (
            parameter.default is parameter.empty
            and parameter.kind is parameter.POSITIONAL_OR_KEYWORD
        ):
            arguments.append(values.get(parameter.name, "hetzner-1"))
    return tuple(arguments)


def allow(monkeypatch: pytest.MonkeyPatch, allowed: bool) -> None:
    shown = "True" if allowed else "'false'"
    monkeypatch.setattr(context_module, "allow_destructive_value", lambda: (allowed, shown))


def keyword_name(library: TribesLibrary, name: str) -> str:
    method = library.keywords[name]
    return getattr(method, "robot_name", None) or printable_name(name, code_style=True)


def assert_reached_the_fleet(error: BaseException) -> None:
    """The keyword went past the guard: the fake fleet was touched (directly, or as one node's
    failure in ``on_each``'s summary), and nothing was refused or asked."""
    assert not isinstance(error, DestructiveActRefused), error
    assert "ALLOW_DESTRUCTIVE" not in str(error), error
    assert "reached the fake fleet" in str(error), error


def test_every_keyword_is_classified(library: TribesLibrary) -> None:
    names = set(library.keywords)
    classified = DESTRUCTIVE | set(CONDITIONAL) | NOT_DESTRUCTIVE
    assert names - classified == set(), "new keywords: is each one destructive?"
    assert classified - names == set(), "classified keywords the library no longer has"
    assert set(destructive_keywords(library.keywords)) == DESTRUCTIVE
    for name in DESTRUCTIVE:
        assert "destructive" in library.get_keyword_tags(name), name
    for name in NOT_DESTRUCTIVE | set(CONDITIONAL):
        assert "destructive" not in library.get_keyword_tags(name), name


@pytest.mark.parametrize("name", sorted(DESTRUCTIVE))
def test_a_destructive_keyword_is_refused_on_a_guarded_target(
    library: TribesLibrary, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    allow(monkeypatch, False)
    with_context(library, FleetlessContext(FakeGuardedTarget()))
    method = library.keywords[name]
    with pytest.raises(DestructiveActRefused) as refused:
        method(*dummy_arguments(method))
    message = str(refused.value)
    assert message.startswith(f"{keyword_name(library, name)} refused: it would ")
    assert "on the real target fake-production, and ALLOW_DESTRUCTIVE is 'false'" in message
    assert "--allow-destructive" in message


@pytest.mark.parametrize("name", sorted(DESTRUCTIVE))
def test_a_destructive_keyword_acts_when_allowed(
    library: TribesLibrary, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    allow(monkeypatch, True)
    with_context(library, FleetlessContext(FakeGuardedTarget()))
    method = library.keywords[name]
    with pytest.raises(Exception) as reached:
        method(*dummy_arguments(method))
    assert_reached_the_fleet(reached.value)


@pytest.mark.parametrize("name", sorted(DESTRUCTIVE))
def test_a_simulated_target_is_never_guarded(
    library: TribesLibrary, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    def must_not_ask() -> tuple[bool, str]:
        raise AssertionError("the simulator's private fleet needs no ALLOW_DESTRUCTIVE")

    monkeypatch.setattr(context_module, "allow_destructive_value", must_not_ask)
    with_context(library, FleetlessContext(FakeGuardedTarget(guards=False)))
    method = library.keywords[name]
    with pytest.raises(Exception) as reached:
        method(*dummy_arguments(method))
    assert_reached_the_fleet(reached.value)


@pytest.mark.parametrize(
    "name", [n for n, (acting, _) in CONDITIONAL.items() if acting]
)  # the roster and admin-check ones need a fleet: tests/keywords/test_production_guard_robot.py
def test_a_mutating_management_method_is_refused_and_a_read_is_not(
    library: TribesLibrary, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    allow(monkeypatch, False)
    with_context(library, FleetlessContext(FakeGuardedTarget()))
    acting, reading = CONDITIONAL[name]
    method = library.keywords[name]
    with pytest.raises(DestructiveActRefused, match=rf"^{keyword_name(library, name)} refused: "):
        method(*acting)
    with pytest.raises(ReachedTheFleet):
        method(*reading)


@pytest.mark.parametrize(
    ("name", "arguments", "act"),
    [
        ("force_full_resync_on_nodes", (), "force a full resync on every active node"),
        ("force_full_resync_on_nodes", ("ovh-1", "hetzner-1"), "force a full resync on ovh-1, hetzner-1"),
        ("plan_join_nodes", ("ovh",), "plan 1 join node(s) on ovh"),
        ("decommission_node", ("node-198",), "decommission node-198"),
    ],
)  # fmt: skip
def test_the_refusal_says_what_the_act_would_have_done(
    library: TribesLibrary,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    arguments: tuple[Any, ...],
    act: str,
) -> None:
    allow(monkeypatch, False)
    with_context(library, FleetlessContext(FakeGuardedTarget()))
    with pytest.raises(DestructiveActRefused, match=f"refused: it would {re.escape(act)} on the"):
        library.keywords[name](*arguments)


def test_without_an_open_target_the_act_fails_on_its_own(library: TribesLibrary) -> None:
    with pytest.raises(AssertionError, match="no target is open") as failure:
        library.keywords["provision_init_node"]("hetzner")
    assert not isinstance(failure.value, DestructiveActRefused)
