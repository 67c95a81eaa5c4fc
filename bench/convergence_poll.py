"""Goal: one convergence poll across 50 simulated nodes takes <= 200 ms (median).

One poll is exactly one attempt of ``Wait Until Cluster Converged``: every node's
``cluster_nodes.list`` fetched concurrently through NIP-98-signed management clients and
contract-checked (``fetch_membership_rows``), then ``MembershipJudge`` (membership matrix,
regression memory, summary) and the timeline entry, through ``waiting.poll_until`` with the
keyword's worker count and probe timeout. Two reference figures place a regression on the
right side: the judge alone on the same answers, and the floor, the same 50 signed calls made
concurrently without parsing or judging (what the fleet and the machine can serve). The load
average is printed with them: on a busy 2-core machine the floor alone exceeds the goal.
Figures are printed, never asserted.

    .venv/bin/python bench/convergence_poll.py [--repeat 20] [--nodes 50] [--nodes-per-host 10]
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import parse_args, percentile, release_fleet

from tribes_sim.fleet import start_fleet
from tribesqa.checks import MembershipJudge, describe_membership
from tribesqa.clients.keys import AdminKey
from tribesqa.clients.management_client import ManagementClient
from tribesqa.keywords.convergence_base import MAX_PROBE_WORKERS, fetch_membership_rows
from tribesqa.waiting import SYSTEM_CLOCK, ConvergenceFailure, WaitResult, poll_until

GOAL_MS = 200.0
POLL_INTERVAL_S = 0.1  # the sim profile's poll_interval
PROBE_TIMEOUT_S = 1.0  # what the keyword uses on the sim profile: max(1, 2 * poll_interval)


def options(parser: Any) -> None:
    parser.add_argument("--nodes", type=int, default=50, help="cluster size (default 50)")
    parser.add_argument("--nodes-per-host", type=int, default=10, help="nodes per host process")
    parser.add_argument("--warmup", type=int, default=3, help="polls not counted (connections)")


def one_poll(names: list[str], clients: dict[str, ManagementClient]) -> tuple[WaitResult, bool]:
    """One attempt of the wait (timeout 0 means: poll once, judge, return or fail)."""
    judge = MembershipJudge(names, started_at=SYSTEM_CLOCK.wall())
    try:
        result = poll_until(
            names,
            lambda node: fetch_membership_rows(clients[node]),
            judge,
            what="membership not converged",
            timeout_s=0.0,
            interval_s=POLL_INTERVAL_S,
            describe=describe_membership,
            max_workers=MAX_PROBE_WORKERS,
            probe_timeout_s=PROBE_TIMEOUT_S,
        )
    except ConvergenceFailure as failure:
        return failure.result, False
    return result, True


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], repeat=20, extra=options)
    directory = Path(tempfile.mkdtemp(prefix="tribes-bench-convergence-poll-")).resolve()
    clients: dict[str, ManagementClient] = {}
    try:
        started = time.perf_counter()
        descriptor = start_fleet(directory, nodes=args.nodes, nodes_per_host=args.nodes_per_host)
        print(
            f"fleet of {args.nodes} nodes ({args.nodes_per_host} per host) up in "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
        key = AdminKey.from_file(directory / "secrets" / "admin.key")
        names = [node["name"] for node in descriptor["nodes"] if node["status"] == "ready"]
        for node in descriptor["nodes"]:
            if node["name"] in names:
                clients[node["name"]] = ManagementClient(
                    node["name"],
                    node["admin_url"],
                    key,
                    timeout_s=10.0,
                    ready_timeout_s=10.0,
                    retry_interval_s=POLL_INTERVAL_S,
                )
        for _ in range(args.warmup):
            one_poll(names, clients)
        poll_ms: list[float] = []
        judge_ms: list[float] = []
        floor_ms: list[float] = []
        not_done: list[str] = []
        rows = 0
        with ThreadPoolExecutor(max_workers=MAX_PROBE_WORKERS) as pool:
            for _ in range(args.repeat):
                begin = time.perf_counter()
                result, done = one_poll(names, clients)
                poll_ms.append((time.perf_counter() - begin) * 1000)
                if not done:
                    not_done.append(result.verdict.summary)
                views = {node: obs.value for node, obs in result.observations.items()}
                rows = max(rows, *(len(v or []) for v in views.values()))
                begin = time.perf_counter()
                MembershipJudge(names, started_at=SYSTEM_CLOCK.wall()).judge(views, {})
                judge_ms.append((time.perf_counter() - begin) * 1000)
                begin = time.perf_counter()
                list(pool.map(lambda n: clients[n].call("cluster_nodes.list"), names))
                floor_ms.append((time.perf_counter() - begin) * 1000)
        loadavg = Path("/proc/loadavg")
        load = loadavg.read_text().split()[0] if loadavg.exists() else "?"
        print(
            f"{len(names)} nodes x {rows} rows per view: one poll median "
            f"{statistics.median(poll_ms):.1f} ms (goal <= {GOAL_MS:g} ms), p95 "
            f"{percentile(poll_ms, 95):.1f} ms, min {min(poll_ms):.1f}, max {max(poll_ms):.1f} "
            f"(n={len(poll_ms)}) | judge alone median {statistics.median(judge_ms):.1f} ms | "
            f"floor (bare concurrent signed calls) median {statistics.median(floor_ms):.1f} ms | "
            f"load average {load} on {os.cpu_count()} CPUs"
        )
        for summary in not_done[:3]:
            print(f"WARNING: a poll did not judge the cluster converged: {summary}")
    finally:
        for client in clients.values():
            client.close()
        release_fleet(directory)


if __name__ == "__main__":
    main()
