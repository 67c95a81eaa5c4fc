"""What Legion asks a host to run (``NodeSpec``), what a node is, and how it refuses."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROVIDER_REGIONS = {"hetzner": "fsn1", "scaleway": "fr-par", "ovh": "gra"}
PLUGIN_CATALOGUE = {"supertest": "0.3.1", "aether": "1.2.0", "sender": "0.9.0"}
NODE_VERSION = "tribes 0.42.0 (simulated)"
BASELINE_COMMIT = "baseline"


class NodeRefused(Exception):
    """An operation the node refuses; maps to an HTTP status and a contract error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class NodeSpec:
    """What Legion asks a host to run."""

    name: str
    provider: str
    directory: Path
    allowlist: list[str]
    ssh_authorized_keys: list[str]
    legion_url: str = ""
    scope: str = "full"
    role: str = "join"
    ports: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, raw: dict[str, Any]) -> NodeSpec:
        return cls(
            name=raw["name"],
            provider=raw["provider"],
            directory=Path(raw["directory"]),
            allowlist=list(raw["allowlist"]),
            ssh_authorized_keys=list(raw.get("ssh_authorized_keys", [])),
            legion_url=raw.get("legion_url", ""),
            scope=raw.get("scope", "full"),
            role=raw.get("role", "join"),
            ports=dict(raw.get("ports", {})),
        )
