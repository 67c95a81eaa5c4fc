"""Goal: ``Wait Until Node Is Active Everywhere`` returns within one poll interval of convergence.

For each of N joins, Legion materializes one planned node in a background thread while the
keyword (``ConvergenceKeywords`` on a ``LibraryContext`` with the sim target, as a suite runs
it) waits for the node. The lag is the moment the wait returned minus the moment the simulator
converged: the joined node's ``activated_at`` (the simulator's own timestamp, the latest seen
across the nodes). Printed as p50 / p95 against the sim profile's poll interval; never asserted.

The simulated Legion serves one request at a time, so during a graph run any Legion call
(the context's list of ready nodes, the new node's record) would wait for the whole join and
the figure would measure Legion's lock instead of the poller. The bench therefore gives the
context what it would ask Legion for: the ready nodes as they were before the join, and the new
node's admin URL as soon as its host wrote ``ports.json`` (as ``bench/_common.py`` does).

    .venv/bin/python bench/convergence_lag.py [--repeat 10]
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import fleet_pids, parse_args, percentile

from tribes_sim.fleet import JOIN_PROVIDERS, kill_strays
from tribesqa.checks import parse_time
from tribesqa.context import LibraryContext
from tribesqa.keywords.convergence_base import fetch_membership_rows
from tribesqa.keywords.convergence_keywords import ConvergenceKeywords

TARGET = {
    "name": "bench-convergence-lag",
    "kind": "sim",
    "timeouts_profile": "sim",
    "plugin_transport": "http",
    "sim": {"nodes_per_host": 1, "faults": []},
}


def _admin_url(fleet_dir: Path, name: str, timeout_s: float = 30.0) -> str:
    """The new node's admin URL once its host bound the ports (no Legion call)."""
    deadline = time.monotonic() + timeout_s
    path = fleet_dir / "nodes" / name / "ports.json"
    while time.monotonic() < deadline:
        try:
            return f"http://127.0.0.1:{json.loads(path.read_text())['admin']}"
        except (OSError, ValueError, KeyError):
            time.sleep(0.002)
    raise RuntimeError(f"{name}: no ports.json after {timeout_s} s")


def join_once(
    ctx: LibraryContext, keywords: ConvergenceKeywords, fleet_dir: Path, provider: str
) -> float:
    """One join; returns the lag in seconds (wait returned - max activated_at)."""
    legion = ctx.require_target().legion
    ready = [name for name in ctx.active_names()]
    planned = legion.plan_join(provider, 1)[0]
    ctx.provisioned.append(planned.name)
    outcome: dict[str, Any] = {}

    def materialize() -> None:
        try:
            outcome["run"] = legion.materialize()
        except Exception as error:  # reported below, after the wait
            outcome["error"] = error

    worker = threading.Thread(target=materialize, name="materialize")
    worker.start()
    original = ctx.active_names
    try:
        url = _admin_url(fleet_dir, planned.name)
        ctx.remember(planned.model_copy(update={"admin_url": url}))
        ctx.active_names = lambda: list(ready)  # type: ignore[method-assign]
        keywords.wait_until_node_is_active_everywhere(planned.name)
        returned = datetime.now(UTC)
    finally:
        ctx.active_names = original  # type: ignore[method-assign]
        worker.join(120)
    if "error" in outcome:
        raise RuntimeError(f"materialize {planned.name}: {outcome['error']}")
    stamps = []
    for observer in ctx.active_names():
        for row in fetch_membership_rows(ctx.client(observer)):
            if row["node_id"] == planned.name and row["activated_at"]:
                stamps.append(parse_time(row["activated_at"]))
    return (returned - max(stamps)).total_seconds()


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], repeat=10)
    output = Path(tempfile.mkdtemp(prefix="tribes-bench-convergence-lag-")).resolve()
    ctx = LibraryContext()
    ctx.labels.output_dir = output
    fleet_dir: Path | None = None
    lags: list[float] = []
    try:
        ctx.open_target(TARGET, None, "bench-convergence-lag")
        fleet_dir = getattr(ctx.target, "fleet_dir", None)
        assert fleet_dir is not None, "the sim target has a fleet directory"
        interval = ctx.require_timeouts().poll_interval
        keywords = ConvergenceKeywords(ctx)
        init = ctx.require_target().legion.provision_init("hetzner")
        ctx.provisioned.append(init.name)
        for index in range(args.repeat):
            lag = join_once(ctx, keywords, fleet_dir, JOIN_PROVIDERS[index % len(JOIN_PROVIDERS)])
            lags.append(lag)
            print(f"join {index + 1}: lag {lag * 1000:.0f} ms", flush=True)
        within = sum(1 for lag in lags if lag <= interval)
        print(
            f"wait return lag after convergence over {len(lags)} joins: p50 "
            f"{percentile(lags, 50) * 1000:.0f} ms, p95 {percentile(lags, 95) * 1000:.0f} ms, "
            f"mean {statistics.mean(lags) * 1000:.0f} ms, max {max(lags) * 1000:.0f} ms "
            f"(goal: within one poll interval, {interval * 1000:.0f} ms; {within}/{len(lags)} were)"
        )
    finally:
        for problem in ctx.close_target():
            print(f"WARNING: {problem}", file=sys.stderr)
        if fleet_dir is not None:
            kill_strays(fleet_dir)
            left = fleet_pids(fleet_dir)
            if left:
                print(f"WARNING: processes left behind: {sorted(left)}", file=sys.stderr)
        shutil.rmtree(output, ignore_errors=True)


if __name__ == "__main__":
    main()
