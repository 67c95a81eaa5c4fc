"""Wall time of the whole lifecycle matrix against the simulator, serial, and where it goes.

Runs `robot` on suites/ (as `tribes-qa run` does) N times and splits each run's time, from
output.xml, into:
  * simulator waits: keywords that wait for the fleet to change (convergence waits, rollout
    jobs, Legion operations that block until a join is active, "stays stale" windows);
  * fleet start/stop: Open Target / Close Target (Legion + node processes);
  * overhead: everything else (Robot, the library, one-shot API calls).
Prints medians; goal <= 90 s on a 2-core machine. Never asserts.

    .venv/bin/python bench/matrix_serial.py --repeat 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from robot.api import ExecutionResult

ROOT = Path(__file__).resolve().parent.parent
WAIT_PREFIXES = (
    "wait ",
    "node should stay",
    "materialize",
    "start materializing",
    "provision init node",
    "replace node",
    "reactivate node",
    "roll out plugin to nodes",
    "roll back nodes to generation",
    "restart node",
    "crash node",
    "ensure roster nodes exist",
    "cluster status should be healthy",
    "node should be archived",
)
FLEET_KEYWORDS = ("open target", "close target")


def classify(name: str) -> str:
    lowered = name.lower()
    if lowered.startswith(FLEET_KEYWORDS):
        return "fleet start/stop"
    if lowered.startswith(WAIT_PREFIXES):
        return "simulator waits"
    return "overhead"


def library_time(output: Path) -> tuple[float, dict[str, float]]:
    """Total elapsed and seconds per class, counting each library keyword once (outermost)."""
    result = ExecutionResult(str(output))
    buckets: dict[str, float] = defaultdict(float)

    def visit(item: object, inside_library: bool) -> None:
        for child in getattr(item, "body", []):
            if getattr(child, "type", "") not in ("KEYWORD", "SETUP", "TEARDOWN"):
                visit(child, inside_library)
                continue
            owner = getattr(child, "owner", None) or getattr(child, "libname", "")
            is_library = owner == "TribesLibrary" or str(owner).endswith("TribesLibrary")
            if is_library and not inside_library:
                buckets[classify(child.name)] += child.elapsed_time.total_seconds()
                continue
            visit(child, inside_library or is_library)

    def visit_suite(suite: object) -> None:
        for keyword in (suite.setup, suite.teardown):  # type: ignore[attr-defined]
            if keyword:
                visit(type("Wrapper", (), {"body": [keyword]})(), False)
        for test in suite.tests:  # type: ignore[attr-defined]
            visit(test, False)
            for keyword in (test.setup, test.teardown):
                if keyword:
                    visit(type("Wrapper", (), {"body": [keyword]})(), False)
        for child in suite.suites:  # type: ignore[attr-defined]
            visit_suite(child)

    visit_suite(result.suite)
    total = result.suite.elapsed_time.total_seconds()
    counted = sum(buckets.values())
    buckets["overhead"] += max(0.0, total - counted)
    return total, dict(buckets)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    env = {
        **os.environ,
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
    }
    env.pop("TRIBES_SIM_FAULTS", None)
    walls: list[float] = []
    splits: dict[str, list[float]] = defaultdict(list)
    failures = 0
    for index in range(args.repeat):
        outdir = Path(tempfile.mkdtemp(prefix="tribes-bench-matrix-"))
        started = time.monotonic()
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "robot",
                "--variablefile",
                "variables/sim.yaml",
                "--outputdir",
                str(outdir),
                "--console",
                "none",
                "suites",
            ],
            cwd=ROOT,
            env=env,
            check=False,
        )
        wall = time.monotonic() - started
        failures += completed.returncode != 0
        total, buckets = library_time(outdir / "output.xml")
        walls.append(wall)
        for name in ("simulator waits", "fleet start/stop", "overhead"):
            splits[name].append(buckets.get(name, 0.0))
        print(
            f"run {index + 1}: wall {wall:.1f} s (robot {total:.1f} s) rc={completed.returncode} "
            + ", ".join(f"{k} {v:.1f} s" for k, v in sorted(buckets.items()))
        )
    median = statistics.median(walls)
    print()
    for name, values in splits.items():
        share = statistics.median(values) / median * 100 if median else 0
        print(f"  {name:<18} median {statistics.median(values):6.1f} s  ({share:4.1f} % of wall)")
    print(
        f"full matrix serial against the simulator: median {median:.1f} s (goal <= 90 s) over {args.repeat} run(s)"
        + (f"; {failures} run(s) had failures" if failures else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
