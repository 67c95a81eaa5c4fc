"""The pages ``tribes-qa run`` writes beside a fresh output.xml: views of the run, never its verdict.

* ``fleet-matrix.html``: nodes x scenarios (:mod:`tribesqa.reporting.fleet_matrix`);
* ``requirements.html``: each requirement's result in the run
  (:mod:`tribesqa.reporting.requirements_page`);
* ``timeline.html``: one picture per test from the suites' ``artifacts/<suite>/history.jsonl``
  (:mod:`tribesqa.reporting.timeline_page`; none when no suite wrote a history).

A page that cannot be written is reported on stderr and skipped; the run's exit code stays
robot's (pabot's).
"""

from __future__ import annotations

import sys
from pathlib import Path

from tribesqa.running.runner import REPO, default_suites_dir


def _repo_or_cwd(relative: str) -> Path:
    here = Path(relative)
    return here if here.exists() else REPO / relative


def _fresh_output(outputdir: Path, started: float) -> Path | None:
    output = outputdir / "output.xml"
    if not output.exists() or output.stat().st_mtime < started - 1:
        return None
    return output


def write_matrix(outputdir: Path, started: float) -> Path | None:
    """``fleet-matrix.html`` next to a fresh output.xml (never fails the run)."""
    from tribesqa.reporting.fleet_matrix import write_fleet_matrix

    output = _fresh_output(outputdir, started)
    if output is None:
        return None
    try:
        return write_fleet_matrix(output, outputdir / "fleet-matrix.html")
    except Exception as error:  # the report is what matters; the matrix is a view of it
        sys.stderr.write(f"tribes-qa run: fleet matrix not written: {error}\n")
        return None


def write_requirements(outputdir: Path, started: float) -> Path | None:
    """``requirements.html`` (each requirement's result in this run) next to a fresh output.xml.

    Never changes the run's verdict: when the page cannot be written, says why on stderr.
    Traceability problems (an untested requirement, an unknown id) are listed on the page.
    """
    from tribesqa.reporting.requirements_page import write_requirements_page
    from tribesqa.running.requirements import build_report

    output = _fresh_output(outputdir, started)
    if output is None:
        return None
    try:
        report = build_report(
            _repo_or_cwd("docs/requirements.yaml"), default_suites_dir(), _repo_or_cwd("tests")
        )
        page = write_requirements_page(report, outputdir / "requirements.html", output)
    except Exception as error:  # the report is what matters; this page is a view of it
        sys.stderr.write(f"tribes-qa run: requirements page not written: {error}\n")
        return None
    if report.problems:
        sys.stderr.write(
            f"tribes-qa run: {len(report.problems)} traceability problem(s), listed in {page} "
            "(and by tribes-qa requirements)\n"
        )
    return page


def write_timeline(outputdir: Path, started: float) -> Path | None:
    """``timeline.html`` from the run's history files (never fails the run)."""
    from tribesqa.reporting.timeline_page import write_timeline_page

    try:
        output = _fresh_output(outputdir, started)
        return write_timeline_page(outputdir, output_xml=output, since=started)
    except Exception as error:  # a view of the run, never its verdict
        sys.stderr.write(f"tribes-qa run: timeline page not written: {error}\n")
        return None


def write_run_pages(outputdir: Path, started: float) -> dict[str, Path]:
    """The pages for the run's output.xml (label -> path of each page written)."""
    pages = {"Fleet matrix": write_matrix(outputdir, started)}
    pages["Requirements"] = write_requirements(outputdir, started)
    pages["Timeline"] = write_timeline(outputdir, started)
    return {label: page for label, page in pages.items() if page is not None}
