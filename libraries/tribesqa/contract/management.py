"""The node management API (``POST /api/admin/management``): every method's params and result."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import (
    BaseModel,
    Field,
    NonNegativeInt,
    model_validator,
)

from tribesqa.contract.enums import (
    ClusterHealth,
    ErrorCode,
    JobKind,
    JobState,
    MemberStatus,
    Provider,
    RolloutStage,
    SyncMode,
)
from tribesqa.contract.errors import _rule_violation, _show, parse_payload
from tribesqa.contract.wire_types import (
    ContractModel,
    Pubkey,
    StorePath,
    Timestamp,
    TransportAddress,
)

# --------------------------------------------------------------------------------------------
# Node admin API: envelope
# --------------------------------------------------------------------------------------------


class NodeHealth(ContractModel):
    """``GET /healthz``: ``ok`` (200) or ``starting`` with a reason (503)."""

    status: str
    reason: str | None = None


class ManagementRequest(ContractModel):
    """Body of ``POST /api/admin/management``."""

    method: str = Field(min_length=1)
    params: dict[str, Any] = {}


class ManagementResponse(ContractModel):
    """Envelope of every management answer: ``{ok, result}`` or ``{ok: false, error, message}``."""

    ok: bool
    result: Any = None
    # A plain string, not ErrorCode: an unknown code must still parse so the test can report it.
    error: str | None = None
    message: str | None = None

    @model_validator(mode="after")
    def _error_matches_ok(self) -> ManagementResponse:
        if self.ok and self.error is not None:
            raise _rule_violation("error", _show(self.error), "a successful answer has no error")
        if not self.ok and not self.error:
            raise _rule_violation("error", _show(self.error), "a failed answer must name its error")
        return self

    @property
    def error_code(self) -> ErrorCode | None:
        """The error as an :class:`ErrorCode`; None when ok or when the contract lacks the code."""
        try:
            return ErrorCode(self.error) if self.error is not None else None
        except ValueError:
            return None


# --------------------------------------------------------------------------------------------
# Node admin API: method results
# --------------------------------------------------------------------------------------------


class NodeInfo(ContractModel):
    """``node.info``: who this node is."""

    node_id: str
    pubkey: Pubkey
    provider: Provider
    region: str
    version: str
    transport_address: TransportAddress


def _check_membership_times(
    status: MemberStatus, activated_at: datetime | None, decommissioned_at: datetime | None
) -> None:
    """Rules shared by node-reported rows and Legion's membership records."""
    if status is MemberStatus.DECOMMISSIONED and decommissioned_at is None:
        raise _rule_violation(
            "decommissioned_at", _show(None), "a decommissioned row must carry decommissioned_at"
        )
    if status is not MemberStatus.DECOMMISSIONED and decommissioned_at is not None:
        raise _rule_violation(
            "decommissioned_at",
            _show(decommissioned_at),
            f"decommissioned_at must be null unless the row is decommissioned "
            f"(status is {status.value!r})",
        )
    # A syncing row may or may not carry activated_at (brand-new node vs. resync), so only
    # active rows are held to it.
    if status is MemberStatus.ACTIVE and activated_at is None:
        raise _rule_violation("activated_at", _show(None), "an active row must carry activated_at")


class ClusterNodeRow(ContractModel):
    """One membership row as a node reports it (``cluster_nodes.list``)."""

    node_id: str
    pubkey: Pubkey
    transport_address: TransportAddress
    scope: str
    status: MemberStatus
    joined_at: Timestamp
    # Nullable but required: the row always carries the key, a missing key is a serializer bug.
    activated_at: Timestamp | None
    decommissioned_at: Timestamp | None
    updated_at: Timestamp

    @model_validator(mode="after")
    def _status_matches_timestamps(self) -> ClusterNodeRow:
        _check_membership_times(self.status, self.activated_at, self.decommissioned_at)
        return self


class ClusterNodesList(ContractModel):
    """``cluster_nodes.list``: one row per node id (rows are last-writer-wins per node)."""

    nodes: list[ClusterNodeRow]

    @model_validator(mode="after")
    def _one_row_per_node(self) -> ClusterNodesList:
        seen: set[str] = set()
        for index, row in enumerate(self.nodes):
            if row.node_id in seen:
                raise _rule_violation(
                    f"nodes[{index}].node_id", _show(row.node_id), "duplicate row for this node_id"
                )
            seen.add(row.node_id)
        return self

    def by_id(self) -> dict[str, ClusterNodeRow]:
        """Rows keyed by ``node_id``."""
        return {row.node_id: row for row in self.nodes}


