"""The Tribes contract as pydantic v2 models: the one place that knows the wire shapes.

Every payload the keyword libraries read (node management API, local plugin API, Legion) is
parsed here through :func:`parse_payload` / :func:`parse_method_result`, which turn pydantic's
``ValidationError`` into a :class:`ContractError` whose message names the source (which node,
which method), the field path and the offending value, so a Robot log line is enough to see
what broke. The prose version of these shapes lives in ``docs/contract.md``.

Conventions: models ignore unknown keys (a newer node may add fields) and are frozen (parsed
payloads are evidence, not state). Every timestamp is timezone-aware RFC 3339; naive times and
epoch numbers are rejected, and parsed times are normalised to UTC.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from itertools import pairwise
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeInt,
    PlainSerializer,
    ValidationError,
    WrapValidator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from tribesqa.node_time import fraction_digits, render

__all__ = [
    "ERROR_HTTP_STATUS",
    "LEGION_ONLY_METHODS",
    "METHOD_PARAMS_MODELS",
    "METHOD_RESULT_MODELS",
    "ApplyMembershipParams",
    "ApplyMembershipResult",
    "Case",
    "ClusterHealth",
    "ClusterNodeRow",
    "ClusterNodesList",
    "ClusterStatus",
    "ContractError",
    "ContractModel",
    "ContractProblem",
    "Diagnostics",
    "ErrorCode",
    "Event",
    "Generation",
    "GenerationStatus",
    "GraphRun",
    "GraphRunState",
    "InitTribeParams",
    "JobError",
    "JobKind",
    "JobRef",
    "JobRefParams",
    "JobState",
    "LegionNodeStatus",
    "LegionSnapshot",
    "ManagementRequest",
    "ManagementResponse",
    "MemberStatus",
    "MembershipRecord",
    "NoParams",
    "NodeHealth",
    "NodeInfo",
    "NodeRecord",
    "PluginHealth",
    "PluginInfo",
    "PluginPin",
    "PluginSchema",
    "PluginState",
    "PluginsList",
    "Provider",
    "Pubkey",
    "ResyncParams",
    "RollbackParams",
    "RolloutDelta",
    "RolloutJob",
    "RolloutPreview",
    "RolloutPreviewParams",
    "RolloutStage",
    "RolloutStartParams",
    "SshEndpoint",
    "StorePath",
    "Substitutes",
    "SyncMode",
    "SyncServer",
    "SyncStatus",
    "Timestamp",
    "TransportAddress",
    "TribeStatus",
    "find_secret_material",
    "parse_method_result",
    "parse_payload",
]

# --------------------------------------------------------------------------------------------
# Enumerations
# --------------------------------------------------------------------------------------------


class MemberStatus(StrEnum):
    """Status of one row of the cluster membership (``cluster_nodes``)."""

    SYNCING = "syncing"
    ACTIVE = "active"
    DECOMMISSIONED = "decommissioned"


class ClusterHealth(StrEnum):
    """A node's summary of the cluster as it sees it (``cluster_status.status``)."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    SYNCING = "syncing"
    ISOLATED = "isolated"


class SyncMode(StrEnum):
    """Replication mode of a node (``sync.status.mode``)."""

    LIVE = "live"
    CATCHING_UP = "catching_up"
    STOPPED = "stopped"


class JobKind(StrEnum):
    """What an asynchronous management job does."""

    ROLLOUT = "rollout"
    ROLLBACK = "rollback"
    RESYNC = "resync"


class JobState(StrEnum):
    """Lifecycle of an asynchronous management job."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        """True once the job will not change state any more (pollers stop here)."""
        return self in (JobState.SUCCEEDED, JobState.FAILED)


class RolloutStage(StrEnum):
    """Stage of a job; a rollout moves ``selected`` at switch and ``running`` after restart."""

    PULL = "pull"
    BUILD = "build"
    SWITCH = "switch"
    MIGRATE = "migrate"
    RESTART = "restart"
    DONE = "done"


class Provider(StrEnum):
    """Cloud providers Legion provisions on."""

    HETZNER = "hetzner"
    SCALEWAY = "scaleway"
    OVH = "ovh"


class LegionNodeStatus(StrEnum):
    """Legion's own view of a machine (not the cluster membership status)."""

    PLANNED = "planned"
    PROVISIONING = "provisioning"
    READY = "ready"
    DECOMMISSIONED = "decommissioned"
    FAILED = "failed"
    DESTROYED = "destroyed"


