"""Mutation score of the pure judge modules (`make mutation`; issue 12).

Runs mutmut (configured in pyproject.toml, ``[tool.mutmut]``) on ``tribesqa/checks``,
``tribesqa/contract/node_time.py`` and ``tribesqa/waiting/judges.py`` against their fast unit
tests, then prints the figures -- killed / total, the score, the run time, the load -- and every
mutant that was not killed, with its status. Nothing is asserted: the goal (>= 90 % killed) is
printed next to the score.

mutmut names a mutant after its file path and strips only a leading ``src/``, while this
project's package lives in ``libraries/``. So the run happens in ``.mutation/`` (git-ignored), a
staging folder whose ``src/tribesqa``, ``tests``, ``variables``, ``docs`` and ``pyproject.toml`` are
links back to the checkout; mutmut copies them into ``.mutation/mutants/`` and mutates the copy.
Every run starts from an empty ``mutants/`` (mutmut would otherwise keep the verdicts of
mutants whose function did not change, even after a test was added).

    .venv/bin/python bench/mutation_score.py [--max-children 2] [--report-only] [--diff]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGE = ROOT / ".mutation"
# staging entry -> what it links to, relative to the staging entry's folder
LINKS = {
    "src/tribesqa": "../../libraries/tribesqa",
    "tests": "../tests",
    "variables": "../variables",
    "docs": "../docs",  # tests/matrix reads docs/requirements.yaml when collected
    "pyproject.toml": "../pyproject.toml",
}
GOAL_PCT = 90.0
RESULT_LINE = re.compile(r"^\s*(?P<name>\S+): (?P<status>.+?)\s*$")


def mutmut_command() -> str:
    candidate = Path(sys.executable).parent / "mutmut"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("mutmut")
    if found is None:
        sys.exit("mutmut is not installed: run `make install` (it is in the dev extras)")
    return found


def stage() -> None:
    """Create (or repair) the staging folder's links; leave ``mutants/`` alone."""
    for entry, target in LINKS.items():
        link = STAGE / entry
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() and os.readlink(link) == target:
            continue
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)


def mutmut(*args: str, log: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run one mutmut command in the staging folder; with ``log``, its output goes there."""
    command = [mutmut_command(), *args]
    if log is None:
        return subprocess.run(command, cwd=STAGE, capture_output=True, text=True, check=False)
    with log.open("w") as out:
        return subprocess.run(
            command, cwd=STAGE, stdout=out, stderr=subprocess.STDOUT, text=True, check=False
        )


def run_mutmut(max_children: int) -> float:
    """A fresh mutmut run; returns its wall time in seconds. Exits on a mutmut failure."""
    shutil.rmtree(STAGE / "mutants", ignore_errors=True)
    log = STAGE / "mutmut-run.log"
    print(f"mutmut run --max-children {max_children} in {STAGE} (output in {log})", flush=True)
    started = time.monotonic()
    completed = mutmut("run", "--max-children", str(max_children), log=log)
    elapsed = time.monotonic() - started
    if completed.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-30:]
        print("\n".join(tail))
        sys.exit(f"mutmut run failed with exit code {completed.returncode} (log: {log})")
    return elapsed


def read_figures() -> dict[str, int]:
    completed = mutmut("export-cicd-stats")
    stats_file = STAGE / "mutants" / "mutmut-cicd-stats.json"
    if completed.returncode != 0 or not stats_file.exists():
        sys.exit(
            "no mutmut results to read (run without --report-only first): "
            + (completed.stdout + completed.stderr).strip()
        )
    return json.loads(stats_file.read_text())


def read_not_killed() -> list[tuple[str, str]]:
    """(mutant, status) for every mutant mutmut did not kill, from ``mutmut results``."""
    completed = mutmut("results")
    if completed.returncode != 0:
        sys.exit(f"mutmut results failed: {completed.stderr.strip()}")
    found = []
    for line in completed.stdout.splitlines():
        match = RESULT_LINE.match(line)
        if match and "__mutmut_" in match["name"]:
            found.append((match["name"], match["status"]))
    return found


def module_of(mutant: str) -> str:
    """``tribesqa.checks.lifecycle.xǁArchiveJudgeǁjudge__mutmut_7`` -> ``tribesqa.checks.lifecycle``."""
    parts = mutant.split(".")
    for index, part in enumerate(parts):
        if part.startswith(("x_", "xǁ")):
            return ".".join(parts[:index])
    return mutant.rpartition(".")[0]


def report(figures: dict[str, int], not_killed: list[tuple[str, str]], *, diff: bool) -> None:
    total = figures["total"]
    tested = total - figures.get("skipped", 0)
    detected = figures["killed"] + figures.get("timeout", 0)
    score = 100.0 * detected / tested if tested else 0.0
    print()
    print(f"mutants:        {total} (skipped {figures.get('skipped', 0)})")
    print(f"killed:         {figures['killed']} (+ {figures.get('timeout', 0)} by timeout)")
    print(f"survived:       {figures['survived']}")
    print(f"no tests:       {figures.get('no_tests', 0)}")
    others = {
        key: figures.get(key, 0)
        for key in ("suspicious", "segfault", "check_was_interrupted_by_user")
        if figures.get(key, 0)
    }
    if others:
        print(f"other:          {others}")
    print(f"score:          {detected}/{tested} = {score:.1f} % killed (goal >= {GOAL_PCT:.0f} %)")
    by_module: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for name, status in not_killed:
        by_module[module_of(name)].append((name, status))
    if not by_module:
        print("\nno survivors")
        return
    print(f"\nnot killed ({len(not_killed)}):")
    for module in sorted(by_module):
        print(f"  {module}")
        for name, status in sorted(by_module[module]):
            print(f"    {status:<10} {name.removeprefix(module + '.')}")
            if diff:
                shown = mutmut("show", name).stdout.splitlines()
                print("\n".join(f"        {line}" for line in shown if not line.startswith("# ")))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--max-children", type=int, default=2, help="mutmut's parallel workers (default 2)"
    )
    parser.add_argument(
        "--report-only", action="store_true", help="print the figures of the last run, no new run"
    )
    parser.add_argument("--diff", action="store_true", help="show each survivor's diff")
    args = parser.parse_args()

    stage()
    load_before = os.getloadavg()[0]
    elapsed = None if args.report_only else run_mutmut(args.max_children)
    figures = read_figures()
    report(figures, read_not_killed(), diff=args.diff)
    if elapsed is not None:
        load_after = os.getloadavg()[0]
        print(
            f"\nrun time:       {elapsed:.0f} s with --max-children {args.max_children} "
            f"on {os.cpu_count()} cores (load {load_before:.1f} before, {load_after:.1f} after)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
