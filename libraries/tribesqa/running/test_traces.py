"""Which requirement ids each test carries, read without running a test.

* Robot: ``req:<ID>`` tags, from Robot's model API (``TestSuite.from_file_system``: suite files
  are parsed, nothing runs). A test's tags include its suite's ``Test Tags``, so a suite-level
  ``req:`` tag traces every test of the suite.
* pytest: ``@pytest.mark.req("ID", ...)`` read statically (``ast``) from ``test_*.py`` /
  ``*_test.py`` files: on a test function, on its class (and the class's ``pytestmark``), or the
  module's ``pytestmark``. A mark inside the function's decorators counts wherever it sits, so a
  ``pytest.param(..., marks=pytest.mark.req("ID"))`` of a parametrized test traces the whole
  function: parametrized ids are traced by function. Ids must be string literals; a mark
  reached through a variable (``req = pytest.mark.req("X")`` then ``@req``) is not seen.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

from tribesqa.running.requirements import TracedTest

REQ_TAG = "req:"


def shown_path(path: Path | str) -> str:
    """A path as the user typed it: relative to the working directory when below it."""
    path = Path(path)
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return os.fspath(path)


def robot_traces(suites_dir: Path) -> tuple[list[TracedTest], list[str]]:
    """Every Robot test carrying ``req:`` tags, and problems (unparsable suites, empty ids)."""
    from robot.api import TestSuite
    from robot.errors import DataError

    if not suites_dir.is_dir():
        return [], [f"{shown_path(suites_dir)}: no such suites directory"]
    try:
        suite = TestSuite.from_file_system(str(suites_dir))
    except DataError as error:
        return [], [f"{shown_path(suites_dir)}: Robot cannot read the suites: {error}"]
    traces: list[TracedTest] = []
    problems: list[str] = []
    for test in suite.all_tests:
        source = shown_path(test.source) if test.source else shown_path(suites_dir)
        label = f"{source} :: {test.name}"
        ids: list[str] = []
        for tag in test.tags:
            text = str(tag)
            if text.lower().startswith(REQ_TAG):
                ident = text[len(REQ_TAG) :].strip()
                if ident:
                    ids.append(ident)
                else:
                    problems.append(f"{label}: tag {text!r} names no requirement id")
        if ids:
            stem = Path(test.source).stem if test.source else ""
            traces.append(TracedTest(label, "robot", tuple(ids), stem, test.name, source))
    return traces, problems


def _is_req_mark(func: ast.expr) -> bool:
    """``pytest.mark.req`` / ``mark.req`` (``from pytest import mark``)."""
    if not (isinstance(func, ast.Attribute) and func.attr == "req"):
        return False
    owner = func.value
    return (isinstance(owner, ast.Attribute) and owner.attr == "mark") or (
        isinstance(owner, ast.Name) and owner.id == "mark"
    )


def _req_ids(nodes: list[ast.expr], where: str, problems: list[str]) -> list[str]:
    ids: list[str] = []
    for root in nodes:
        for node in ast.walk(root):
            if not (isinstance(node, ast.Call) and _is_req_mark(node.func)):
                continue
            if not node.args:
                problems.append(f"{where}: pytest.mark.req() names no requirement id")
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value:
                    ids.append(arg.value.strip())
                else:
                    problems.append(
                        f"{where}: pytest.mark.req takes requirement ids as string literals "
                        f"(line {node.lineno}: {ast.unparse(arg)})"
                    )
    return ids


def _names_pytestmark(statement: ast.stmt) -> bool:
    if isinstance(statement, ast.Assign):
        return any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in statement.targets)
    return (
        isinstance(statement, ast.AnnAssign)
        and isinstance(statement.target, ast.Name)
        and statement.target.id == "pytestmark"
    )


def _pytestmark(body: list[ast.stmt]) -> list[ast.expr]:
    """The values assigned to ``pytestmark`` in a module or class body."""
    return [
        statement.value
        for statement in body
        if isinstance(statement, ast.Assign | ast.AnnAssign)
        and statement.value is not None
        and _names_pytestmark(statement)
    ]


def _collect(
    body: list[ast.stmt],
    prefix: str,
    inherited: list[str],
    source: str,
    out: list[TracedTest],
    problems: list[str],
) -> None:
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            label = f"{prefix}::{node.name}"
            ids = [*inherited, *_req_ids(list(node.decorator_list), label, problems)]
            if ids:
                unique = tuple(dict.fromkeys(ids))
                out.append(TracedTest(label, "pytest", unique, "", node.name, source))
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            label = f"{prefix}::{node.name}"
            marks = [*node.decorator_list, *_pytestmark(node.body)]
            ids = [*inherited, *_req_ids(marks, label, problems)]
            _collect(node.body, label, ids, source, out, problems)


def pytest_file_traces(path: Path) -> tuple[list[TracedTest], list[str]]:
    source = shown_path(path)
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, UnicodeDecodeError, SyntaxError) as error:
        return [], [f"{source}: cannot read it for pytest marks: {error}"]
    traces: list[TracedTest] = []
    problems: list[str] = []
    module_ids = _req_ids(_pytestmark(tree.body), f"{source} (pytestmark)", problems)
    _collect(tree.body, source, module_ids, source, traces, problems)
    return traces, problems


def pytest_traces(tests_dir: Path) -> tuple[list[TracedTest], list[str]]:
    """Every pytest test carrying ``pytest.mark.req`` ids (read statically), and problems."""
    if not tests_dir.is_dir():
        return [], [f"{shown_path(tests_dir)}: no such tests directory"]
    traces: list[TracedTest] = []
    problems: list[str] = []
    for path in sorted(tests_dir.rglob("*.py")):
        if not (path.name.startswith("test_") or path.name.endswith("_test.py")):
            continue
        found, trouble = pytest_file_traces(path)
        traces.extend(found)
        problems.extend(trouble)
    return traces, problems