class GraphRunState(StrEnum):
    """State of one Legion graph run (a materialize of planned nodes)."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class ErrorCode(StrEnum):
    """Every ``error`` string the management API may return (HTTP status in :attr:`http_status`)."""

    # 400: the request itself is wrong.
    INVALID_PAYLOAD = "invalid-payload"
    UNKNOWN_METHOD = "unknown-method"
    INVALID_PARAMS = "invalid-params"
    # 503: the node is booting or restarting; clients retry.
    NOT_READY = "not-ready"
    # 401: NIP-98 authentication.
    AUTH_REQUIRED = "auth-required"
    INVALID_AUTHORIZATION = "invalid-authorization"
    INVALID_AUTH_EVENT = "invalid-auth-event"
    STALE_AUTH_EVENT = "stale-auth-event"
    AUTH_URL_TAG_MISMATCH = "auth-url-tag-mismatch"
    AUTH_METHOD_TAG_MISMATCH = "auth-method-tag-mismatch"
    AUTH_PAYLOAD_MISMATCH = "auth-payload-mismatch"
    REPLAYED_AUTH_EVENT = "replayed-auth-event"
    FORBIDDEN_PUBKEY = "forbidden-pubkey"
    # 409: the node refuses the operation in its current state.
    SUBSTITUTES_MISSING = "substitutes-missing"
    ROLLOUT_IN_PROGRESS = "rollout-in-progress"
    UNSAFE_OPERATION = "unsafe-operation"
    UNKNOWN_GENERATION = "unknown-generation"
    UNKNOWN_JOB = "unknown-job"
    UNKNOWN_PLAN = "unknown-plan"
    TRIBE_UNKNOWN = "tribe-unknown"

    @property
    def http_status(self) -> int:
        """The HTTP status the management endpoint answers with for this error."""
        return ERROR_HTTP_STATUS[self]


_AUTH_CODES = (
    ErrorCode.AUTH_REQUIRED,
    ErrorCode.INVALID_AUTHORIZATION,
    ErrorCode.INVALID_AUTH_EVENT,
    ErrorCode.STALE_AUTH_EVENT,
    ErrorCode.AUTH_URL_TAG_MISMATCH,
    ErrorCode.AUTH_METHOD_TAG_MISMATCH,
    ErrorCode.AUTH_PAYLOAD_MISMATCH,
    ErrorCode.REPLAYED_AUTH_EVENT,
    ErrorCode.FORBIDDEN_PUBKEY,
)
_REFUSAL_CODES = (
    ErrorCode.SUBSTITUTES_MISSING,
    ErrorCode.ROLLOUT_IN_PROGRESS,
    ErrorCode.UNSAFE_OPERATION,
    ErrorCode.UNKNOWN_GENERATION,
    ErrorCode.UNKNOWN_JOB,
    ErrorCode.UNKNOWN_PLAN,
    ErrorCode.TRIBE_UNKNOWN,
)

#: HTTP status of every management error code (the table in docs/contract.md).
ERROR_HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_PAYLOAD: 400,
    ErrorCode.UNKNOWN_METHOD: 400,
    ErrorCode.INVALID_PARAMS: 400,
    ErrorCode.NOT_READY: 503,
    **dict.fromkeys(_AUTH_CODES, 401),
    **dict.fromkeys(_REFUSAL_CODES, 409),
}

# --------------------------------------------------------------------------------------------
# Rule violations raised by our own validators
# --------------------------------------------------------------------------------------------

# Context keys that let a model-level validator point at one field (and show its value) instead
# of the whole object: ContractError reads them back when it builds its problems.
_CTX_FIELD = "contract_field"
_CTX_VALUE = "contract_value"
_MISSING_SHOWN = "<missing>"
_REDACTED_SHOWN = "<redacted>"
_MAX_VALUE_CHARS = 80


def _show(value: Any) -> str:
    """Render an offending value for a message: repr, datetimes as ISO text, at most 80 chars."""
    shown = repr(value.isoformat()) if isinstance(value, datetime) else repr(value)
    if len(shown) > _MAX_VALUE_CHARS:
        shown = shown[: _MAX_VALUE_CHARS - 3] + "..."
    return shown


def _rule_violation(field_path: str, shown_value: str, message: str) -> PydanticCustomError:
    """A validation error for a cross-field rule, attributed to ``field_path`` below the model."""
    # Braces would be read as template placeholders by pydantic-core.
    safe_message = message.replace("{", "(").replace("}", ")")
    return PydanticCustomError(
        "contract_rule", safe_message, {_CTX_FIELD: field_path, _CTX_VALUE: shown_value}
    )


# --------------------------------------------------------------------------------------------
# Constrained scalar types
# --------------------------------------------------------------------------------------------

_PUBKEY_RE = re.compile(r"^[0-9a-f]{64}$")
_STORE_PATH_RE = re.compile(r"^/gnu/store/[0-9a-z]{32}-system$")
_TRANSPORT_SCHEMES = ("http", "https", "ws", "wss")


def _reject_epoch_numbers(value: Any) -> Any:
    # pydantic would happily read 1700000000 as a UTC datetime; the wire format is RFC 3339 text.
    if isinstance(value, int | float):
        raise ValueError("timestamps must be RFC 3339 strings, not epoch numbers")
    return value


def _as_utc(value: datetime) -> datetime:
    # Normalise so comparisons and re-serialisation ("...Z") do not depend on the sender's offset.
    return value.astimezone(UTC)


class NodeTime(datetime):
    """A parsed node time that remembers how many fractional-second digits its writer used.

    Comparisons with runner times must happen at the writer's precision (``tribesqa.node_time``),
    and JSON-shaped rows are re-serialised from the models: without the digits a node's
    ``…43.902Z`` would come back as ``…43.902000Z`` and look microsecond-precise.
    """

    digits: int = 6

    @classmethod
    def of(cls, moment: datetime, digits: int) -> NodeTime:
        made = cls(
            moment.year,
            moment.month,
            moment.day,
            moment.hour,
            moment.minute,
            moment.second,
            moment.microsecond,
            tzinfo=moment.tzinfo,
        )
        made.digits = digits
        return made


def _keep_digits(value: Any, handler: Any) -> datetime:
    parsed = handler(value)
    digits = fraction_digits(value) if isinstance(value, str) else getattr(value, "digits", 6)
    return NodeTime.of(parsed, digits)


def _render_time(value: datetime) -> str:
    return render(value, getattr(value, "digits", 6))


def _check_pubkey(value: str) -> str:
    if not _PUBKEY_RE.fullmatch(value):
        raise ValueError("must be a 64-character lowercase hex public key")
    return value


def _check_store_path(value: str) -> str:
    if not _STORE_PATH_RE.fullmatch(value):
        raise ValueError("must be a system generation store path /gnu/store/<32 chars>-system")
    return value


def _check_transport_address(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in _TRANSPORT_SCHEMES:
        raise ValueError(
            f"transport address scheme must be one of {', '.join(_TRANSPORT_SCHEMES)} "
            "(expected scheme://host:port)"
        )
    if not parts.hostname:
        raise ValueError("transport address has no host (expected scheme://host:port)")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"transport address has an invalid port ({exc})") from None
    if port is None:
        raise ValueError("transport address must name its port explicitly (scheme://host:port)")
    return value


#: An RFC 3339 timestamp with a timezone, normalised to UTC; JSON keeps the writer's precision.
Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_reject_epoch_numbers),
    AfterValidator(_as_utc),
    WrapValidator(_keep_digits),
    PlainSerializer(_render_time, when_used="json"),
]
#: A Nostr x-only public key: 64 lowercase hex characters.
Pubkey = Annotated[str, AfterValidator(_check_pubkey)]
#: A Guix system generation: ``/gnu/store/<32 chars>-system``.
StorePath = Annotated[str, AfterValidator(_check_store_path)]
#: ``scheme://host:port`` with scheme http/https/ws/wss and an explicit port.
TransportAddress = Annotated[str, AfterValidator(_check_transport_address)]


class ContractModel(BaseModel):
    """Base of every contract model: unknown keys ignored, instances immutable."""

    model_config = ConfigDict(extra="ignore", frozen=True)


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

# --------------------------------------------------------------------------------------------
# Local plugin API (supertest)
# --------------------------------------------------------------------------------------------


class PluginHealth(ContractModel):
    """``GET /plugins-api/supertest/health``."""

    status: str
    plugin: str
    version: str


class PluginSchema(ContractModel):
    """``GET /plugins-api/supertest/schema``."""

    tables: list[str]
    migrations: list[str]


class Case(ContractModel):
    """A supertest case; ``counter`` merges across nodes (sum of increments)."""

    id: str
    run_id: str
    name: str
    counter: int
    updated_at: Timestamp
    origin_node: str


class Event(ContractModel):
    """A supertest event (insert-once)."""

    id: str
    run_id: str
    case_id: str
    kind: str
    payload: dict[str, Any]
    created_at: Timestamp
    origin_node: str


class PluginState(ContractModel):
    """``GET /plugins-api/supertest/state?run_id=...``."""

    cases: list[Case]
    events: list[Event]


# --------------------------------------------------------------------------------------------
# Legion
# --------------------------------------------------------------------------------------------


class SshEndpoint(ContractModel):
    """Where the runner reaches a node over SSH."""

    host: str
    port: int = Field(ge=1, le=65535)
    user: str


# Legion statuses in which the machine exists and must be reachable (reactivate needs it too).
_REACHABLE_LEGION_STATUSES = (LegionNodeStatus.READY, LegionNodeStatus.DECOMMISSIONED)


class NodeRecord(ContractModel):
    """A machine as Legion records it.

    Addresses, SSH endpoint and pubkey may be null before the machine exists (planned,
    provisioning) or after it is gone (failed, destroyed); they are required when ready or
    decommissioned.
    """

    name: str
    provider: Provider
    region: str
    status: LegionNodeStatus
    admin_url: str | None = None
    transport_address: TransportAddress | None = None
    sync_endpoint: str | None = None
    ssh: SshEndpoint | None = None
    pubkey: Pubkey | None = None
    host_key_fingerprint: str | None = None

    @model_validator(mode="after")
    def _reachable_when_ready(self) -> NodeRecord:
        if self.status in _REACHABLE_LEGION_STATUSES:
            for field_name in ("admin_url", "transport_address", "sync_endpoint", "ssh", "pubkey"):
                if getattr(self, field_name) is None:
                    raise _rule_violation(
                        field_name,
                        _show(None),
                        f"required for a {self.status.value} node",
                    )
        return self


class MembershipRecord(ContractModel):
    """One row of Legion's ``clusterMembership`` (what Legion last wrote to the nodes)."""

    node: str
    node_id: str
    status: MemberStatus
    transport_address: TransportAddress
    scope: str
    joined_at: Timestamp
    activated_at: Timestamp | None
    decommissioned_at: Timestamp | None

    @model_validator(mode="after")
    def _status_matches_timestamps(self) -> MembershipRecord:
        _check_membership_times(self.status, self.activated_at, self.decommissioned_at)
        return self


