"""Target strategies: the simulator and a real fleet, behind one interface."""

from __future__ import annotations

from pathlib import Path

from tribesqa.config import TargetConfig, TargetKind, TimeoutProfile
from tribesqa.targets.base import LegionDriver, LegionError, Nemesis, PluginTransport, Target


def create_target(config: TargetConfig, timeouts: TimeoutProfile, results_dir: Path) -> Target:
    """The strategy the configuration names (the only place that looks at ``kind``)."""
    if config.kind is TargetKind.SIM:
        from tribesqa.targets.sim import SimTarget

        return SimTarget(config, timeouts, results_dir)
    from tribesqa.targets.real import RealTarget

    return RealTarget(config, timeouts, results_dir)


__all__ = ["LegionDriver", "LegionError", "Nemesis", "PluginTransport", "Target", "create_target"]
