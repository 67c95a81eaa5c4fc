"""``tribes-qa run --rerun-failed``: rerun the suites that failed in the last run, merge the results.

Tests of a suite are steps of one runbook (later tests read suite variables earlier ones set),
so a failed test is rerun with its whole suite, never alone. The last ``output.xml`` is copied
to ``output-previous.xml``; the rerun writes ``output-rerun.xml`` only; then
``rebot --merge output-previous.xml output-rerun.xml`` writes ``output.xml``, ``log.html`` and
``report.html``: every rerun test replaces its first result, with Robot's merge note in its
message. Plain robot selects the suites itself (``--rerunfailedsuites output-previous.xml``);
pabot gets them as ``--suite`` options (computed by Robot's own ``gather_failed_suites``),
because pabot hands every process the whole data source and Robot would add all failed suites
to each process's ``--suite`` selection.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

OUTPUT = "output.xml"
PREVIOUS_OUTPUT = "output-previous.xml"
RERUN_OUTPUT = "output-rerun.xml"


class NothingToRerun(Exception):
    """The last run failed nothing: there is nothing to rerun (exit 0)."""


@dataclass(frozen=True)
class RerunPlan:
    """The suites to rerun and where the outputs go."""

    outputdir: Path
    suites: list[str]

    @property
    def previous(self) -> Path:
        return self.outputdir / PREVIOUS_OUTPUT

    @property
    def rerun_output(self) -> Path:
        return self.outputdir / RERUN_OUTPUT

    def robot_options(self, *, pabot: bool) -> list[str]:
        """Options for the rerun's robot/pabot: the selection and an output of its own."""
        options = ["--output", RERUN_OUTPUT, "--log", "NONE", "--report", "NONE"]
        if pabot:
            for suite in self.suites:
                options += ["--suite", suite]
        else:
            options += ["--rerunfailedsuites", str(self.previous)]
        return options

    def merge_command(self) -> list[str]:
        """``rebot --merge`` of the previous and the rerun output into output/log/report."""
        return [
            sys.executable,
            "-m",
            "robot.rebot",
            "--merge",
            "--outputdir",
            str(self.outputdir),
            "--output",
            OUTPUT,
            "--log",
            "log.html",
            "--report",
            "report.html",
            str(self.previous),
            str(self.rerun_output),
        ]


def failed_suites(output: Path) -> list[str]:
    """Full names of the suites with a failed test in ``output`` (Robot's own gatherer)."""
    from robot.conf.gatherfailed import gather_failed_suites
    from robot.errors import DataError

    from tribesqa.running.runner import RunError

    try:
        return list(gather_failed_suites(str(output), empty_suite_ok=True))
    except DataError as error:
        raise RunError(f"--rerun-failed: {error}") from None


def plan_rerun(outputdir: Path) -> RerunPlan:
    """Read the last run's output.xml, keep it as output-previous.xml, name the failed suites.

    Raises ``RunError`` when there is no output.xml to rerun from (or it cannot be read),
    :class:`NothingToRerun` when it holds no failure.
    """
    from tribesqa.running.runner import RunError

    output = outputdir / OUTPUT
    if not output.is_file():
        raise RunError(f"--rerun-failed: no {output} to rerun from: run the suites first")
    suites = failed_suites(output)
    if not suites:
        raise NothingToRerun(f"nothing failed in {output}: nothing to rerun")
    # A copy: until the merge replaces it, output.xml (and its log and report) stay the last run's.
    shutil.copy2(output, outputdir / PREVIOUS_OUTPUT)
    (outputdir / RERUN_OUTPUT).unlink(missing_ok=True)
    return RerunPlan(outputdir, suites)


def start_rerun(outputdir: Path) -> RerunPlan | None:
    """:func:`plan_rerun`, saying on stderr what is rerun; ``None`` when nothing failed."""
    try:
        plan = plan_rerun(outputdir)
    except NothingToRerun as nothing:
        sys.stderr.write(f"tribes-qa run: {nothing}\n")
        return None
    sys.stderr.write(
        f"tribes-qa run: rerunning {len(plan.suites)} failed suite(s) of {plan.previous}: "
        f"{', '.join(plan.suites)}\n"
    )
    return plan


def merge_rerun(rerun: RerunPlan, run_id: str, returncode: int) -> int:
    """``rebot --merge`` the previous and the rerun output; the rerun's code unless that fails."""
    if not rerun.rerun_output.is_file():
        sys.stderr.write(
            f"tribes-qa run: the rerun wrote no {rerun.rerun_output}: output.xml is still "
            "the previous run's\n"
        )
        return returncode or 252
    merge = rerun.merge_command()
    sys.stderr.write(f"tribes-qa run {run_id}: {' '.join(merge)}\n")
    merged = subprocess.run(merge, check=False)
    # rebot's code is the merged result's failure count; 252 and up mean it could not merge.
    return merged.returncode if merged.returncode >= 252 else returncode
