"""``tribes-qa requirements``: the catalogue's rules, the traces from Robot tags and pytest marks,
the fault checks, the page with a run's results, and the exit codes. No simulator: fixture
catalogues, suites, test files and fault tables in tmp_path; the run is a tiny robot suite run
in-process."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import robot
from typer.testing import CliRunner

from tribesqa.reporting.requirements_page import read_results, write_requirements_page
from tribesqa.running import requirements as req_module
from tribesqa.running.cli import app
from tribesqa.running.requirements import (
    CatalogueMissingError,
    Report,
    Requirement,
    TracedTest,
    build_report,
    check_traceability,
    format_table,
    load_catalogue,
    parse_catalogue,
)
from tribesqa.running.run_pages import write_requirements, write_run_pages
from tribesqa.running.test_traces import pytest_file_traces, robot_traces


@dataclass(frozen=True)
class Fault:
    caught_by: tuple[str, ...]


FAULTS = {"replay-accepted": Fault(("gate",)), "stuck-syncing": Fault(("gate",))}

GOOD_CATALOGUE = """\
requirements:
  - id: GATE-1
    source: seed 004 §2
    clause: Every node reports every member active.
    faults: [stuck-syncing]
  - id: AUTH-1
    source: contract §1
    clause: A replayed signed request is refused.
    faults: [replay-accepted]
  - id: CLI-1
    source: seed 003
    clause: A missing file exits 3.
    no_fault: the simulator has no CLI
"""

GATE_SUITE = """\
*** Settings ***
Test Tags    req:GATE-1

*** Test Cases ***
Every Node Reports Every Member Active
    [Tags]    req:AUTH-1
    No Operation

A Replayed Request Is Refused
    No Operation
"""

CLI_TESTS = """\
import pytest


@pytest.mark.req("CLI-1")
def test_missing_file_exits_3():
    pass
