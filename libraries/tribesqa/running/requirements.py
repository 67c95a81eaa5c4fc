"""``tribes-qa requirements``: the requirement catalogue traced to tests and simulator faults.

Three inputs, read without running anything:

* the catalogue ``docs/requirements.yaml`` (``requirements:`` a list of ``id``, ``source``,
  ``clause``, ``faults: [..]`` or ``no_fault: "why"``), parsed into :class:`Requirement` models;
* the tests' requirement ids (``req:<ID>`` Robot tags, ``@pytest.mark.req("ID")`` pytest marks;
  collected by :mod:`tribesqa.running.test_traces`);
* the simulator's fault catalogue (``tribes_sim.fault_catalogue.CATALOGUE``: each fault's
  ``caught_by`` suites).

:func:`check_traceability` is pure: it judges those inputs and lists every problem, each one
line naming the requirement, test or fault concerned. :func:`build_report` reads the inputs and
judges them; the command line and the run's ``requirements.html`` page both use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

ID_PATTERN = re.compile(r"^[A-Z]+-\d+$")
FAULT_CATALOGUE_FILE = "simulator/tribes_sim/fault_catalogue.py"


class CatalogueMissingError(Exception):
    """The catalogue file is missing or unreadable (exit code 3)."""


class Requirement(BaseModel):
    """One checkable clause of a seed or of the contract."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    source: str
    clause: str
    faults: tuple[str, ...] = ()
    no_fault: str | None = None
    # Why no test of this product can observe the clause (a build machine's Guix channels, a
    # deployment's choice of commit): the clause stays in the catalogue, visibly unproven.
    untestable: str | None = None

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not ID_PATTERN.match(value):
            raise ValueError(f"must look like AREA-N (capitals, a dash, a number), got {value!r}")
        return value

    @field_validator("source", "clause", "no_fault", "untestable")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("faults")
    @classmethod
    def _fault_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        blank = [index for index, name in enumerate(value) if not name.strip()]
        if blank:
            raise ValueError(f"fault name at position {blank[0]} is empty")
        if len(set(value)) != len(value):
            raise ValueError(f"names a fault twice: {', '.join(value)}")
        return value

    @model_validator(mode="after")
    def _faults_or_reason(self) -> Requirement:
        if self.faults and self.no_fault is not None:
            raise ValueError(
                "has both faults and no_fault: give the faults, or the reason none can"
            )
        if not self.faults and self.no_fault is None:
            raise ValueError(
                "has neither faults nor no_fault: name the faults that violate it, or say why "
                "no simulator fault can"
            )
        if self.untestable is not None and self.faults:
            raise ValueError(
                "is untestable but names faults: a fault proves a test can fail, so there is a test"
            )
        return self


@dataclass(frozen=True)
class TracedTest:
    """A test and the requirement ids it carries."""

    label: str  # "suites/x.robot :: Test Name" or "tests/test_x.py::test_name"
    kind: str  # "robot" | "pytest"
    ids: tuple[str, ...]
    suite: str = ""  # the Robot suite file's stem (what a fault's caught_by names)
    name: str = ""
    source: str = ""  # the file, as shown


class FaultInfo(Protocol):
    @property
    def caught_by(self) -> tuple[str, ...]: ...


@dataclass
class Report:
    """The catalogue traced: each requirement's tests, and every problem found."""

    catalogue: str
    requirements: list[Requirement]
    tests: dict[str, list[TracedTest]]  # requirement id -> its tests
    problems: list[str] = field(default_factory=list)
    fault_names: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def _entry_label(index: int, entry: object) -> str:
    ident = entry.get("id") if isinstance(entry, dict) else None
    return f"requirements[{index}]" + (f" ({ident})" if ident else "")


def _validation_lines(where: str, error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors():
        field_path = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in item["loc"]
        ).lstrip(".")
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field (known: id, source, clause, faults, no_fault, untestable)"
        elif item["type"] == "missing":
            message = "missing"
        elif item["type"] == "tuple_type":
            message = f"must be a list of fault names, got {item['input']!r}"
        elif item["type"] == "string_type":
            message = f"must be text, got {item['input']!r}"
        lines.append(f"{where}: {field_path}: {message}" if field_path else f"{where}: {message}")
    return lines