class ClusterStatus(ContractModel):
    """``cluster_status``: a node's summary of the membership it holds."""

    node_id: str
    status: ClusterHealth
    self_status: MemberStatus
    active: NonNegativeInt
    syncing: NonNegativeInt
    decommissioned: NonNegativeInt
    membership_digest: str
    control_plane_version: NonNegativeInt


class SyncServer(ContractModel):
    """One sync server a node subscribes to (derived from another active row)."""

    node_id: str
    url: str
    connected: bool
    last_sync_completed_at: Timestamp | None = None
    last_eose_at: Timestamp | None = None
    failing_reason: str | None = None


class SyncStatus(ContractModel):
    """``sync.status``.

    ``high_water_mark`` is the number of events the node knows exist cluster-wide,
    ``applied_events`` how many of them it has applied, ``pending_events`` = hwm - applied.
    ``version_vector`` (origin node id -> highest contiguous seq held) is our refinement.
    """

    mode: SyncMode
    servers: list[SyncServer]
    high_water_mark: NonNegativeInt
    applied_events: NonNegativeInt
    pending_events: NonNegativeInt
    version_vector: dict[str, NonNegativeInt] = {}

    @model_validator(mode="after")
    def _pending_is_hwm_minus_applied(self) -> SyncStatus:
        expected = self.high_water_mark - self.applied_events
        if self.pending_events != expected:
            raise _rule_violation(
                "pending_events",
                _show(self.pending_events),
                f"pending_events must equal high_water_mark - applied_events "
                f"({self.high_water_mark} - {self.applied_events} = {expected})",
            )
        return self


class TribeStatus(ContractModel):
    """``tribe.status``: the singleton tribe."""

    tribe_id: str
    name: str
    members: list[Pubkey]
    version: NonNegativeInt
    digest: str


class Generation(ContractModel):
    """One Guix system generation of a node."""

    number: NonNegativeInt
    path: StorePath
    plugins: list[str]
    created_at: Timestamp


class GenerationStatus(ContractModel):
    """``generation.status``: ``selected`` is the profile's target, ``running`` the booted one."""

    selected: StorePath
    running: StorePath
    generations: list[Generation]
    reboot_required: bool

    @property
    def converged(self) -> bool:
        """True when the selected generation is the one running (no switch/restart pending)."""
        return self.selected == self.running

    def generation(self, number_or_path: int | str) -> Generation:
        """The generation with this number (int or digit string, as Robot passes it) or path.

        Raises LookupError naming the known generations when there is none.
        """
        if isinstance(number_or_path, int) or number_or_path.isdigit():
            number = int(number_or_path)
            found = [g for g in self.generations if g.number == number]
        else:
            found = [g for g in self.generations if g.path == number_or_path]
        if not found:
            known = ", ".join(f"{g.number}={g.path}" for g in self.generations) or "none"
            raise LookupError(f"no generation {number_or_path!r} (known: {known})")
        return found[0]


class RolloutDelta(ContractModel):
    """What a rollout plan changes."""

    plugins_added: list[str]
    plugins_removed: list[str]
    channel_changed: bool


class Substitutes(ContractModel):
    """Whether every package the plan needs is available as a substitute."""

    available: bool
    missing: list[str]


class RolloutPreview(ContractModel):
    """``rollout.preview``."""

    plan_id: str
    delta: RolloutDelta
    requires_restart: list[str]
    substitutes: Substitutes


class JobRef(ContractModel):
    """``{job_id}`` answered by every asynchronous method."""

    job_id: str


class JobError(ContractModel):
    """Why a job failed."""

    code: str
    message: str


class RolloutJob(ContractModel):
    """``rollout.status``: a rollout, rollback or resync job."""

    job_id: str
    kind: JobKind
    state: JobState
    stage: RolloutStage
    selected: str | None = None
    running: str | None = None
    error: JobError | None = None
    log: list[str]

    @model_validator(mode="after")
    def _error_iff_failed(self) -> RolloutJob:
        if self.state is JobState.FAILED and self.error is None:
            raise _rule_violation("error", _show(None), "a failed job must say why (error)")
        if self.state is not JobState.FAILED and self.error is not None:
            raise _rule_violation(
                "error",
                _show(self.error.code),
                f"only a failed job carries an error (state is {self.state.value!r})",
            )
        return self


