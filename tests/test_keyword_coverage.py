"""Every documented keyword is exercised: each appears in a suite, a resource, or a keyword test."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from robot.libdocpkg import LibraryDocumentation

REPO = Path(__file__).resolve().parents[1]


def _normalize(name: str) -> str:
    return re.sub(r"[\s_]", "", name).lower()


def _corpus() -> str:
    texts = []
    for pattern in (
        "suites/*.robot",
        "resources/*.resource",
        "tests/keywords/*.py",
        "tests/parallel/*.py",
    ):
        texts.extend(path.read_text(encoding="utf-8") for path in REPO.glob(pattern))
    return _normalize("\n".join(texts))


def test_every_library_keyword_is_documented_and_used() -> None:
    library = LibraryDocumentation("tribesqa.library.TribesLibrary")
    corpus = _corpus()
    undocumented = [kw.name for kw in library.keywords if not kw.doc.strip()]
    unused = [kw.name for kw in library.keywords if _normalize(kw.name) not in corpus]
    assert len(library.keywords) > 40
    assert not undocumented, f"keywords without documentation: {undocumented}"
    assert not unused, f"keywords no suite, resource or keyword test uses: {unused}"


def test_two_components_defining_one_keyword_are_refused_at_import() -> None:
    from robot.api.deco import keyword

    from tribesqa.library import TribesLibrary, refuse_duplicate_keywords

    class First:
        @keyword
        def node_should_be_ready(self) -> None: ...

    class Second:
        @keyword("Node Should Be Ready")
        def ready(self) -> None: ...

    with pytest.raises(ValueError, match=r"First.node_should_be_ready and Second.ready"):
        refuse_duplicate_keywords([First(), Second()])
    refuse_duplicate_keywords(TribesLibrary().components)  # the shipped library has no clash
