"""libdoc that helps: every keyword shows an example, renders without leftover markup, and
carries a domain tag (libdoc groups keywords by tag).

The docs are rendered exactly as ``make docs`` renders them (libdoc's Robot-format to HTML
conversion), then read as text: what is left of ``code``, *bold* or a |table| after rendering
is markup that did not render (``x``'s, ``a``/``b`` and a code span broken across lines do not).
"""

from __future__ import annotations

import functools
import html
import re
from pathlib import Path

import pytest
from robot.libdocpkg import LibraryDocumentation

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = "tribesqa.library.TribesLibrary"
DOMAINS = {
    "target",
    "legion",
    "node",
    "plugin",
    "convergence",
    "fault",
    "gate",
    "artifact",
    "scenario",
    "ssh",
    "contract",
    "security",
    "http",
    "history",
}


@functools.cache
def _raw() -> LibraryDocumentation:
    return LibraryDocumentation(LIBRARY)


@functools.cache
def _rendered() -> LibraryDocumentation:
    library = LibraryDocumentation(LIBRARY)
    library.convert_docs_to_html()
    return library


def _keyword_names() -> list[str]:
    return [keyword.name for keyword in _raw().keywords]


def _rendered_doc(name: str) -> str:
    return next(k.doc for k in _rendered().keywords if k.name == name)


def leftover_markup(rendered_html: str) -> list[str]:
    """Markup that survived rendering: `` anywhere (``a``/``b`` renders as one code span with
    the inner backticks in it), and outside code and preformatted blocks an unpaired * or a |
    that did not become a table."""
    problems = []
    if "``" in html.unescape(rendered_html):
        problems.append("raw ``code`` markup")
    text = re.sub(r"<(pre|code)>.*?</\1>", " ", rendered_html, flags=re.S)
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    if "*" in text:
        problems.append("a * that did not render as bold")
    if "|" in text:
        problems.append("a | that did not render as a table")
    return problems


def has_example(raw_doc: str, rendered_html: str) -> bool:
    """An ``Example:`` (or ``Example (...):``) followed by a rendered code line, preformatted block or table."""
    if not re.search(r"^\s*Examples?\b[^:\n]*:", raw_doc, re.M):
        return False
    after = rendered_html.split("Example", 1)[1]
    return bool(re.search(r"<(pre|code|table)\b", after))


@pytest.mark.parametrize("name", _keyword_names())
def test_keyword_doc_renders_without_leftover_markup(name: str) -> None:
    assert leftover_markup(_rendered_doc(name)) == [], f"{name}: broken rendering in libdoc"


def test_library_introduction_renders_without_leftover_markup() -> None:
    assert leftover_markup(_rendered().doc) == []


@pytest.mark.parametrize("name", _keyword_names())
def test_keyword_has_an_example(name: str) -> None:
    raw = next(k.doc for k in _raw().keywords if k.name == name)
    assert has_example(raw, _rendered_doc(name)), f"{name}: no Example: in its documentation"


@pytest.mark.parametrize("name", _keyword_names())
def test_keyword_is_tagged_with_its_domain(name: str) -> None:
    tags = set(next(k.tags for k in _raw().keywords if k.name == name))
    assert tags & DOMAINS, f"{name}: tags {sorted(tags)} name none of the domains {sorted(DOMAINS)}"


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ("The ``node``'s row.", "raw ``code`` markup"),
        ("``target``/``roster`` default.", "raw ``code`` markup"),
        ("An *unbalanced bold.", "a * that did not render as bold"),
        ("Example:\n|Open Target |", "a | that did not render as a table"),
    ],
)
def test_the_markup_check_catches_broken_rendering(doc: str, problem: str) -> None:
    from robot.utils import html_format

    assert problem in leftover_markup(html_format(doc))


def test_the_markup_check_passes_good_markup() -> None:
    from robot.utils import html_format

    good = "Of ``node``, *bold*, _italic_.\n\nExample:\n| ${x}=    Keyword    arg\n\n| =A= | =B= |\n| 1 | 2 |"
    assert leftover_markup(html_format(good)) == []
    assert has_example(good, html_format(good))


def test_the_generated_html_lists_every_keyword() -> None:
    page = (ROOT / "docs" / "keywords" / "TribesLibrary.html").read_text(encoding="utf-8")
    missing = [name for name in _keyword_names() if f'"{name}"' not in page]
    assert missing == [], f"run `make docs`: docs/keywords/TribesLibrary.html lacks {missing}"
