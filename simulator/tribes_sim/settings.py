"""Simulator settings: one place for sync intervals, stage durations and switched-on faults.

Fast defaults keep a 3-node cluster converging in about a second; a real fleet takes minutes, which
is why the suites read their timeouts from ``variables/timeouts.yaml`` and never from here.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tribes_sim.fault_catalogue import parse_faults

ROLLOUT_STAGES = ("pull", "build", "switch", "migrate", "restart")


TIMESTAMP_PRECISIONS = ("seconds", "milliseconds", "microseconds")


@dataclass
class SimConfig:
    """Timing and behaviour knobs shared by Legion, node hosts and nodes."""

    sync_long_poll_s: float = 1.0
    sync_retry_s: float = 0.05
    boot_s: float = 0.05
    stage_s: dict[str, float] = field(
        default_factory=lambda: {
            "pull": 0.05,
            "build": 0.05,
            "switch": 0.05,
            "migrate": 0.05,
            "restart": 0.15,
        }
    )
    restart_s: float = 0.15
    nodes_per_host: int = 1
    legion_wait_active_s: float = 30.0
    missing_substitutes: list[str] = field(default_factory=list)
    # isoformat timespec of every time a node or Legion writes: seconds, milliseconds, microseconds
    timestamp_precision: str = "milliseconds"
    faults: list[str] = field(default_factory=list)
    # One seed for every non-secret random choice (ports, ids; see tribes_sim.seeded); None: fresh
    seed: int | None = None

    def has_fault(self, name: str) -> bool:
        return name in self.faults

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> SimConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        config = cls(**known)
        config.faults = sorted(parse_faults(config.faults))
        if config.timestamp_precision not in TIMESTAMP_PRECISIONS:
            raise ValueError(
                f"timestamp_precision {config.timestamp_precision!r}: "
                f"must be one of {', '.join(TIMESTAMP_PRECISIONS)}"
            )
        return config

    @classmethod
    def load(cls, path: Path | None = None) -> SimConfig:
        """Load from a JSON file (if given) and apply ``TRIBES_SIM_FAULTS`` from the environment."""
        data: dict[str, Any] = {}
        if path is not None and path.exists():
            data = json.loads(path.read_text())
        config = cls.from_mapping(data)
        env_faults = os.environ.get("TRIBES_SIM_FAULTS", "")
        if env_faults.strip():
            config.faults = sorted(set(config.faults) | parse_faults(env_faults))
        return config
