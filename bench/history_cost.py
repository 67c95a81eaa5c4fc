"""What the run history costs: the serial matrix with the history on and off, alternating.

Runs `robot` on suites/ (as `tribes-qa run` does) ``--repeat`` times with ``TRIBES_QA_HISTORY=1``
and as many with ``=0``, alternating which goes first, and prints the medians of the wall time
and their ratio (goal: history on <= 1.05 x off). The machine is shared, so whole-run times are
noisy; the script also replays one run's records through a recorder (compact form, digest,
scrubbing with the artifacts' redaction, writing) and prints that cost against the run's wall
time: the history's own share, free of the fleet's noise. Never asserts.

    .venv/bin/python bench/history_cost.py --repeat 3
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import load_note, parse_args

from tribesqa.history import HistoryRecorder, read_history
from tribesqa.reporting.snapshot import SecretScrubber

ROOT = Path(__file__).resolve().parent.parent
GOAL = 1.05


def run_matrix(history: bool) -> tuple[float, int, Path]:
    """One serial matrix run; (wall seconds, robot rc, output directory)."""
    env = {
        **os.environ,
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        "TRIBES_QA_HISTORY": "1" if history else "0",
    }
    env.pop("TRIBES_SIM_FAULTS", None)
    outdir = Path(tempfile.mkdtemp(prefix=f"tribes-bench-history-{int(history)}-"))
    command = [sys.executable, "-m", "robot", "--variablefile", "variables/sim.yaml"]
    command += ["--outputdir", str(outdir), "--console", "none", "suites"]
    started = time.monotonic()
    completed = subprocess.run(command, cwd=ROOT, env=env, check=False)
    return time.monotonic() - started, completed.returncode, outdir


def replay_seconds(outdir: Path) -> tuple[int, float]:
    """(records, seconds) to record, scrub and write a run's history again in this process."""
    histories = [read_history(p) for p in sorted(outdir.glob("artifacts/*/history.jsonl"))]
    records = [r for history in histories for r in history]
    scrubber = SecretScrubber(["f" * 64])  # one admin-key-sized needle, as a run has
    recorder = HistoryRecorder(enabled=True)
    recorder.scrub = lambda record: scrubber.scrub(record)[0]
    target = Path(tempfile.mkdtemp(prefix="tribes-bench-replay-")) / "history.jsonl"
    started = time.perf_counter()
    recorder.begin_suite("replay", target)
    for record in records:
        kind, node, what, value = record["type"], record["node"], record["what"], record["value"]
        if kind == "observation":
            recorder.observe(node, what, value)
        else:
            recorder._append(kind, node, what, value, record["op"])
    recorder.end_suite()
    return len(records), time.perf_counter() - started


def main() -> int:
    args = parse_args(__doc__.splitlines()[0], repeat=3)
    walls: dict[bool, list[float]] = {True: [], False: []}
    last_on: Path | None = None
    failures = 0
    for index in range(args.repeat):
        for history in (True, False) if index % 2 == 0 else (False, True):
            wall, rc, outdir = run_matrix(history)
            failures += rc != 0
            walls[history].append(wall)
            if history:
                last_on = outdir
            state = "on " if history else "off"
            print(f"run {index + 1} history {state}: wall {wall:.1f} s rc={rc} ({load_note()})")
    on, off = statistics.median(walls[True]), statistics.median(walls[False])
    print()
    print(f"history on:  median {on:.1f} s (n={len(walls[True])})")
    print(f"history off: median {off:.1f} s (n={len(walls[False])})")
    if last_on is not None:
        count, seconds = replay_seconds(last_on)
        per = seconds / count * 1e6 if count else 0.0
        print(
            f"replay: {count} records recorded, scrubbed and written in {seconds * 1000:.0f} ms "
            f"({per:.0f} us each) = {seconds / on * 100:.2f} % of a history-on run"
        )
    ratio = on / off if off else float("nan")
    verdict = "meets" if ratio <= GOAL else "misses"
    print(
        f"SUMMARY history cost: on/off = {ratio:.3f} ({(ratio - 1) * 100:+.1f} %), "
        f"{verdict} the goal <= {GOAL:.2f}; {failures} run(s) with failures"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