def parse_catalogue(data: Any, path: str) -> tuple[list[Requirement], list[str]]:
    """The requirements of a loaded catalogue document, and its problems (file, entry, field)."""
    if not isinstance(data, dict) or "requirements" not in data:
        return [], [f"{path}: the top level must be a mapping with a `requirements:` list"]
    extra = sorted(str(key) for key in data if key != "requirements")
    problems = [f"{path}: unknown top-level key(s) {', '.join(extra)}"] if extra else []
    entries = data["requirements"] or []
    if not isinstance(entries, list):
        return [], [*problems, f"{path}: requirements: must be a list of entries"]
    requirements: list[Requirement] = []
    first_index: dict[str, int] = {}
    for index, entry in enumerate(entries):
        where = f"{path}: {_entry_label(index, entry)}"
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be a mapping (id, source, clause, faults | no_fault)")
            continue
        try:
            requirement = Requirement.model_validate(entry)
        except ValidationError as error:
            problems.extend(_validation_lines(where, error))
            continue
        if requirement.id in first_index:
            problems.append(
                f"{where}: duplicate id {requirement.id} (first at "
                f"requirements[{first_index[requirement.id]}])"
            )
            continue
        first_index[requirement.id] = index
        requirements.append(requirement)
    return requirements, problems


def load_catalogue(path: Path) -> tuple[list[Requirement], list[str]]:
    """Read and validate the catalogue file; raises CatalogueMissingError when it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogueMissingError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise CatalogueMissingError(f"{path}: unreadable: {error}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(error, "problem", None) or str(error)
        return [], [f"{where}: not valid YAML: {problem}"]
    return parse_catalogue(data, str(path))


def _mark_hint(test: TracedTest, ident: str) -> str:
    return f'@pytest.mark.req("{ident}")' if test.kind == "pytest" else f"req:{ident}"


def check_traceability(
    requirements: Sequence[Requirement],
    tests: Iterable[TracedTest],
    faults: Mapping[str, FaultInfo],
    *,
    catalogue: str = "docs/requirements.yaml",
    suites: Iterable[str] = (),
) -> tuple[dict[str, list[TracedTest]], list[str]]:
    """Each requirement's tests, and the problems: one line each, in a stable order.

    ``suites`` are the Robot suite stems that exist (to tell an empty caught_by suite from a
    missing one); ``faults`` maps a fault name to its catalogue entry (``caught_by`` suites).
    """
    known = {requirement.id: requirement for requirement in requirements}
    by_id: dict[str, list[TracedTest]] = {ident: [] for ident in known}
    problems: list[str] = []
    all_tests = list(tests)
    for test in all_tests:
        for ident in test.ids:
            if ident in by_id:
                by_id[ident].append(test)
            else:
                problems.append(
                    f"{test.label}: {_mark_hint(test, ident)} names no requirement in {catalogue}"
                )
    for requirement in requirements:
        if by_id[requirement.id] and requirement.untestable is not None:
            problems.append(
                f"{requirement.id}: says untestable but "
                f"{', '.join(test.label for test in by_id[requirement.id])} carries it"
            )
        if not by_id[requirement.id] and requirement.untestable is None:
            problems.append(
                f"{requirement.id}: no test carries it (Robot [Tags] req:{requirement.id}, "
                f'or @pytest.mark.req("{requirement.id}"))'
            )
        problems.extend(
            f"{requirement.id}: fault {name!r} is not in the simulator's fault catalogue "
            f"({FAULT_CATALOGUE_FILE})"
            for name in requirement.faults
            if name not in faults
        )
    problems.extend(_fault_problems(requirements, all_tests, faults, set(suites)))
    return by_id, problems


def _fault_problems(
    requirements: Sequence[Requirement],
    tests: list[TracedTest],
    faults: Mapping[str, FaultInfo],
    suites: set[str],
) -> list[str]:
    problems = []
    for name, fault in faults.items():
        naming = sorted(r.id for r in requirements if name in r.faults)
        if not naming:
            problems.append(
                f"fault {name}: no requirement names it (a fault that violates no requirement "
                "is untraced)"
            )
            continue
        present = [suite for suite in fault.caught_by if not suites or suite in suites]
        problems.extend(
            f"fault {name}: caught_by suite {suite} has no suite file"
            for suite in fault.caught_by
            if suite not in present
        )

        def tagged(suite: str, idents: set[str]) -> bool:
            return any(
                t.kind == "robot" and t.suite == suite and set(t.ids) & idents for t in tests
            )

        problems.extend(
            f"fault {name}: caught_by suite {suite} has no test tagged with a requirement that "
            f"names the fault ({', '.join(f'req:{i}' for i in naming)}): its teeth run proves "
            "nothing about them"
            for suite in present
            if not tagged(suite, set(naming))
        )
        # Per (requirement, fault): every requirement naming the fault needs its own tagged test
        # in a suite that catches it, else no teeth run can turn that requirement's test red.
        problems.extend(
            f"fault {name}: {ident} names it, but no caught_by suite "
            f"({', '.join(fault.caught_by)}) has a test tagged req:{ident}: no teeth run proves "
            f"{ident}"
            for ident in naming
            if present and not any(tagged(suite, {ident}) for suite in present)
        )
    return problems


def simulator_faults() -> dict[str, FaultInfo]:
    """The simulator's fault catalogue (data only; imported when a report is built)."""
    from tribes_sim.fault_catalogue import CATALOGUE

    return dict(CATALOGUE)


