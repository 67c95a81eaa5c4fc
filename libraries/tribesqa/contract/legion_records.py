"""Legion's views: node records, membership records, graph runs and the sanitized snapshot
(which must hold no secret material)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from itertools import pairwise
from typing import Any

from pydantic import (
    ConfigDict,
    Field,
    model_validator,
)

from tribesqa.contract.enums import GraphRunState, LegionNodeStatus, MemberStatus, Provider
from tribesqa.contract.errors import _REDACTED_SHOWN, _join_path, _rule_violation, _show
from tribesqa.contract.management import _check_membership_times
from tribesqa.contract.wire_types import ContractModel, Pubkey, Timestamp, TransportAddress

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
