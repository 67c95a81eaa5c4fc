"""docs/faults.md documents every catalogue fault with its suites and how to switch it on."""

from __future__ import annotations

from pathlib import Path

import pytest

from tribes_sim.fault_catalogue import CATALOGUE

FAULTS_MD = Path(__file__).resolve().parents[2] / "docs" / "faults.md"
SUITES = Path(__file__).resolve().parents[2] / "suites"


def catalogue_rows() -> dict[str, list[str]]:
    """The first table's rows, by fault name: [fault, breaks, suites, property, switch on]."""
    rows: dict[str, list[str]] = {}
    for line in FAULTS_MD.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`"):
            rows.setdefault(cells[0].strip("`"), cells)
    return rows


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_faults_md_documents_the_fault(name: str) -> None:
    fault = CATALOGUE[name]
    row = catalogue_rows().get(name)
    assert row is not None, f"docs/faults.md has no catalogue row for {name}"
    _, breaks, suites, violated, switch = row
    for suite in fault.caught_by:
        assert f"`{suite}`" in suites, (name, suite, suites)
        assert (SUITES / f"{suite}.robot").exists(), f"{name} names a suite that does not exist"
    assert violated == fault.property, (name, violated)
    assert breaks.replace("`", "") == fault.breaks, (name, breaks)
    assert f"TRIBES_SIM_FAULTS={name}" in switch and f"--faults {name}" in switch, switch


def test_faults_md_lists_nothing_outside_the_catalogue() -> None:
    assert sorted(catalogue_rows()) == sorted(CATALOGUE)
