"""The contract's closed vocabularies: statuses, states, providers, error codes and their HTTP statuses."""

from __future__ import annotations

from enum import StrEnum

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
