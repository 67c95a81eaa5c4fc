"""One simulated Tribes node (``SimNode``) and what Legion and the hosts need to run one."""

from tribes_sim.node.core import SimNode
from tribes_sim.node.ports import OTHER_PROVIDER_PORTS, PROVIDER_PORTS, bind_in_range, bind_socket
from tribes_sim.node.spec import (
    BASELINE_COMMIT,
    NODE_VERSION,
    PLUGIN_CATALOGUE,
    PROVIDER_REGIONS,
    NodeRefused,
    NodeSpec,
)
from tribes_sim.node.sync_client import SyncServerState
from tribes_sim.node.timestamps import backdated, set_timestamp_precision, utc_now

__all__ = [
    "BASELINE_COMMIT",
    "NODE_VERSION",
    "OTHER_PROVIDER_PORTS",
    "PLUGIN_CATALOGUE",
    "PROVIDER_PORTS",
    "PROVIDER_REGIONS",
    "NodeRefused",
    "NodeSpec",
    "SimNode",
    "SyncServerState",
    "backdated",
    "bind_in_range",
    "bind_socket",
    "set_timestamp_precision",
    "utc_now",
]
