"""Goal 3: a signed management call answers with p50 <= 5 ms on loopback.

Sequential NIP-98-signed calls of ``cluster_status`` and ``cluster_nodes.list`` (alternating)
against one node of a 3-node fleet, through one reused ``httpx.Client``; latency includes
signing on the client and verification on the node. The client-side signing cost is printed
separately so a regression can be placed on the right side of the wire.

    .venv/bin/python bench/sim_management_latency.py [--repeat 3] [--calls 500]
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import httpx
from _common import (
    build_cluster,
    fleet,
    load_note,
    management,
    parse_args,
    percentile,
    signed_client,
)

from tribes_sim.http_auth import HttpAuthVerifier
from tribesqa.clients.nip98 import authorization_for

GOAL_MS = 5.0
METHODS = ("cluster_status", "cluster_nodes.list")


def options(parser: Any) -> None:
    parser.add_argument("--calls", type=int, default=500, help="signed calls per run")
    parser.add_argument("--warmup", type=int, default=20, help="calls not counted per run")


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], repeat=3, extra=options)
    all_ms: list[float] = []
    for run in range(1, args.repeat + 1):
        with fleet("latency") as sim:
            build_cluster(sim, 3, poll_s=lambda _missing: 0.05)
            url = sim.admin_url(sim.names[-1])
            assert url is not None
            with signed_client(sim.key) as client:
                for index in range(args.warmup):
                    management(client, url, METHODS[index % 2])
                run_ms: list[float] = []
                for index in range(args.calls):
                    started = time.perf_counter()
                    management(client, url, METHODS[index % 2])
                    run_ms.append((time.perf_counter() - started) * 1000)
            # The same calls unsigned-by-us cost: signing alone, and an unauthenticated healthz.
            sign_ms = []
            headers = []
            for _ in range(200):
                started = time.perf_counter()
                headers.append(
                    authorization_for(sim.key, url + "/api/admin/management", "POST", b"{}")
                )
                sign_ms.append((time.perf_counter() - started) * 1000)
            # What the node spends on each call's header: the simulator's own verifier (fresh: no replays).
            verifier = HttpAuthVerifier([sim.key.pubkey_hex])
            verify_ms = []
            for header in headers:
                started = time.perf_counter()
                verifier.verify(header, url + "/api/admin/management", "POST", b"{}")
                verify_ms.append((time.perf_counter() - started) * 1000)
            with httpx.Client() as plain:
                health_ms = []
                for _ in range(200):
                    started = time.perf_counter()
                    plain.get(url + "/healthz")
                    health_ms.append((time.perf_counter() - started) * 1000)
        all_ms.extend(run_ms)
        print(
            f"run {run}: {len(run_ms)} signed calls p50 {percentile(run_ms, 50):.2f} ms, "
            f"p95 {percentile(run_ms, 95):.2f} ms, p99 {percentile(run_ms, 99):.2f} ms, "
            f"max {max(run_ms):.2f} ms | client signing alone p50 "
            f"{statistics.median(sign_ms):.3f} ms | verification alone p50 "
            f"{statistics.median(verify_ms):.3f} ms | unsigned GET /healthz p50 "
            f"{statistics.median(health_ms):.2f} ms | {load_note()}",
            flush=True,
        )
    print(
        f"all runs: p50 {percentile(all_ms, 50):.2f} ms, p95 {percentile(all_ms, 95):.2f} ms, "
        f"p99 {percentile(all_ms, 99):.2f} ms over {len(all_ms)} calls"
    )
    print(
        f"management call p50: {percentile(all_ms, 50):.2f} ms (goal <= {GOAL_MS:g} ms), "
        f"p95 {percentile(all_ms, 95):.2f} ms, p99 {percentile(all_ms, 99):.2f} ms "
        f"over {len(all_ms)} calls in {args.repeat} runs"
    )


if __name__ == "__main__":
    main()
