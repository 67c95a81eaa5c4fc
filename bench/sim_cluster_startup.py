"""Goal 1: a 3-node cluster (init + 2 joins) is all `active` within 3 s.

Measured from the "provision init" request to the moment every node lists all 3 rows active
(each node polled concurrently, NIP-98-signed, with the fleet's admin key). Legion's own process
start is timed separately and excluded.

    .venv/bin/python bench/sim_cluster_startup.py [--repeat 5] [--nodes 3] [--poll-ms 20]
"""

from __future__ import annotations

import statistics
from typing import Any

from _common import build_cluster, fleet, load_note, parse_args, spread

GOAL_S = 3.0


def options(parser: Any) -> None:
    parser.add_argument("--nodes", type=int, default=3, help="cluster size (default 3)")
    parser.add_argument(
        "--poll-ms", type=float, default=20.0, help="pause between polls of one node"
    )


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], repeat=5, extra=options)
    poll_s = args.poll_ms / 1000
    legion_start, init, materialize, active = [], [], [], []
    for run in range(1, args.repeat + 1):
        with fleet("startup") as sim:
            timing = build_cluster(sim, args.nodes, poll_s=lambda _missing: poll_s)
        legion_start.append(sim.legion_start_s)
        init.append(timing.init_returned)
        materialize.append(timing.materialize_returned)
        active.append(timing.all_active)
        print(
            f"run {run}: legion start {sim.legion_start_s:.2f} s | init returned "
            f"{timing.init_returned:.2f} s, materialize returned "
            f"{timing.materialize_returned:.2f} s, all active on every node "
            f"{timing.all_active:.2f} s, digests equal {timing.converged:.2f} s "
            f"({timing.polls} polls) | {load_note()}",
            flush=True,
        )
    print(f"legion process start (excluded): {spread(legion_start)}")
    print(f"provision init returned:         {spread(init)}")
    print(f"materialize returned:            {spread(materialize)}")
    print(f"all active everywhere:           {spread(active)}")
    print(
        f"{args.nodes}-node cluster all active: median {statistics.median(active):.2f} s "
        f"(goal <= {GOAL_S:g} s) over {len(active)} runs"
    )


if __name__ == "__main__":
    main()