"""


def entry(**fields: Any) -> dict[str, Any]:
    base = {"id": "GATE-1", "source": "seed 004", "clause": "c", "faults": ["stuck-syncing"]}
    base.update(fields)
    return {key: value for key, value in base.items() if value is not None}


def problems_of(*entries: dict[str, Any]) -> list[str]:
    return parse_catalogue({"requirements": list(entries)}, "req.yaml")[1]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean project: catalogue, one suite, one pytest file; cwd is its root."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "requirements.yaml").write_text(GOOD_CATALOGUE)
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "gate.robot").write_text(GATE_SUITE)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_cli.py").write_text(CLI_TESTS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(req_module, "simulator_faults", lambda: dict(FAULTS))
    return tmp_path


# -- the catalogue ---------------------------------------------------------------------------------
def test_a_valid_catalogue_parses_into_models() -> None:
    requirements, problems = parse_catalogue({"requirements": [entry()]}, "req.yaml")
    assert problems == []
    assert requirements == [
        Requirement(id="GATE-1", source="seed 004", clause="c", faults=("stuck-syncing",))
    ]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            entry(id="gate-1"),
            "req.yaml: requirements[0] (gate-1): id: must look like AREA-N (capitals, a dash, "
            "a number), got 'gate-1'",
        ),
        (entry(clause=None), "req.yaml: requirements[0] (GATE-1): clause: missing"),
        (entry(source="  "), "req.yaml: requirements[0] (GATE-1): source: must not be empty"),
        (
            entry(no_fault="why"),
            "req.yaml: requirements[0] (GATE-1): has both faults and no_fault: give the faults, "
            "or the reason none can",
        ),
        (
            entry(faults=[]),
            "req.yaml: requirements[0] (GATE-1): has neither faults nor no_fault: name the "
            "faults that violate it, or say why no simulator fault can",
        ),
        (
            entry(tests=["x"]),
            "req.yaml: requirements[0] (GATE-1): tests: unknown field (known: id, source, "
            "clause, faults, no_fault, untestable)",
        ),
        (
            entry(faults=["a", "a"]),
            "req.yaml: requirements[0] (GATE-1): faults: names a fault twice: a, a",
        ),
        (
            entry(faults="stuck-syncing"),
            "req.yaml: requirements[0] (GATE-1): faults: must be a list of fault names, got "
            "'stuck-syncing'",
        ),
        (entry(faults=[3]), "req.yaml: requirements[0] (GATE-1): faults[0]: must be text, got 3"),
        (
            "GATE-1",
            "req.yaml: requirements[0]: must be a mapping (id, source, clause, faults | no_fault)",
        ),
    ],
)
def test_a_bad_entry_is_named_by_file_index_id_and_field(bad: Any, message: str) -> None:
    assert problems_of(bad) == [message]


def test_a_duplicate_id_names_both_entries() -> None:
    assert problems_of(entry(), entry(clause="other")) == [
        "req.yaml: requirements[1] (GATE-1): duplicate id GATE-1 (first at requirements[0])"
    ]


def test_a_catalogue_without_a_requirements_list_is_refused() -> None:
    assert parse_catalogue({"reqs": []}, "req.yaml")[1] == [
        "req.yaml: the top level must be a mapping with a `requirements:` list"
    ]


def test_yaml_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "req.yaml"
    path.write_text("requirements:\n  - id: [GATE-1\n")
    requirements, problems = load_catalogue(path)
    assert requirements == []
    assert len(problems) == 1
    assert re.match(rf"{re.escape(str(path))}:3:1: not valid YAML: ", problems[0]), problems


def test_a_missing_catalogue_raises(tmp_path: Path) -> None:
    with pytest.raises(CatalogueMissingError, match="no such file"):
        load_catalogue(tmp_path / "nope.yaml")


# -- traces ------------------------------------------------------------------------------------------
def test_robot_tags_include_the_suites_test_tags(project: Path) -> None:
    traces, problems = robot_traces(Path("suites"))
    assert problems == []
    assert [(t.label, t.ids, t.suite) for t in traces] == [
        (
            "suites/gate.robot :: Every Node Reports Every Member Active",
            ("AUTH-1", "GATE-1"),
            "gate",
        ),
        ("suites/gate.robot :: A Replayed Request Is Refused", ("GATE-1",), "gate"),
    ]


def test_pytest_marks_on_functions_classes_modules_and_params(tmp_path: Path) -> None:
    path = tmp_path / "test_marks.py"
    path.write_text(
        "import pytest\nfrom pytest import mark\n\n"
        'pytestmark = pytest.mark.req("CLI-1")\n\n'
        '@pytest.mark.req("CLI-2", "CLI-3")\ndef test_function():\n    pass\n\n'
        "def test_module_mark_only():\n    pass\n\n"
        '@mark.req("CLI-4")\nclass TestGroup:\n'
        '    pytestmark = [pytest.mark.req("CLI-5")]\n\n'
        "    def test_method(self):\n        pass\n\n"
        '@pytest.mark.parametrize("x", [pytest.param(1, marks=pytest.mark.req("CLI-6")), 2])\n'
        "def test_parametrized(x):\n    pass\n\n"
        '@pytest.mark.req("CLI-7")\ndef helper():\n    pass\n'
    )
    traces, problems = pytest_file_traces(path)
    assert problems == []
    shown = str(path)
    assert [(t.label, t.ids) for t in traces] == [
        (f"{shown}::test_function", ("CLI-1", "CLI-2", "CLI-3")),
        (f"{shown}::test_module_mark_only", ("CLI-1",)),
        (f"{shown}::TestGroup::test_method", ("CLI-1", "CLI-4", "CLI-5")),
        (f"{shown}::test_parametrized", ("CLI-1", "CLI-6")),
    ]


def test_a_pytest_mark_with_a_computed_id_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "test_bad.py"
    path.write_text(
        'import pytest\nIDS = "CLI-1"\n\n@pytest.mark.req(IDS)\ndef test_x():\n    pass\n'
    )
    traces, problems = pytest_file_traces(path)
    assert traces == []
    assert problems == [
        f"{path}::test_x: pytest.mark.req takes requirement ids as string literals (line 4: IDS)"
    ]


# -- the traceability rules ------------------------------------------------------------------------
def req(ident: str, *faults: str) -> Requirement:
    if faults:
        return Requirement(id=ident, source="s", clause="c", faults=faults)
    return Requirement(id=ident, source="s", clause="c", no_fault="no simulator side")


def robot_test(name: str, suite: str, *ids: str) -> TracedTest:
    return TracedTest(f"suites/{suite}.robot :: {name}", "robot", ids, suite, name)


def test_a_traced_catalogue_has_no_problem() -> None:
    tests = [robot_test("T", "gate", "GATE-1", "AUTH-1")]
    by_id, problems = check_traceability(
        [req("GATE-1", "stuck-syncing"), req("AUTH-1", "replay-accepted")], tests, FAULTS
    )
    assert problems == []
    assert by_id == {"GATE-1": tests, "AUTH-1": tests}


def test_each_traceability_rule_names_what_is_wrong() -> None:
    tests = [
        robot_test("Gate", "gate", "GATE-1"),
        robot_test("Other Suite", "other", "AUTH-1"),
        TracedTest("tests/test_x.py::test_y", "pytest", ("CLI-9",)),
    ]
    faults = {**FAULTS, "orphan": Fault(("gate",)), "elsewhere": Fault(("missing_suite",))}
    _, problems = check_traceability(
        [
            req("GATE-1", "stuck-syncing", "no-such-fault"),
            req("AUTH-1", "replay-accepted"),
            req("LEG-1", "elsewhere"),
            req("CLI-1"),
        ],
        tests,
        faults,
        suites={"gate", "other"},
    )
    assert problems == [
        'tests/test_x.py::test_y: @pytest.mark.req("CLI-9") names no requirement in '
        "docs/requirements.yaml",
        "GATE-1: fault 'no-such-fault' is not in the simulator's fault catalogue "
        "(simulator/tribes_sim/fault_catalogue.py)",
        'LEG-1: no test carries it (Robot [Tags] req:LEG-1, or @pytest.mark.req("LEG-1"))',
        'CLI-1: no test carries it (Robot [Tags] req:CLI-1, or @pytest.mark.req("CLI-1"))',
        "fault replay-accepted: caught_by suite gate has no test tagged with a requirement that "
        "names the fault (req:AUTH-1): its teeth run proves nothing about them",
        "fault replay-accepted: AUTH-1 names it, but no caught_by suite (gate) has a test tagged "
        "req:AUTH-1: no teeth run proves AUTH-1",
        "fault orphan: no requirement names it (a fault that violates no requirement is untraced)",
        "fault elsewhere: caught_by suite missing_suite has no suite file",
    ]


def test_every_requirement_naming_a_fault_needs_its_own_test_where_the_fault_is_caught() -> None:
    # GATE-1 and AUTH-1 both name replay-accepted (caught by gate and other): a gate test
    # tagged GATE-1 covers the suite, but only a test tagged AUTH-1 in gate or other can turn
    # AUTH-1 red. LEG-1's tag in a suite that does not catch the fault proves nothing either.
    faults = {"replay-accepted": Fault(("gate", "other"))}
    requirements = [
        req("GATE-1", "replay-accepted"),
        req("AUTH-1", "replay-accepted"),
        req("LEG-1", "replay-accepted"),
    ]
    tests = [
        robot_test("Gate", "gate", "GATE-1"),
        robot_test("Other", "other", "AUTH-1"),
        robot_test("Elsewhere", "third", "LEG-1"),
    ]
    _, problems = check_traceability(requirements, tests, faults, suites={"gate", "other", "third"})
    assert problems == [
        "fault replay-accepted: LEG-1 names it, but no caught_by suite (gate, other) has a test "
        "tagged req:LEG-1: no teeth run proves LEG-1"
    ]
    _, problems = check_traceability(requirements[:2], tests[:2], faults, suites={"gate", "other"})
    assert problems == []


def test_a_robot_tag_naming_an_unknown_id_is_a_problem() -> None:
    _, problems = check_traceability(
        [req("CLI-1")], [robot_test("T", "gate", "CLI-1", "CLI-2")], {}
    )
    assert problems == [
        "suites/gate.robot :: T: req:CLI-2 names no requirement in docs/requirements.yaml"
    ]


def test_the_table_lists_requirement_tests_and_faults(project: Path) -> None:
    report = build_report(Path("docs/requirements.yaml"), Path("suites"), Path("tests"), FAULTS)
    assert report.problems == []
    lines = format_table(report).splitlines()
    assert lines[0].split() == [
        "REQUIREMENT",
        "CLAUSE",
        "TESTS",
        "FAULTS",
        "/",
        "NO",
        "FAULT",
        "BECAUSE",
    ]
    assert lines[1].startswith("GATE-1")
    assert "suites/gate.robot :: Every Node Reports Every Member Active" in lines[1]
    assert lines[1].endswith("stuck-syncing")
    assert lines[2].strip() == "suites/gate.robot :: A Replayed Request Is Refused"
    assert (
        lines[4].startswith("CLI-1") and "tests/test_cli.py::test_missing_file_exits_3" in lines[4]
    )
    assert lines[4].endswith("no fault: the simulator has no CLI")
    assert lines[-1] == "3 requirement(s), 3 with tests, 0 untestable, 2 with faults; 0 problem(s)"


# -- the page with a run's results -----------------------------------------------------------------
RUN_SUITE = """\
*** Test Cases ***
A Passing Check
    [Tags]    req:GATE-1    req:GATE-2
    No Operation

