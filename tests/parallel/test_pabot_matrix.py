"""`tribes-qa run --parallel 2` on the two fastest suites, run once for the module by the
installed command with a PATH that does not hold the venv: one merged report, every suite in its
own simulated fleet, and the fleet matrix view built from the merged output.xml."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.parallel.conftest import FAST_SUITES, Env, load, make_env, messages, wait_until_gone
from tribesqa.reporting.fleet_matrix import NO_NODE, read_fleet_matrix

pytestmark = pytest.mark.slow


@dataclass
class ParallelRun:
    env: Env
    outputdir: Path
    done: subprocess.CompletedProcess[str]
    leftovers: list[tuple[int, str]]


@pytest.fixture(scope="module")
def parallel_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ParallelRun]:
    env = make_env(tmp_path_factory.mktemp("parallel"))
    outputdir = env.tmp / "results"
    done = env.tribes_qa(
        "run", "--parallel", "2", "--target", str(env.target), "--outputdir", str(outputdir),
        *FAST_SUITES,
    )  # fmt: skip
    yield ParallelRun(env, outputdir, done, wait_until_gone(env.marker))
    shutil.rmtree(env.fleets_dir, ignore_errors=True)


def test_one_merged_report_from_two_processes(parallel_run: ParallelRun) -> None:
    done, out = parallel_run.done, parallel_run.outputdir
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for name in ("output.xml", "log.html", "report.html", "fleet-matrix.html", "requirements.html"):
        assert (out / name).is_file(), name
    result = load(out / "output.xml")
    suites = sorted(suite.name for suite in result.suite.suites)
    assert suites == ["Single Node Plugin Rollout Rollback", "Trust Expansion Replay"]
    assert result.statistics.total.passed == 11 and result.statistics.total.failed == 0
    processes = [p for p in (out / "pabot_results").iterdir() if p.is_dir()]
    assert len(processes) == 2, processes  # one robot process per suite


def test_each_suite_ran_in_its_own_fleet_and_nothing_is_left(parallel_run: ParallelRun) -> None:
    result = load(parallel_run.outputdir / "output.xml")
    targets = messages(result, "Open Target")
    fleet_dirs = {m for t in targets for m in re.findall(r"'fleet_dir': '([^']+)'", t)}
    assert len(fleet_dirs) == 2, targets
    assert all(Path(d).parent == parallel_run.env.fleets_dir for d in fleet_dirs)
    assert parallel_run.leftovers == []
    assert parallel_run.env.fleet_dirs() == [], "fleet directories left behind"


def test_fleet_matrix_from_the_real_output(parallel_run: ParallelRun) -> None:
    out = parallel_run.outputdir
    result = load(out / "output.xml")
    matrix = read_fleet_matrix(out / "output.xml")
    assert matrix.scenarios == ["single_node_plugin_rollout_rollback", "trust_expansion_replay"]
    assert matrix.nodes[:3] == ["hetzner-1", "hetzner-2", "ovh-1"]
    assert matrix.status("hetzner-1", "single_node_plugin_rollout_rollback") == "PASS"
    assert matrix.status("ovh-1", "single_node_plugin_rollout_rollback") is None
    # Destroying the node is a Legion-only step: it still lands on the node it acts on.
    destroy = next(t for t in result.suite.all_tests if t.name.startswith("Destroying The Node"))
    assert "node:hetzner-1" in destroy.tags, destroy.tags
    assert NO_NODE not in matrix.nodes
    page = (out / "fleet-matrix.html").read_text()
    linked = set(re.findall(r'href="log\.html#([^"]+)"', page))
    assert linked == {test.id for test in result.suite.all_tests}
    for test in result.suite.all_tests:
        assert html.escape(test.name) in page


def test_requirements_page_from_the_merged_output(parallel_run: ParallelRun) -> None:
    from tests.parallel.conftest import REPO
    from tribesqa.running.requirements import load_catalogue

    done, out = parallel_run.done, parallel_run.outputdir
    page = out / "requirements.html"
    assert f"Requirements: {page.resolve()}" in done.stderr
    text = page.read_text()
    assert f"Results of <code>{html.escape(str(out / 'output.xml'))}</code>" in text
    known = {r.id for r in load_catalogue(REPO / "docs" / "requirements.yaml")[0]}
    result = load(out / "output.xml")
    tagged = {
        test.id
        for test in result.suite.all_tests
        if {str(tag)[4:] for tag in test.tags if str(tag).startswith("req:")} & known
    }
    # Every run test that carries a catalogue id links to its entry in the merged log.html.
    assert set(re.findall(r'href="log\.html#([^"]+)"', text)) == tagged


def test_matrix_command_rebuilds_the_page(parallel_run: ParallelRun, tmp_path: Path) -> None:
    env = parallel_run.env
    page = tmp_path / "view" / "matrix.html"
    done = env.tribes_qa(
        "matrix", str(parallel_run.outputdir / "output.xml"), "--output", str(page), timeout_s=60
    )
    assert done.returncode == 0, done.stderr
    text = page.read_text()
    # The page is elsewhere: its links still reach the run's log.html.
    log = os.path.relpath(parallel_run.outputdir / "log.html", page.parent)
    assert f'href="{log}#s1-s1-t1"' in text
    assert (page.parent / log).is_file()


def test_matrix_marks_a_failure(tmp_path: Path, parallel_run: ParallelRun) -> None:
    from robot.api import ExecutionResult

    result = ExecutionResult(str(parallel_run.outputdir / "output.xml"))
    victim = next(t for t in result.suite.all_tests if "node:ovh-1" in t.tags)
    victim.status, victim.message = "FAIL", "node ovh-1 still syncing"
    broken = tmp_path / "output.xml"
    result.save(str(broken))
    matrix = read_fleet_matrix(broken)
    assert matrix.status("ovh-1", "trust_expansion_replay") == "FAIL"
    assert matrix.status("hetzner-1", "single_node_plugin_rollout_rollback") == "PASS"