class PluginInfo(ContractModel):
    """One installed plugin."""

    name: str
    version: str
    migrations: list[str]
    state: str


class PluginsList(ContractModel):
    """``plugins.list``."""

    plugins: list[PluginInfo]


class Diagnostics(ContractModel):
    """``diagnostics``: loose on purpose, the content differs between node versions."""

    local_control: dict[str, Any] = {}
    migrations: dict[str, Any] = {}
    services: dict[str, str] = {}
    generation_compare: dict[str, Any] = {}
    logs: dict[str, list[str]] = {}


# --------------------------------------------------------------------------------------------
# Control-plane refinements (Legion-only methods) and method params
# --------------------------------------------------------------------------------------------


class NoParams(ContractModel):
    """Params of a method that takes none (anything given is ignored)."""


class ResyncParams(ContractModel):
    """``sync.resync`` params."""

    full: bool = True


class PluginPin(ContractModel):
    """One plugin pinned to a commit in a rollout request."""

    name: str
    commit: str


class RolloutPreviewParams(ContractModel):
    """``rollout.preview`` params."""

    plugins: list[PluginPin]


class RolloutStartParams(ContractModel):
    """``rollout.start`` params."""

    plan_id: str


class JobRefParams(ContractModel):
    """``rollout.status`` params."""

    job_id: str


class RollbackParams(ContractModel):
    """``generation.rollback`` params: a generation number or store path."""

    generation: NonNegativeInt | StorePath


class ApplyMembershipParams(ContractModel):
    """``control.apply_membership`` params (Legion-only): rows to write and pubkeys to trust."""

    rows: list[ClusterNodeRow]
    trusted: list[Pubkey]
    # Legion's snapshot counter and HLC stamp: the rows travel on through the sync mesh as one
    # control event of origin "legion", and only the newest snapshot matters.
    seq: NonNegativeInt
    hlc: str


class ApplyMembershipResult(ContractModel):
    """``control.apply_membership`` result: how many rows changed the node's state."""

    applied: NonNegativeInt


class InitTribeParams(ContractModel):
    """``control.init_tribe`` params (Legion-only); the result is a :class:`TribeStatus`."""

    tribe_id: str
    name: str
    members: list[Pubkey]


#: Management methods only Legion calls (signed with Legion's key); refinements of the contract.
LEGION_ONLY_METHODS: frozenset[str] = frozenset({"control.apply_membership", "control.init_tribe"})

#: Result model of every management method.
METHOD_RESULT_MODELS: dict[str, type[BaseModel]] = {
    "node.info": NodeInfo,
    "cluster_nodes.list": ClusterNodesList,
    "cluster_status": ClusterStatus,
    "sync.status": SyncStatus,
    "sync.resync": JobRef,
    "tribe.status": TribeStatus,
    "generation.status": GenerationStatus,
    "rollout.preview": RolloutPreview,
    "rollout.start": JobRef,
    "rollout.status": RolloutJob,
    "generation.rollback": JobRef,
    "plugins.list": PluginsList,
    "diagnostics": Diagnostics,
    "control.apply_membership": ApplyMembershipResult,
    "control.init_tribe": TribeStatus,
}

#: Params model of every management method (servers answer ``invalid-params`` when it fails).
METHOD_PARAMS_MODELS: dict[str, type[BaseModel]] = {
    **dict.fromkeys(METHOD_RESULT_MODELS, NoParams),
    "sync.resync": ResyncParams,
    "rollout.preview": RolloutPreviewParams,
    "rollout.start": RolloutStartParams,
    "rollout.status": JobRefParams,
    "generation.rollback": RollbackParams,
    "control.apply_membership": ApplyMembershipParams,
    "control.init_tribe": InitTribeParams,
}


def parse_method_result(method: str, payload: Any, *, source: str) -> BaseModel:
    """Validate the ``result`` of management method ``method`` against its model.

    The method name is appended to ``source`` unless it already mentions it, so
    ``source="node hetzner-1"`` reads ``node hetzner-1 / cluster_nodes.list`` in errors.
    Raises ValueError for a method the contract does not know.
    """
    model = METHOD_RESULT_MODELS.get(method)
    if model is None:
        known = ", ".join(sorted(METHOD_RESULT_MODELS))
        raise ValueError(f"no result model for management method {method!r} (known: {known})")
    if method not in source:
        source = f"{source} / {method}"
    return parse_payload(model, payload, source=source)
