"""docs/theory.md agrees with the code: citations point at sections that exist, listed functions exist.

* No source, test, benchmark or paper file cites the old theory notes (a file outside the repository).
* Every ``docs/theory.md §N`` / ``§N.M`` citation (also ranges ``§1–§3`` and lists ``§2, §7``) names a
  section of docs/theory.md, and so does every ``§N`` cross-reference inside the document.
* Every ``bontheory.name`` the document lists is a public name of the package (``bontheory.__all__``);
  dotted names (``bontheory.experiments.x``) must import.
* Every test the document cites (``tests/test_x.py::test_y``) exists.
* Every section heading carries a unique explicit anchor, and internal ``#theory-…`` links resolve.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import bontheory

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "theory.md"
TEXT = DOC.read_text(encoding="utf-8")

_SECTION = r"\d+(?:\.\d+)*"
_HEADING = re.compile(rf"^#{{2,4}}\s+§({_SECTION})\s", re.MULTILINE)
# "docs/theory.md" followed by one or more §-numbers joined by commas, "and", or a dash (a range)
_CITATION = re.compile(rf"docs/theory\.md((?:(?:\s*,\s*|\s+and\s+|\s*[–-]\s*|\s+)§{_SECTION})+)")
_SECTION_REF = re.compile(rf"§({_SECTION})")
# the old notes' name as a whole word (not e.g. an environment variable that merely contains it)
_OLD_NOTES = re.compile(r"(?<![A-Za-z0-9_])" + "THE" + r"ORY(?:\.md)?(?![A-Za-z0-9_])")
_NAME = re.compile(r"`bontheory\.([A-Za-z_][A-Za-z0-9_.]*)`")
_TEST_REF = re.compile(r"`(tests/[A-Za-z0-9_/]+\.py)(?:::([A-Za-z0-9_]+))?`")
_ANCHOR = re.compile(r'^<a id="([^"]+)"></a>\s*$')


def _sections() -> set[str]:
    return set(_HEADING.findall(TEXT))


def _scanned_files() -> list[Path]:
    """Library, tests, benchmarks, paper sources, the README and the docs (this file excluded)."""
    files: list[Path] = []
    for folder, patterns in (
        ("bontheory", ("*.py", "*.md")),
        ("tests", ("*.py",)),
        ("benchmarks", ("*.py",)),
        ("paper", ("*.py", "*.tex")),
        ("docs", ("*.py", "*.md")),
    ):
        for pattern in patterns:
            files.extend(p for p in (ROOT / folder).rglob(pattern) if "__pycache__" not in p.parts)
    files.append(ROOT / "README.md")
    here = Path(__file__).resolve()
    return sorted({p for p in files if p.is_file() and p.resolve() != here})


def test_document_has_sections_one_to_eight():
    sections = _sections()
    assert {str(i) for i in range(1, 9)} <= sections, sorted(sections)
    # subsections are numbered within an existing section
    for s in sections:
        assert s.split(".")[0] in sections, s


def test_no_file_cites_the_old_theory_notes():
    offenders = []
    for path in _scanned_files():
        for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if _OLD_NOTES.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not offenders, "cite docs/theory.md §N instead:\n" + "\n".join(offenders)


def test_citations_name_existing_sections():
    sections = _sections()
    bad, count = [], 0
    for path in _scanned_files():
        for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for match in _CITATION.finditer(line):
                for number in _SECTION_REF.findall(match.group(1)):
                    count += 1
                    if number not in sections:
                        bad.append(f"{path.relative_to(ROOT)}:{i}: §{number}")
    assert not bad, "citations of sections docs/theory.md does not have:\n" + "\n".join(bad)
    assert count >= 20  # the library does cite the document (guards against a regex that matches nothing)


def test_cross_references_inside_the_document_exist():
    sections = _sections()
    missing = sorted({n for n in _SECTION_REF.findall(TEXT) if n not in sections})
    assert not missing, missing


def _resolve(dotted: str):
    obj = bontheory
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if hasattr(obj, part):
            obj = getattr(obj, part)
        else:
            obj = importlib.import_module("bontheory." + ".".join(parts[: i + 1]))
    return obj


def test_listed_functions_are_public_names_of_the_package():
    names = sorted(set(_NAME.findall(TEXT)))
    assert len(names) >= 100  # the document lists the package's functions
    public = set(bontheory.__all__)
    not_public = [n for n in names if "." not in n and n not in public]
    assert not not_public, f"docs/theory.md lists names that bontheory does not export: {not_public}"
    unresolved = []
    for name in (n for n in names if "." in n):
        try:
            _resolve(name)
        except (ImportError, AttributeError):
            unresolved.append(name)
    assert not unresolved, unresolved


def test_every_computing_function_section_lists_only_callables_or_types():
    # a listed name is a function, a class (NamedTuple/dataclass/module type), or a documented constant
    for name in set(_NAME.findall(TEXT)):
        if "." in name or not hasattr(bontheory, name):
            continue  # missing names are reported by the test above
        obj = getattr(bontheory, name)
        assert callable(obj) or isinstance(obj, (int, tuple, dict)), (name, type(obj))


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
    return names


def test_cited_tests_exist():
    refs = _TEST_REF.findall(TEXT)
    assert len(refs) >= 30
    missing = []
    for file, func in refs:
        path = ROOT / file
        if not path.is_file():
            missing.append(file)
        elif func and func not in _test_names(path):
            missing.append(f"{file}::{func}")
    assert not missing, missing


def test_headings_carry_unique_explicit_anchors_and_links_resolve():
    lines = TEXT.splitlines()
    anchors = [m.group(1) for m in map(_ANCHOR.match, lines) if m]
    assert len(anchors) == len(set(anchors)), "duplicate anchors"
    assert all(a.startswith("theory-") for a in anchors)
    for i, line in enumerate(lines):
        if re.match(r"^#{2,4}\s", line):
            j = i - 1
            while j >= 0 and not lines[j].strip():
                j -= 1
            assert j >= 0 and _ANCHOR.match(lines[j]), f"heading without an anchor just before it: {line!r}"
    links = set(re.findall(r"\]\(#([^)]+)\)", TEXT))
    assert links <= set(anchors), links - set(anchors)


@pytest.mark.parametrize("marker", ["**Computed by**", "**Checked by**"])
def test_each_section_says_what_computes_and_checks_it(marker):
    # every numbered section of §1–§7 has at least one of each; §8 lists what exists today
    body = re.split(r"^## ", TEXT, flags=re.MULTILINE)
    numbered = [b for b in body if re.match(r"§[1-7]\s", b)]
    assert len(numbered) == 7
    for part in numbered:
        assert marker in part, part.splitlines()[0]