A Failing Check <b>
    [Tags]    req:GATE-2
    Fail    nodes disagree

A Skipped Check
    [Tags]    req:GATE-1    req:GATE-3
    Skip    not on this target
"""

RUN_CATALOGUE = "requirements:\n" + "".join(
    f"  - {{id: GATE-{n}, source: seed 004, clause: clause {n} & more, no_fault: none}}\n"
    for n in range(1, 5)
)


@pytest.fixture
def run_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RUN/results/output.xml of RUN/suites/checks.robot: one pass, one fail, one skip."""
    root = tmp_path_factory.mktemp("run")
    suite = root / "suites" / "checks.robot"
    suite.parent.mkdir()
    suite.write_text(RUN_SUITE)
    (root / "suites" / "later.robot").write_text(
        "*** Test Cases ***\nNot In This Run\n    [Tags]    req:GATE-4\n    No Operation\n"
    )
    out = root / "results"
    code = robot.run(
        str(suite), outputdir=str(out), report="NONE", stdout=io.StringIO(), stderr=io.StringIO()
    )
    assert code == 1  # the one failing test
    return out / "output.xml"


def test_each_requirement_shows_its_result_in_the_run(
    run_output: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp_path = run_output.parent.parent
    monkeypatch.chdir(tmp_path)
    (tmp_path / "req.yaml").write_text(RUN_CATALOGUE)
    (tmp_path / "tests").mkdir()
    report = build_report(Path("req.yaml"), Path("suites"), Path("tests"), {})
    assert report.problems == []
    page = write_requirements_page(report, tmp_path / "pages" / "requirements.html", run_output)
    text = page.read_text()
    rows = {m[0]: m[1] for m in re.findall(r'<tr id="req-(GATE-\d)">(.*?)</tr>', text, re.S)}
    assert set(rows) == {"GATE-1", "GATE-2", "GATE-3", "GATE-4"}
    status = {ident: re.search(r'<td class="([A-Z-]+)">', row)[1] for ident, row in rows.items()}
    assert status == {"GATE-1": "PASS", "GATE-2": "FAIL", "GATE-3": "NOT-RUN", "GATE-4": "NOT-RUN"}
    assert (
        '<a class="FAIL" href="../results/log.html#s1-t2" title="FAIL: nodes disagree">'
        "suites/checks.robot :: A Failing Check &lt;b&gt;</a> (FAIL)"
    ) in rows["GATE-2"]
    assert 'href="../results/log.html#s1-t1"' in rows["GATE-2"]
    assert 'href="../results/log.html#s1-t3"' in rows["GATE-3"]
    assert "suites/later.robot :: Not In This Run (NOT RUN)" in rows["GATE-4"]
    assert "clause 1 &amp; more" in rows["GATE-1"]
    assert "<script" not in text
    assert "Results of" in text and "1 PASS, 1 FAIL, 2 NOT RUN" in text


def test_results_keep_the_run_ids_and_statuses(run_output: Path) -> None:
    results = read_results(run_output)
    assert [(t.id, t.status, t.ids) for t in results.tests] == [
        ("s1-t1", "PASS", ("GATE-1", "GATE-2")),
        ("s1-t2", "FAIL", ("GATE-2",)),
        ("s1-t3", "SKIP", ("GATE-1", "GATE-3")),
    ]


# -- the command line --------------------------------------------------------------------------------
def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["requirements", *args])