class GraphRun(ContractModel):
    """One Legion graph run: ``planned`` node names, those ``materialized`` so far."""

    id: str
    planned: list[str]
    state: GraphRunState
    materialized: list[str] = []
    error: str | None = None


# Words (after splitting snake/camel/kebab case) that mark a key as secret material.
_SECRET_WORDS = frozenset(
    {"secret", "secrets", "password", "passwords", "passwd", "passphrase", "token", "tokens"}
    | {"nsec", "privkey", "privatekey"}
)
_SECRET_WORD_PAIRS = frozenset({("private", "key"), ("private", "keys"), ("api", "key")})
# Values that are secret material whatever their key is called.
_SECRET_VALUE_RE = re.compile(r"^nsec1[02-9ac-hj-np-z]{20,}$|PRIVATE KEY-----")


def _key_words(key: str) -> list[str]:
    """``hostKey_fingerprint`` -> ``["host", "key", "fingerprint"]``."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key)
    return [word for word in re.split(r"[^0-9a-zA-Z]+", spaced.lower()) if word]


def _is_secret_key(key: str) -> bool:
    words = _key_words(key)
    # Fingerprints of keys are what a sanitized snapshot is supposed to carry.
    if "fingerprint" in words or "fingerprints" in words:
        return False
    if _SECRET_WORDS.intersection(words):
        return True
    return any(pair in _SECRET_WORD_PAIRS for pair in pairwise(words))


def _join_path(base: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{base}[{part}]"
    return f"{base}.{part}" if base else part


def _walk_secret_material(data: Any, path: str) -> Iterator[str]:
    if isinstance(data, Mapping):
        for key, value in data.items():
            child = _join_path(path, str(key))
            if _is_secret_key(str(key)):
                yield child
            else:
                yield from _walk_secret_material(value, child)
    elif isinstance(data, Sequence) and not isinstance(data, str | bytes | bytearray):
        for index, item in enumerate(data):
            yield from _walk_secret_material(item, _join_path(path, index))
    elif isinstance(data, str) and _SECRET_VALUE_RE.search(data):
        yield path


def find_secret_material(data: Any) -> list[str]:
    """Paths (``nodes[0].ssh.private_key``) of keys or values that look like secrets.

    Keys are flagged by name (private_key, secret, password, token, nsec, api_key, ...; key
    fingerprints are fine), values when they are an ``nsec1...`` key or a PEM private key.
    """
    return list(_walk_secret_material(data, ""))


class LegionSnapshot(ContractModel):
    """Legion's sanitized state snapshot; JSON keys ``clusterMembership`` and ``graphRuns``.

    Rejected when any key anywhere looks like secret material: a snapshot must be sanitized.
    """

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    nodes: list[NodeRecord]
    cluster_membership: list[MembershipRecord] = Field(alias="clusterMembership")
    graph_runs: list[GraphRun] = Field(alias="graphRuns")

    @model_validator(mode="before")
    @classmethod
    def _sanitized(cls, data: Any) -> Any:
        leaks = find_secret_material(data)
        if leaks:
            extra = f" (also at {', '.join(leaks[1:])})" if len(leaks) > 1 else ""
            raise _rule_violation(
                leaks[0],
                _REDACTED_SHOWN,
                f"snapshot is not sanitized: looks like secret material{extra}",
            )
        return data

    def node(self, name: str) -> NodeRecord:
        """Legion's record of the machine called ``name`` (LookupError if unknown)."""
        for record in self.nodes:
            if record.name == name:
                return record
        raise LookupError(f"Legion has no node {name!r} (known: {[n.name for n in self.nodes]})")

    def membership(self, name: str) -> MembershipRecord:
        """Legion's membership row for the machine called ``name`` (LookupError if none)."""
        for record in self.cluster_membership:
            if record.node == name:
                return record
        raise LookupError(f"Legion has no membership row for {name!r}")


