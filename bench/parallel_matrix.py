"""The lifecycle matrix against the simulator: serial `robot` vs `pabot --processes 4`.

Both are started the way `tribes-qa run` starts them (same variables, same suites; the pabot one
through the runner, with its cleanup) in a private output directory and fleets directory, one
after the other, REPEAT times. Prints the wall times, the tests passed, and the ratio
pabot / serial (goal <= 0.6 on a 2-core machine). Never asserts.

    .venv/bin/python bench/parallel_matrix.py [--repeat 1] [--processes 4]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from robot.api import ExecutionResult

ROOT = Path(__file__).resolve().parent.parent
TRIBES_QA = Path(sys.executable).parent / "tribes-qa"
GOAL_RATIO = 0.6


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f}/{five:.1f} on {os.cpu_count()} cores"


def private_target(directory: Path) -> Path:
    data = yaml.safe_load((ROOT / "variables" / "sim.yaml").read_text())
    data["TARGET"]["sim"]["fleets_dir"] = str(directory / "fleets")
    target = directory / "target.yaml"
    target.write_text(yaml.safe_dump(data, sort_keys=False))
    return target


def timed_run(args: list[str], outputdir: Path) -> tuple[float, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("TRIBES_QA_RUN_ID", "TRIBES_SIM_FAULTS")
    }
    started = time.monotonic()
    subprocess.run(
        [str(TRIBES_QA), "run", "--outputdir", str(outputdir), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    elapsed = time.monotonic() - started
    stats = ExecutionResult(str(outputdir / "output.xml")).statistics.total
    return elapsed, f"{stats.passed} passed, {stats.failed} failed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--processes", type=int, default=4)
    args = parser.parse_args()
    serial, parallel = [], []
    # Short on purpose: node hosts put Unix sockets under the fleet directory.
    work = Path(tempfile.mkdtemp(prefix="bpm-"))
    try:
        target = private_target(work)
        for run in range(1, args.repeat + 1):
            s_time, s_tests = timed_run(["--target", str(target)], work / f"serial-{run}")
            p_time, p_tests = timed_run(
                ["--target", str(target), "--parallel", str(args.processes)], work / f"pabot-{run}"
            )
            serial.append(s_time)
            parallel.append(p_time)
            print(
                f"run {run}: serial robot {s_time:.1f} s ({s_tests}) | pabot --processes "
                f"{args.processes} {p_time:.1f} s ({p_tests}) | ratio {p_time / s_time:.2f} | "
                f"{load_note()}",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    s_med, p_med = statistics.median(serial), statistics.median(parallel)
    print(
        f"matrix: serial {s_med:.1f} s, pabot --processes {args.processes} {p_med:.1f} s, "
        f"ratio {p_med / s_med:.2f} (goal <= {GOAL_RATIO}) over {len(serial)} run(s)"
    )


if __name__ == "__main__":
    main()