def test_a_traced_catalogue_exits_0_and_prints_the_table(project: Path) -> None:
    done = invoke()
    assert done.exit_code == 0, done.output
    assert (
        "GATE-1" in done.stdout
        and "3 requirement(s), 3 with tests, 0 untestable, 2 with faults; 0 problem(s)"
        in done.stdout
    )


def test_problems_exit_1_and_are_listed(project: Path) -> None:
    (project / "suites" / "gate.robot").write_text(GATE_SUITE.replace("req:AUTH-1", "req:AUTH-2"))
    done = invoke()
    assert done.exit_code == 1
    assert "docs/requirements.yaml: 4 problem(s)" in done.stderr
    assert (
        "  suites/gate.robot :: Every Node Reports Every Member Active: req:AUTH-2 names no "
        "requirement in docs/requirements.yaml"
    ) in done.stderr
    assert "  AUTH-1: no test carries it" in done.stderr


def test_an_invalid_catalogue_exits_1_without_tracing(project: Path) -> None:
    (project / "docs" / "requirements.yaml").write_text(GOOD_CATALOGUE.replace("GATE-1", "G1"))
    done = invoke()
    assert done.exit_code == 1
    assert "docs/requirements.yaml: requirements[0] (G1): id: must look like AREA-N" in done.stderr