# --------------------------------------------------------------------------------------------
# Parsing with readable errors
# --------------------------------------------------------------------------------------------

_MAX_PROBLEMS_SHOWN = 5


@dataclass(frozen=True, slots=True)
class ContractProblem:
    """One way a payload misses the contract: where, what was there, why it is wrong."""

    path: str
    value: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path} = {self.value} ({self.reason})"


class ContractError(ValueError):
    """A payload does not match its contract model; ``str()`` is one readable sentence."""

    def __init__(self, source: str, model_name: str, problems: list[ContractProblem]) -> None:
        self.source = source
        self.model_name = model_name
        self.problems = problems
        super().__init__(self._message())

    def _message(self) -> str:
        shown = "; ".join(str(problem) for problem in self.problems[:_MAX_PROBLEMS_SHOWN])
        hidden = len(self.problems) - _MAX_PROBLEMS_SHOWN
        if hidden > 0:
            shown += f"; and {hidden} more"
        return f"{self.source} returned a payload that does not match {self.model_name}: {shown}"

    def __str__(self) -> str:
        return self.args[0]

    def __reduce__(self) -> tuple[Any, ...]:
        # The constructor does not take the message, so pickling (pabot, multiprocessing)
        # must rebuild from the parts.
        return (type(self), (self.source, self.model_name, self.problems))

    @classmethod
    def from_validation_error(
        cls, error: ValidationError, *, source: str, model_name: str
    ) -> ContractError:
        """Translate pydantic's error list into contract problems."""
        problems = [_problem_from_error(detail) for detail in error.errors(include_url=False)]
        return cls(source, model_name, problems)


