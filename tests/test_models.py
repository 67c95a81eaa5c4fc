"""Tests of the contract models (libraries/tribesqa/models.py) and their error messages."""

from __future__ import annotations

import copy
import json
import pickle
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from tribesqa.contract import (
    ERROR_HTTP_STATUS,
    METHOD_PARAMS_MODELS,
    METHOD_RESULT_MODELS,
    ClusterNodeRow,
    ClusterNodesList,
    ContractError,
    ErrorCode,
    GenerationStatus,
    JobState,
    LegionSnapshot,
    ManagementResponse,
    NodeRecord,
    PluginHealth,
    PluginSchema,
    PluginState,
    RollbackParams,
    RolloutJob,
    SyncStatus,
    find_secret_material,
    parse_method_result,
    parse_payload,
)

SAMPLES = Path(__file__).parent / "data" / "contract"
SOURCE = "node hetzner-1 / cluster_nodes.list"


def sample(name: str) -> Any:
    """A fresh copy of one valid sample payload from tests/data/contract."""
    return json.loads((SAMPLES / f"{name}.json").read_text())


def contract_error(model: type[BaseModel], payload: Any, source: str = SOURCE) -> ContractError:
    """Parse a payload that must fail and return the error."""
    with pytest.raises(ContractError) as caught:
        parse_payload(model, payload, source=source)
    return caught.value


# ---------------------------------------------------------------- valid samples


@pytest.mark.parametrize("method", sorted(METHOD_RESULT_MODELS))
@pytest.mark.req("REF-21")
def test_every_method_result_sample_parses(method: str) -> None:
    parsed = parse_method_result(method, sample(method), source="node hetzner-1")
    assert isinstance(parsed, METHOD_RESULT_MODELS[method])


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("legion.snapshot", LegionSnapshot),
        ("plugin.health", PluginHealth),
        ("plugin.schema", PluginSchema),
        ("plugin.state", PluginState),
    ],
)
def test_other_samples_parse(name: str, model: type[BaseModel]) -> None:
    assert isinstance(parse_payload(model, sample(name), source="sample"), model)


def test_json_text_is_accepted() -> None:
    text = (SAMPLES / "cluster_nodes.list.json").read_text()
    nodes = parse_payload(ClusterNodesList, text, source=SOURCE)
    assert set(nodes.by_id()) == {"hetzner-1", "scaleway-1", "ovh-1"}


def test_models_are_frozen_and_ignore_unknown_keys() -> None:
    payload = sample("cluster_nodes.list")
    payload["nodes"][0]["newer_field"] = 1
    row = parse_payload(ClusterNodesList, payload, source=SOURCE).nodes[0]
    assert not hasattr(row, "newer_field")
    with pytest.raises(ValueError, match="frozen"):
        row.scope = "partial"  # type: ignore[misc]


def test_timestamps_are_normalised_to_utc() -> None:
    row = dict(sample("cluster_nodes.list")["nodes"][0], joined_at="2026-05-01T12:00:00+02:00")
    parsed = ClusterNodeRow.model_validate(row)
    assert parsed.joined_at == datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    assert parsed.model_dump(mode="json")["joined_at"] == "2026-05-01T10:00:00Z"


def test_generation_helpers() -> None:
    status = GenerationStatus.model_validate(sample("generation.status"))
    assert not status.converged
    assert status.generation(2).plugins == ["supertest"]
    assert status.generation("2") == status.generation(status.selected)
    assert status.generation(status.running).number == 1
    with pytest.raises(LookupError, match="no generation 7"):
        status.generation(7)


def test_job_state_terminal() -> None:
    assert JobState.SUCCEEDED.terminal and JobState.FAILED.terminal
    assert not JobState.PENDING.terminal and not JobState.RUNNING.terminal


def test_error_codes_and_http_statuses() -> None:
    assert len(ErrorCode) == 4 + 9 + 7
    assert set(ERROR_HTTP_STATUS) == set(ErrorCode)
    assert ErrorCode("stale-auth-event").http_status == 401
    assert ErrorCode.SUBSTITUTES_MISSING.http_status == 409
    assert ErrorCode.NOT_READY.http_status == 503
    assert ErrorCode.INVALID_PARAMS.http_status == 400


def test_params_models_cover_every_method() -> None:
    assert set(METHOD_PARAMS_MODELS) == set(METHOD_RESULT_MODELS)
    assert RollbackParams.model_validate({"generation": 3}).generation == 3
    with pytest.raises(ContractError):
        parse_payload(RollbackParams, {"generation": "/tmp/x"}, source="params")


# ---------------------------------------------------------------- error messages


@pytest.mark.req("REF-21")
def test_malformed_row_names_source_path_and_value() -> None:
    payload = sample("cluster_nodes.list")
    payload["nodes"][1]["status"] = "actve"
    error = contract_error(ClusterNodesList, payload)
    assert str(error) == (
        "node hetzner-1 / cluster_nodes.list returned a payload that does not match "
        "ClusterNodesList: nodes[1].status = 'actve' "
        "(Input should be 'syncing', 'active' or 'decommissioned')"
    )
    assert error.source == SOURCE
    [problem] = error.problems
    assert (problem.path, problem.value) == ("nodes[1].status", "'actve'")
    # No pydantic traceback chained onto ours.
    assert error.__cause__ is None and error.__suppress_context__


