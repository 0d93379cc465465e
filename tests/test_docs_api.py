"""The API reference documents every public name: the generator of its pages, checked without building the site.

The pages of docs/api/ are generated from ``bontheory.__all__`` at build time (docs/_ext/apigroups.py); these
tests check the generator's output, so a new public name that no page would document, or a name from a
subpackage no page takes, fails here (in ``make test``) before anyone builds the site.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

import bontheory

DOCS = Path(__file__).resolve().parent.parent / "docs"
sys.path.insert(0, str(DOCS / "_ext"))

import apigroups  # noqa: E402
import textfilters  # noqa: E402


@pytest.fixture(scope="module")
def rst_by_group() -> dict[str, str]:
    return {g.key: apigroups.group_rst(g.key) for g in apigroups.GROUPS}


def test_every_public_name_is_in_exactly_one_group():
    groups = apigroups.grouped()
    seen: dict[str, str] = {}
    for key, modules in groups.items():
        for names in modules.values():
            for name in names:
                assert name not in seen, f"{name} is on the pages {seen[name]} and {key}"
                seen[name] = key
    assert set(seen) == set(bontheory.__all__)


def test_generated_pages_document_every_public_name_once(rst_by_group):
    documented: dict[str, str] = {}
    for key, rst in rst_by_group.items():
        names = apigroups.documented_names(rst)
        for name in names:
            assert name not in documented, f"{name} documented on {documented[name]} and {key}"
            documented[name] = key
    missing = sorted(set(bontheory.__all__) - set(documented))
    assert not missing, f"public names no API page documents: {missing}"
    extra = sorted(set(documented) - set(bontheory.__all__))
    assert not extra, f"API pages document names that are not public: {extra}"


def test_each_group_documents_exactly_its_names(rst_by_group):
    for key, modules in apigroups.grouped().items():
        expected = {name for names in modules.values() for name in names}
        assert apigroups.documented_names(rst_by_group[key]) == expected, key


def test_every_group_has_a_page_in_the_toctree():
    index = (DOCS / "api" / "index.md").read_text(encoding="utf-8")
    toctree = re.search(r"```\{toctree\}(.*?)```", index, flags=re.S).group(1)
    entries = {line.strip() for line in toctree.splitlines() if line.strip() and not line.strip().startswith(":")}
    for group in apigroups.GROUPS:
        page = DOCS / "api" / f"{group.key}.md"
        assert page.exists(), f"no page {page.name} for the API group {group.key}"
        assert re.search(rf"^\.\. api-group:: {group.key}\s*$", page.read_text(encoding="utf-8"), flags=re.M), page
        assert group.key in entries, f"api/{group.key} is not in the API index's toctree"


def test_grouping_is_by_defining_module():
    assert apigroups.group_of("bontheory.exact.bon") == "exact"
    assert apigroups.group_of("bontheory.exact.soft_bon") == "alternatives"
    assert apigroups.group_of("bontheory.exact.pessimism") == "alternatives"
    assert apigroups.group_of("bontheory.lifted.dynamic") == "lifted"
    assert apigroups.group_of("bontheory.mc.kernels") == "mc"
    assert apigroups.group_of("bontheory.vbon.train") == "vbon"
    assert apigroups.group_of("bontheory.runs") == "runs"
    with pytest.raises(LookupError, match="RULES"):
        apigroups.group_of("bontheory.newlayer.module")
    modules = apigroups.defining_modules()
    assert modules["bon_pmf"].startswith("bontheory.exact")
    assert modules["soft_bon_pmf"].startswith("bontheory.exact")
    assert apigroups.group_of(modules["soft_bon_pmf"]) == "alternatives"
    assert apigroups.group_of(modules["bon_monte_carlo"]) == "mc"


def test_theory_citations_become_section_links():
    text = "Derived in docs/theory.md §1; bounds (docs/theory.md §2, §3), all of docs/theory.md §1–§3."
    out = textfilters.cite_links(text)
    assert ":ref:`§1 <theory-s1>`" in out
    assert ":ref:`§2 <theory-s2>`" in out
    assert ":ref:`§3 <theory-s3>`" in out
    assert "docs/theory.md" not in out
    assert textfilters.cite_links("no citation here, §4 alone") == "no citation here, §4 alone"
    assert textfilters.cite_links("see ``docs/theory.md §7``.") == "see theory :ref:`§7 <theory-s7>`."
    assert textfilters.cite_links("(``docs/theory.md`` §8.3)") == "(theory :ref:`§8.3 <theory-s8.3>`)"


def test_theory_mentions_by_numbered_section(tmp_path):
    theory = tmp_path / "theory.md"
    theory.write_text(
        "# Theory\n\n## 1. BoN\n\n`bon_pmf` and `bt.bon_kl(p, r, n)`.\n\n```python\n# 9. not a heading\n```\n\n"
        "## §2 The folk formula\n\n`bon_kl_bound`, `not_a_public_name`, and `bon_pmf` again.\n",
        encoding="utf-8",
    )
    mentions = textfilters.theory_mentions(theory)
    assert mentions["bon_pmf"] == ["1", "2"]
    assert mentions["bon_kl"] == ["1"]
    assert mentions["bon_kl_bound"] == ["2"]
    assert "not_a_public_name" not in mentions


def test_plain_text_docstrings_become_valid_rst():
    text = "The chain rule:\n\n    KL(a ‖ b) = E[ Σ_t KL(a(·|y) ‖ b(·|y)) ]\n\nMore text."
    assert textfilters.colon_blocks_literal(text).startswith("The chain rule::\n")
    fixed = textfilters.relayout_simple_tables(
        "===  ===  ===\na    b    c\n===  ===  ===\nx    a much longer cell  y\n===  ===  ===\n"
    )
    border, header, _, row, _ = fixed.splitlines()[:5]
    third = border.rindex(" =") + 1  # where the third column starts
    assert header.index("c") == third and row.index("y") == third, fixed
    assert border.split() == ["=", "=" * len("a much longer cell"), "="], fixed


def test_attribute_types_from_jaxtyping_annotations_are_valid_rst():
    text = ":ivar kl: KL(q‖p).\n:vartype kl: jaxtyping.Float[jaxlib._jax.Array, '*batch']\n:ivar n: count *here*."
    out = textfilters.readable_vartypes(text)
    assert ":vartype kl: Float[Array, '\\*batch']" in out, out
    assert ":ivar n: count *here*." in out  # descriptions keep their markup
    assert textfilters.readable_vartypes(out) == out  # an escaped star is not escaped twice