def _format_loc(loc: Sequence[str | int]) -> str:
    path = ""
    for part in loc:
        path = _join_path(path, part)
    return path


def _problem_from_error(detail: Mapping[str, Any]) -> ContractProblem:
    path = _format_loc(detail["loc"])
    context = detail.get("ctx") or {}
    if _CTX_FIELD in context:
        # Our own rule violation: point at the field it is about, not at the whole object.
        field_path = str(context[_CTX_FIELD])
        if not path:
            path = field_path
        elif field_path.startswith("["):
            path += field_path
        else:
            path = f"{path}.{field_path}"
        value = str(context.get(_CTX_VALUE, _show(detail.get("input"))))
    elif detail["type"] == "missing":
        value = _MISSING_SHOWN
    else:
        value = _show(detail.get("input"))
    reason = str(detail["msg"]).removeprefix("Value error, ")
    return ContractProblem(path=path or "<payload>", value=value, reason=reason)


M = TypeVar("M", bound=BaseModel)


def parse_payload(model: type[M], payload: Any, *, source: str) -> M:
    """Validate ``payload`` (decoded JSON, or JSON text/bytes) as ``model``.

    ``source`` says where it came from (``"node hetzner-1 / cluster_nodes.list"``) and opens the
    error message. Raises :class:`ContractError`, never a pydantic error.
    """
    try:
        if isinstance(payload, str | bytes | bytearray):
            return model.model_validate_json(payload)
        return model.model_validate(payload)
    except ValidationError as exc:
        # "from None": the translated message says everything, pydantic's traceback adds noise.
        raise ContractError.from_validation_error(
            exc, source=source, model_name=model.__name__
        ) from None


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