def test_parse_method_result_appends_method_to_source() -> None:
    payload = sample("cluster_nodes.list")
    payload["nodes"][1]["status"] = "actve"
    with pytest.raises(ContractError) as caught:
        parse_method_result("cluster_nodes.list", payload, source="node hetzner-1")
    assert str(caught.value).startswith(f"{SOURCE} returned a payload")
    with pytest.raises(ValueError, match="no result model for management method 'nope'"):
        parse_method_result("nope", {}, source="node hetzner-1")


def test_missing_field_is_shown_as_missing() -> None:
    payload = sample("cluster_nodes.list")
    del payload["nodes"][0]["pubkey"]
    assert "nodes[0].pubkey = <missing> (Field required)" in str(
        contract_error(ClusterNodesList, payload)
    )


def test_naive_timestamp_rejected() -> None:
    payload = sample("cluster_nodes.list")
    payload["nodes"][0]["joined_at"] = "2026-05-01T10:00:00"
    message = str(contract_error(ClusterNodesList, payload))
    assert "nodes[0].joined_at = '2026-05-01T10:00:00' (Input should have timezone info)" in message


def test_epoch_timestamp_rejected() -> None:
    payload = sample("cluster_nodes.list")
    payload["nodes"][0]["updated_at"] = 1777629600
    assert "nodes[0].updated_at = 1777629600 (timestamps must be RFC 3339" in str(
        contract_error(ClusterNodesList, payload)
    )


def test_decommissioned_row_without_decommissioned_at_rejected() -> None:
    payload = sample("cluster_nodes.list")
    payload["nodes"][2]["decommissioned_at"] = None
    assert (
        "nodes[2].decommissioned_at = None (a decommissioned row must carry decommissioned_at)"
        in str(contract_error(ClusterNodesList, payload))
    )


def test_active_row_with_decommissioned_at_rejected() -> None:
    payload = sample("cluster_nodes.list")
    payload["nodes"][0]["decommissioned_at"] = "2026-05-02T00:00:00Z"
    message = str(contract_error(ClusterNodesList, payload))
    assert "nodes[0].decommissioned_at = '2026-05-02T00:00:00+00:00'" in message
    assert "must be null unless the row is decommissioned (status is 'active')" in message


def test_active_row_requires_activated_at_but_syncing_row_does_not() -> None:
    payload = sample("cluster_nodes.list")
    payload["nodes"][0]["activated_at"] = None
    assert "nodes[0].activated_at = None (an active row must carry activated_at)" in str(
        contract_error(ClusterNodesList, payload)
    )
    # A syncing row after a resync keeps its previous activated_at: that is valid.
    resynced = sample("cluster_nodes.list")
    resynced["nodes"][1]["activated_at"] = "2026-05-01T10:06:00Z"
    parse_payload(ClusterNodesList, resynced, source=SOURCE)


def test_duplicate_node_rows_rejected() -> None:
    payload = sample("cluster_nodes.list")
    payload["nodes"].append(copy.deepcopy(payload["nodes"][0]))
    assert "nodes[3].node_id = 'hetzner-1' (duplicate row for this node_id)" in str(
        contract_error(ClusterNodesList, payload)
    )


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("ftp://127.0.0.1:21001", "scheme must be one of http, https, ws, wss"),
        ("http://127.0.0.1", "must name its port explicitly"),
        ("127.0.0.1:21001", "scheme must be one of"),
        ("http://:21001", "has no host"),
    ],
)
def test_bad_transport_address_rejected(address: str, reason: str) -> None:
    payload = sample("cluster_nodes.list")
    payload["nodes"][0]["transport_address"] = address
    message = str(contract_error(ClusterNodesList, payload))
    assert f"nodes[0].transport_address = {address!r}" in message
    assert reason in message


def test_bad_pubkey_rejected() -> None:
    payload = sample("cluster_nodes.list")
    payload["nodes"][0]["pubkey"] = "A" * 64
    assert "nodes[0].pubkey = 'AAAA" in str(contract_error(ClusterNodesList, payload))


def test_bad_store_path_rejected() -> None:
    payload = sample("generation.status")
    payload["generations"][1]["path"] = "/gnu/store/short-system"
    error = contract_error(GenerationStatus, payload, source="node ovh-1 / generation.status")
    assert "generations[1].path = '/gnu/store/short-system' (must be a system generation" in str(
        error
    )
    payload = sample("generation.status")
    payload["running"] = "/run/current-system"
    assert "running = '/run/current-system'" in str(contract_error(GenerationStatus, payload))


def test_many_problems_are_truncated() -> None:
    payload = sample("cluster_nodes.list")
    for row in payload["nodes"]:
        row["status"] = "bogus"
        row["scope"] = 7
    error = contract_error(ClusterNodesList, payload)
    assert len(error.problems) == 6
    message = str(error)
    assert message.endswith("; and 1 more")
    assert message.count(" = ") == 5


