"""The simulated Legion orchestrator; ``python -m tribes_sim.legion --dir DIR`` runs it."""

from tribes_sim.legion.core import Legion
from tribes_sim.legion.refusal import LegionRefusal
from tribes_sim.legion.server import main, serve

__all__ = ["Legion", "LegionRefusal", "main", "serve"]
