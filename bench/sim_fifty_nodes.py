"""Goal 2: a 50-node cluster is up and converged within 30 s using at most 1.5 GiB total RSS.

Time runs from the "provision init" request until every node lists 50 rows, all active, and
every node reports the same ``cluster_status.membership_digest``. RSS is the sum of VmRSS over
Legion, the host zygote and every node host of the fleet (found by their command lines), read
once converged; PSS (shared pages split between the processes mapping them: forked hosts share
their imports) is printed alongside for reference. Settings are the simulator's large-fleet
defaults (``tribes_sim.fleet.LARGE_FLEET_DEFAULTS``); ``--nodes-per-host`` compares packings.

    .venv/bin/python bench/sim_fifty_nodes.py [--repeat 1] [--nodes 50] [--nodes-per-host 10,25]
"""

from __future__ import annotations

import contextlib
import statistics
import time
from pathlib import Path
from typing import Any

from _common import (
    build_cluster,
    cpu_seconds,
    fleet,
    fleet_pids,
    load_note,
    parse_args,
    rss_bytes,
)

from tribes_sim.fleet import LARGE_FLEET_DEFAULTS, LARGE_FLEET_NODES

GOAL_S = 30.0
GOAL_RSS = 1.5 * 2**30
MIB = 2**20


def options(parser: Any) -> None:
    parser.add_argument("--nodes", type=int, default=50, help="cluster size (default 50)")
    parser.add_argument(
        "--nodes-per-host",
        default=f"{LARGE_FLEET_DEFAULTS['nodes_per_host']},25",
        help="comma-separated packings to compare; the first one is summarised last",
    )
    parser.add_argument(
        "--long-poll-s", type=float, default=None, help="override SimConfig.sync_long_poll_s"
    )
    parser.add_argument(
        "--idle-s", type=float, default=3.0, help="seconds of idle CPU sampled once converged"
    )


def pss_bytes(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    return 0


def poll_pause(missing: int) -> float:
    """Poll rarely while rows are missing: 50 signed pollers would otherwise steal CPU from the
    fleet they measure (the resolution that matters is at the end, when one row is missing)."""
    return 0.25 + min(5.0, 0.3 * (missing - 1))


def one_run(nodes: int, overrides: dict[str, Any], idle_s: float) -> dict[str, float]:
    per_host = overrides.get("nodes_per_host", 1)
    with fleet(f"fifty-k{per_host}", **overrides) as sim:
        timing = build_cluster(sim, nodes, poll_s=poll_pause)
        pids = fleet_pids(sim.directory)
        rss = sum(rss_bytes(pid) for pid in pids)
        pss = sum(pss_bytes(pid) for pid in pids)
        legion_rss = sum(rss_bytes(pid) for pid, role in pids.items() if role == "legion")
        busy_before = {pid: cpu_seconds(pid) for pid in pids}
        time.sleep(idle_s)
        idle_cpu = sum(cpu_seconds(pid) - busy_before[pid] for pid in pids) / idle_s
        total_cpu = sum(cpu_seconds(pid) for pid in pids)
    hosts = sum(1 for role in pids.values() if role == "host")
    print(
        f"  nodes_per_host={per_host}: {hosts} hosts + legion + zygote | init "
        f"{timing.init_returned:.2f} s, materialize returned {timing.materialize_returned:.2f} s, "
        f"all active {timing.all_active:.2f} s, converged {timing.converged:.2f} s | RSS "
        f"{rss / MIB:.0f} MiB (legion {legion_rss / MIB:.0f}), PSS {pss / MIB:.0f} MiB | fleet "
        f"CPU {total_cpu:.1f} s, idle {idle_cpu * 100:.0f}% of a core | {load_note()}",
        flush=True,
    )
    return {"converged": timing.converged, "rss": rss}


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], repeat=1, extra=options)
    base = dict(LARGE_FLEET_DEFAULTS) if args.nodes > LARGE_FLEET_NODES else {}
    if args.long_poll_s is not None:
        base["sync_long_poll_s"] = args.long_poll_s
    packings = [int(k) for k in args.nodes_per_host.split(",") if k.strip()]
    results: dict[int, list[dict[str, float]]] = {k: [] for k in packings}
    for run in range(1, args.repeat + 1):
        print(f"run {run} (sync_long_poll_s={base.get('sync_long_poll_s', 'default')}):")
        for per_host in packings:
            overrides = {**base, "nodes_per_host": per_host}
            results[per_host].append(one_run(args.nodes, overrides, args.idle_s))
    lines = []
    for per_host, runs in results.items():
        converged = statistics.median(r["converged"] for r in runs)
        rss = statistics.median(r["rss"] for r in runs)
        lines.append(
            f"{args.nodes}-node cluster converged (nodes_per_host={per_host}): median "
            f"{converged:.2f} s (goal <= {GOAL_S:g} s), total RSS {rss / MIB:.0f} MiB "
            f"(goal <= {GOAL_RSS / MIB:.0f} MiB) over {len(runs)} runs"
        )
    # The first packing (the simulator's default) is the final one-line summary.
    print("\n".join(lines[1:] + lines[:1]))


if __name__ == "__main__":
    main()
