"""The fleet gate on a 10-node simulated roster: serial (plain robot, one process checks every
node) vs parallel per node (`tribes-qa run --gate-per-node`, one pabot process per node against
one shared fleet).

The roster (hetzner/scaleway/ovh in turn, as Legion names them) lives in a temporary variables
file. Both runs include the fleet's start and stop. Destructive checks run serialized in both
(the exclusive hold in parallel); --no-destructive measures the read-only gate alone. Prints
wall times and the ratio; never asserts.

    .venv/bin/python bench/fleet_gate_parallel.py [--nodes 10] [--repeat 1] [--no-destructive]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path

import yaml
from parallel_matrix import ROOT, load_note, timed_run

PROVIDERS = ("hetzner", "scaleway", "ovh")


def roster(count: int) -> list[dict[str, str]]:
    entries = []
    for index in range(count):
        provider = PROVIDERS[index % len(PROVIDERS)]
        number = index // len(PROVIDERS) + 1
        entries.append(
            {"node": f"{provider}-{number}", "role": "init" if index == 0 else "fleet verify",
             "provider": provider}
        )  # fmt: skip
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-destructive", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bgp-"))
    serial, parallel = [], []
    try:
        data = yaml.safe_load((ROOT / "variables" / "sim.yaml").read_text())
        data["TARGET"]["sim"]["fleets_dir"] = str(work / "fleets")
        data["ROSTER"] = roster(args.nodes)
        data["ALLOW_DESTRUCTIVE"] = not args.no_destructive
        target = work / "roster.yaml"
        target.write_text(yaml.safe_dump(data, sort_keys=False))
        gate = str(ROOT / "suites" / "fleet_gate.robot")
        for run in range(1, args.repeat + 1):
            s_time, s_tests = timed_run(["--target", str(target), "--", gate], work / f"s{run}")
            p_time, p_tests = timed_run(
                ["--target", str(target), "--gate-per-node"], work / f"p{run}"
            )
            serial.append(s_time)
            parallel.append(p_time)
            print(
                f"run {run}: serial {s_time:.1f} s ({s_tests}) | per node, {args.nodes} "
                f"processes {p_time:.1f} s ({p_tests}) | ratio {p_time / s_time:.2f} | "
                f"{load_note()}",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    s_med, p_med = statistics.median(serial), statistics.median(parallel)
    kind = "read-only" if args.no_destructive else "with destructive checks"
    print(
        f"fleet gate, {args.nodes} nodes, {kind}: serial {s_med:.1f} s, parallel per node "
        f"{p_med:.1f} s, ratio {p_med / s_med:.2f} over {len(serial)} run(s)"
    )


if __name__ == "__main__":
    main()