def test_usage_errors_exit_2(project: Path) -> None:
    assert invoke("--bogus").exit_code == 2


def test_a_missing_catalogue_exits_3(project: Path) -> None:
    done = invoke("--catalogue", "nope.yaml")
    assert done.exit_code == 3
    assert "tribes-qa requirements: nope.yaml: no such file" in done.stderr


def test_missing_results_exit_3(project: Path) -> None:
    done = invoke("--results", "results/output.xml")
    assert done.exit_code == 3
    assert "results/output.xml: no such file" in done.stderr


def test_the_page_is_written_beside_the_results(project: Path, run_output: Path) -> None:
    done = invoke("--results", str(run_output))
    assert done.exit_code == 0, done.output
    page = run_output.parent / "requirements.html"
    assert f"Requirements page: {page}" in done.stdout
    assert 'id="req-GATE-1"' in page.read_text()


# -- tribes-qa run's page --------------------------------------------------------------------------
def test_the_run_writes_the_page_beside_its_output(
    run_output: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pages = write_run_pages(run_output.parent, started=0.0)
    assert pages["Requirements"] == run_output.parent / "requirements.html"
    assert "<h1>Requirements</h1>" in pages["Requirements"].read_text()
    assert (run_output.parent / "fleet-matrix.html").is_file()


def test_a_page_that_cannot_be_written_does_not_hide_the_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "output.xml").write_text("<robot><suite")
    assert write_requirements(tmp_path, started=0.0) is None
    assert "tribes-qa run: requirements page not written: " in capsys.readouterr().err


def test_results_robot_cannot_read_exit_1(project: Path) -> None:
    (project / "output.xml").write_text("<robot><suite")
    done = invoke("--results", "output.xml")
    assert done.exit_code == 1
    assert done.stderr.startswith("tribes-qa requirements: output.xml: Reading XML source")


def untestable(ident: str) -> Requirement:
    return Requirement(
        id=ident, source="s", clause="c", no_fault="outside", untestable="a build machine's"
    )


def test_an_untestable_requirement_needs_no_test_but_says_why() -> None:
    _, problems = check_traceability([untestable("ROLL-5")], [], {})
    assert problems == []
    report = Report("docs/requirements.yaml", [untestable("ROLL-5")], {"ROLL-5": []}, [])
    table = format_table(report)
    assert "untestable: a build machine's" in table
    assert "1 requirement(s), 0 with tests, 1 untestable, 0 with faults; 0 problem(s)" in table


def test_an_untestable_requirement_that_a_test_carries_is_a_problem() -> None:
    _, problems = check_traceability(
        [untestable("ROLL-5")], [robot_test("T", "gate", "ROLL-5")], {}
    )
    assert problems == ["ROLL-5: says untestable but suites/gate.robot :: T carries it"]


def test_an_untestable_requirement_cannot_name_faults() -> None:
    with pytest.raises(ValueError, match="untestable but names faults"):
        Requirement(id="ROLL-5", source="s", clause="c", faults=("x",), untestable="why")
