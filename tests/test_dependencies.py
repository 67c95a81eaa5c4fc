"""A declared dependency is a used dependency: every distribution pyproject.toml declares is
imported by the code it is declared for (runtime: the library, the simulator, the resources and
suites; dev: the tests too), so `pip show tribes-acceptance` lists nothing that nothing imports."""

from __future__ import annotations

import ast
import functools
import re
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
RUNTIME_CODE = ("libraries", "simulator", "resources", "suites")
MAKEFILE = (ROOT / "Makefile").read_text()
# Dev tools run as programs by the Makefile, not imported: distribution -> program.
PROGRAMS = {"ruff": "ruff", "robotframework-robocop": "robocop"}
# pytest-timeout is a pytest plugin, switched on by `timeout =` in [tool.pytest.ini_options].
# Run as a program by a bench script (not imported): distribution -> the script.
RUN_BY_BENCH = {"mutmut": "bench/mutation_score.py"}
USED_WITHOUT_IMPORT = {"pytest-timeout", *PROGRAMS, *RUN_BY_BENCH}
# Declared for QA's own suites, not ours: README's RequestsLibrary example imports it (checked below).
FOR_QA_SUITES = {"robotframework-requests": "RequestsLibrary"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


@functools.cache
def _imported_modules(folders: tuple[str, ...]) -> set[str]:
    modules: set[str] = set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    modules.add(node.module.split(".")[0])
        for pattern in ("*.robot", "*.resource"):
            for path in (ROOT / folder).rglob(pattern):
                text = path.read_text(encoding="utf-8")
                modules.update(
                    m.split(".")[0] for m in re.findall(r"^Library\s{2,}([\w.]+)", text, re.M)
                )
    return modules


@functools.cache
def _owners() -> dict[str, list[str]]:
    return packages_distributions()


def _distributions_of(modules: set[str]) -> set[str]:
    owners = _owners()
    return {dist.lower().replace("_", "-") for module in modules for dist in owners.get(module, [])}


RUNTIME = [
    name for name in map(_name, PYPROJECT["project"]["dependencies"]) if name not in FOR_QA_SUITES
]


@pytest.mark.parametrize(("distribution", "library"), sorted(FOR_QA_SUITES.items()))
def test_a_dependency_for_qa_suites_is_imported_by_the_readme_example(
    distribution: str, library: str
) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(rf"^Library\s{{2,}}{library}\b", readme, re.M), (
        f"{distribution} is declared for QA's own suites, but README shows no suite importing {library}"
    )


DEV = [
    name
    for name in map(_name, PYPROJECT["project"]["optional-dependencies"]["dev"])
    if name not in USED_WITHOUT_IMPORT
]


@pytest.mark.parametrize("distribution", RUNTIME)
def test_every_runtime_dependency_is_imported_by_the_library_or_simulator(
    distribution: str,
) -> None:
    used = _distributions_of(_imported_modules(RUNTIME_CODE))
    assert distribution in used, (
        f"{distribution} is declared in [project.dependencies] but nothing in "
        f"{', '.join(RUNTIME_CODE)} imports it: remove it or move it to where it is used"
    )


@pytest.mark.parametrize("distribution", DEV)
def test_every_dev_dependency_is_imported_somewhere(distribution: str) -> None:
    used = _distributions_of(_imported_modules((*RUNTIME_CODE, "tests", "bench")))
    assert distribution in used, f"{distribution} is declared in [dev] but nothing imports it"


@pytest.mark.parametrize(("distribution", "program"), PROGRAMS.items())
def test_every_dev_tool_is_run_by_the_makefile(distribution: str, program: str) -> None:
    assert f"$(BIN)/{program} " in MAKEFILE, f"{distribution}: the Makefile never runs {program}"


@pytest.mark.parametrize(("distribution", "script"), RUN_BY_BENCH.items())
def test_every_bench_tool_is_run_by_its_script(distribution: str, script: str) -> None:
    text = (ROOT / script).read_text(encoding="utf-8")
    assert f'"{distribution}"' in text, f"{distribution}: {script} never runs it"


def test_the_pytest_timeout_plugin_is_configured() -> None:
    assert PYPROJECT["tool"]["pytest"]["ini_options"]["timeout"] > 0


def test_ssh_goes_through_paramiko_not_sshlibrary_internals() -> None:
    library = _imported_modules(("libraries",))
    assert "paramiko" in library
    assert "SSHLibrary" not in library  # its client module is not public API