def test_long_values_are_truncated_to_80_chars() -> None:
    payload = sample("cluster_nodes.list")
    payload["nodes"][0]["status"] = "x" * 500
    [problem] = contract_error(ClusterNodesList, payload).problems
    assert len(problem.value) == 80 and problem.value.endswith("...")


def test_non_object_payload() -> None:
    assert "ClusterNodesList: <payload> = [1, 2] (Input should be a valid dictionary" in str(
        contract_error(ClusterNodesList, [1, 2])
    )
    assert "Invalid JSON" in str(contract_error(ClusterNodesList, "{not json"))


def test_contract_error_pickles() -> None:
    error = contract_error(ClusterNodesList, {"nodes": [{}]})
    clone = pickle.loads(pickle.dumps(error))
    assert str(clone) == str(error) and clone.problems == error.problems


def test_management_response_envelope_rules() -> None:
    assert ManagementResponse.model_validate({"ok": True, "result": {"a": 1}}).result == {"a": 1}
    refused = ManagementResponse.model_validate(
        {"ok": False, "error": "substitutes-missing", "message": "2 missing"}
    )
    assert refused.error_code is ErrorCode.SUBSTITUTES_MISSING
    assert ManagementResponse.model_validate({"ok": False, "error": "weird"}).error_code is None
    assert "error = None (a failed answer must name its error)" in str(
        contract_error(ManagementResponse, {"ok": False})
    )
    assert "error = 'not-ready' (a successful answer has no error)" in str(
        contract_error(ManagementResponse, {"ok": True, "error": "not-ready"})
    )


def test_sync_status_pending_must_be_hwm_minus_applied() -> None:
    payload = sample("sync.status")
    payload["pending_events"] = 5
    assert "pending_events = 5 (pending_events must equal high_water_mark - applied_events" in str(
        contract_error(SyncStatus, payload)
    )


def test_failed_job_must_carry_error() -> None:
    payload = sample("rollout.status")
    payload["state"] = "failed"
    assert "error = None (a failed job must say why (error))" in str(
        contract_error(RolloutJob, payload)
    )
    payload["error"] = {"code": "build-failed", "message": "guix build exited 1"}
    assert RolloutJob.model_validate(payload).error is not None


# ---------------------------------------------------------------- Legion


@pytest.mark.req("REF-20", "REF-21")
def test_snapshot_alias_round_trip() -> None:
    snapshot = parse_payload(LegionSnapshot, sample("legion.snapshot"), source="legion snapshot")
    assert snapshot.membership("ovh-1").status == "decommissioned"
    dumped = snapshot.model_dump(by_alias=True, mode="json")
    assert set(dumped) == {"nodes", "clusterMembership", "graphRuns"}
    assert snapshot.model_dump(mode="json") == dumped  # serialize_by_alias is the default
    assert LegionSnapshot.model_validate(dumped) == snapshot
    # populate_by_name: Python field names are accepted too.
    by_name = LegionSnapshot.model_validate(
        {
            "nodes": [],
            "cluster_membership": dumped["clusterMembership"],
            "graph_runs": dumped["graphRuns"],
        }
    )
    assert by_name.cluster_membership == snapshot.cluster_membership


def test_snapshot_with_private_key_anywhere_rejected() -> None:
    payload = sample("legion.snapshot")
    payload["nodes"][0]["ssh"]["private_key"] = "-----BEGIN OPENSSH PRIVATE KEY-----abc"
    error = contract_error(LegionSnapshot, payload, source="legion snapshot")
    message = str(error)
    assert "nodes[0].ssh.private_key = <redacted> (snapshot is not sanitized" in message
    assert "BEGIN" not in message  # the secret itself never reaches the log


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("adminToken", "x"),
        ("client_secret", None),
        ("password", ""),
        ("nsec", "x"),
        ("note", "nsec1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"),
    ],
)
def test_secret_material_detection(key: str, value: Any) -> None:
    payload = sample("legion.snapshot")
    payload["graphRuns"][0]["meta"] = {key: value}
    assert find_secret_material(payload) == [f"graphRuns[0].meta.{key}"]


def test_fingerprints_and_insecure_words_are_not_secrets() -> None:
    data = {
        "host_key_fingerprint": "SHA256:x",
        "admin_key_fingerprint": "SHA256:y",
        "pubkey": "a" * 64,
        "insecure_transport": False,
    }
    assert find_secret_material(data) == []


def test_ready_node_record_needs_addresses_but_planned_does_not() -> None:
    payload = sample("legion.snapshot")
    ready = dict(payload["nodes"][0], ssh=None)
    assert "ssh = None (required for a ready node)" in str(
        contract_error(NodeRecord, ready, source="legion list")
    )
    assert NodeRecord.model_validate(payload["nodes"][1]).pubkey is None


def test_nullable_membership_times_must_still_be_present() -> None:
    payload = sample("cluster_nodes.list")
    del payload["nodes"][1]["activated_at"]
    assert "nodes[1].activated_at = <missing> (Field required)" in str(
        contract_error(ClusterNodesList, payload)
    )
