"""Flake rate: the whole lifecycle matrix, N times, on a healthy simulator. Prints, never asserts.

Serial (`robot suites/`, as QA types it: no options, the embedded default target) or pabot with
P processes; optionally with a busy loop on every core (`--stress`) to play a shared, noisy CI
machine. Each run gets its own output directory; failures are counted per test with their first
message line. No rerun, no retry: a flake is a bug to fix, and this is how it is found.

    .venv/bin/python bench/flake_rate.py --runs 20
    .venv/bin/python bench/flake_rate.py --runs 20 --parallel 4
    .venv/bin/python bench/flake_rate.py --runs 10 --stress
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from robot.api import ExecutionResult

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def _burn(stop: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    # Pure-Python spin: one busy core per process, checked now and then for the stop signal.
    while not stop.is_set():
        for _ in range(200_000):
            pass


class Stress:
    """A busy loop on every core while the block runs; always stopped, even on Ctrl-C."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.stop = multiprocessing.Event()
        self.workers: list[multiprocessing.Process] = []

    def __enter__(self) -> Stress:
        if self.enabled:
            for _ in range(os.cpu_count() or 1):
                worker = multiprocessing.Process(target=_burn, args=(self.stop,), daemon=True)
                worker.start()
                self.workers.append(worker)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for worker in self.workers:
            worker.join(5)
            if worker.is_alive():
                worker.kill()


def command(parallel: int, outputdir: Path) -> list[str]:
    if parallel > 1:
        # As QA types it: pabot's own PabotLib port, no options beyond the process count.
        return [str(VENV_BIN / "pabot"), "--processes", str(parallel),
                "--outputdir", str(outputdir), "suites"]  # fmt: skip
    return [str(VENV_BIN / "robot"), "--outputdir", str(outputdir), "suites"]


def failures_of(output: Path) -> dict[str, str]:
    """Failed test long name -> first line of its message ({"(no output.xml)": ...} if none)."""
    if not output.is_file():
        return {"(no output.xml)": "the run wrote no output.xml"}
    failed: dict[str, str] = {}
    for test in ExecutionResult(str(output)).suite.all_tests:
        if test.status == "FAIL":
            failed[test.full_name] = (test.message.splitlines() or [""])[0][:160]
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="matrix runs (default 5)")
    parser.add_argument("--parallel", type=int, default=1, help="pabot processes (1 = robot)")
    parser.add_argument("--stress", action="store_true", help="busy loop on every core")
    parser.add_argument("--keep", action="store_true", help="keep each run's output directory")
    args = parser.parse_args()

    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"  # pabot starts robot by name
    for name in ("TRIBES_SIM_FAULTS", "TRIBES_SIM_OVERRIDES", "TRIBES_QA_TIMEOUTS"):
        env.pop(name, None)  # healthy and default, whatever the caller's shell has
    base = Path(tempfile.mkdtemp(prefix="tribes-qa-flake-"))
    mode = f"pabot --processes {args.parallel}" if args.parallel > 1 else "robot"
    mode += " + busy loop on every core" if args.stress else ""
    print(f"flake rate: {args.runs} run(s) of the matrix, {mode}; outputs under {base}")
    per_test: collections.Counter[str] = collections.Counter()
    examples: dict[str, str] = {}
    red_runs, tests_run, walls = 0, 0, []
    try:
        with Stress(args.stress):
            for number in range(1, args.runs + 1):
                out = base / f"run-{number:02d}"
                started = time.monotonic()
                done = subprocess.run(
                    command(args.parallel, out), cwd=ROOT, env=env,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
                )  # fmt: skip
                walls.append(time.monotonic() - started)
                failed = failures_of(out / "output.xml")
                if (out / "output.xml").is_file():
                    tests_run += ExecutionResult(str(out / "output.xml")).statistics.total.total
                red_runs += bool(failed) or done.returncode != 0
                for name, message in failed.items():
                    per_test[name] += 1
                    examples.setdefault(name, message)
                verdict = "green" if not failed and done.returncode == 0 else f"RED ({len(failed)})"
                print(f"  run {number:2d}: {verdict:<8} rc {done.returncode:<3} {walls[-1]:.1f} s")
                if not args.keep and not failed:
                    shutil.rmtree(out, ignore_errors=True)
    finally:
        if not args.keep and not any(base.iterdir()):
            base.rmdir()
    print(
        f"red runs: {red_runs} of {args.runs} ({100 * red_runs / max(args.runs, 1):.0f} %); "
        f"failed tests: {sum(per_test.values())} of {tests_run} run "
        f"({100 * sum(per_test.values()) / max(tests_run, 1):.2f} %); "
        f"wall median {statistics.median(walls):.1f} s"
    )
    for name, count in per_test.most_common():
        print(f"  {count:3d} x {name}: {examples[name]}")
    if red_runs:
        print(f"red runs kept for reading: {base}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