def build_report(
    catalogue: Path,
    suites_dir: Path,
    tests_dir: Path,
    faults: Mapping[str, FaultInfo] | None = None,
) -> Report:
    """Read the catalogue, the suites' tags and the tests' marks, and judge them.

    A catalogue with invalid entries is not traced: its problems are the report's.
    Raises CatalogueMissingError when the catalogue cannot be read.
    """
    from tribesqa.running.test_traces import pytest_traces, robot_traces

    requirements, problems = load_catalogue(catalogue)
    if not requirements and not problems:
        problems = [f"{catalogue}: no requirement in the catalogue"]
    if problems:
        return Report(str(catalogue), requirements, {}, problems)
    if faults is None:
        faults = simulator_faults()
    robot, robot_problems = robot_traces(suites_dir)
    pytest, pytest_problems = pytest_traces(tests_dir)
    suites = {Path(path).stem for path in sorted(suites_dir.rglob("*.robot"))}
    by_id, trace_problems = check_traceability(
        requirements, [*robot, *pytest], faults, catalogue=str(catalogue), suites=suites
    )
    return Report(
        str(catalogue),
        requirements,
        by_id,
        [*robot_problems, *pytest_problems, *trace_problems],
        tuple(faults),
    )


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


def format_table(report: Report, clause_width: int = 48) -> str:
    """requirement -> tests -> faults (or the reason none), one line per test."""
    header = ("REQUIREMENT", "CLAUSE", "TESTS", "FAULTS / NO FAULT BECAUSE")
    rows: list[tuple[str, str, str, str]] = []
    for requirement in report.requirements:
        tests = [test.label for test in report.tests.get(requirement.id, [])] or [
            f"untestable: {_cut(requirement.untestable, 60)}"
            if requirement.untestable
            else "(none)"
        ]
        faults = (
            ", ".join(requirement.faults)
            if requirement.faults
            else f"no fault: {_cut(requirement.no_fault or '', 60)}"
        )
        rows.append((requirement.id, _cut(requirement.clause, clause_width), tests[0], faults))
        rows.extend(("", "", label, "") for label in tests[1:])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(widths[i]) if i < 3 else cell for i, cell in enumerate(row)).rstrip()
        for row in [header, *rows]
    ]
    traced = sum(1 for requirement in report.requirements if report.tests.get(requirement.id))
    untestable = sum(1 for requirement in report.requirements if requirement.untestable)
    faulted = sum(1 for requirement in report.requirements if requirement.faults)
    lines.append(
        f"{len(report.requirements)} requirement(s), {traced} with tests, {untestable} "
        f"untestable, {faulted} with faults; {len(report.problems)} problem(s)"
    )
    return "\n".join(lines)
