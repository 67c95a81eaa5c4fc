"""Run every benchmark once, one after another, and print their figures (`make bench`).

Each script prints its own summary line with the goal next to the measured figure; nothing is
asserted. Pass --quick for one repetition each.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SCRIPTS = [
    ("sim_cluster_startup.py", ["--repeat", "5"]),
    ("sim_management_latency.py", []),
    ("sim_fifty_nodes.py", ["--repeat", "1"]),
    ("convergence_poll.py", []),
    ("convergence_lag.py", []),
    ("matrix_serial.py", ["--repeat", "1"]),
    ("parallel_matrix.py", []),
    ("fleet_gate_parallel.py", []),
]


def main() -> int:
    quick = "--quick" in sys.argv
    failed = []
    for script, default_args in SCRIPTS:
        path = BENCH / script
        if not path.exists():
            continue
        args = ["--repeat", "1"] if quick and "--repeat" in default_args else default_args
        print(f"\n=== {script} {' '.join(args)}", flush=True)
        started = time.monotonic()
        completed = subprocess.run([sys.executable, str(path), *args], check=False)
        print(
            f"=== {script}: exit {completed.returncode} in {time.monotonic() - started:.0f} s",
            flush=True,
        )
        if completed.returncode != 0:
            failed.append(script)
    if failed:
        print(f"\nbenchmarks that did not complete: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
