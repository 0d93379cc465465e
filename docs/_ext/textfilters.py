"""Pure text transformations of the site (no Sphinx needed, so the test suite checks them).

Theory citations become links, the public names the theory mentions are found, and plain-text module
docstrings are made valid reStructuredText where they were written for a terminal.
"""

from __future__ import annotations

import re
from pathlib import Path

import apigroups

# "docs/theory.md §3", "docs/theory.md §1–§3", "docs/theory.md §2, §7", "docs/theory.md §8.3"
# (a citation may be set in code, ``docs/theory.md §3`` or ``docs/theory.md`` §3: the backticks go with it)
_CITE = re.compile(
    r"(``)?docs/theory\.md(?:``)?((?:\s*(?:[–,-]|and)?\s*§\d+(?:\.\d+)*)+)(?(1)(?:``)?)"
)
_SECTION_NUM = re.compile(r"§(\d+(?:\.\d+)*)")
HEADING_NUM = re.compile(r"^\s*§?\s*(\d+(?:\.\d+)*)(?:[.:)]\s*|\s+)(?=\S)")
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
CODE_NAME = re.compile(r"^(?:bt\.|bontheory\.)?([A-Za-z_]\w*)(?:\(.*\))?$")


def theory_label(num: str) -> str:
    return f"theory-s{num}"


def cite_links(text: str) -> str:
    """Rewrite theory citations in reStructuredText into ``:ref:`` links to the theory's sections."""

    def repl(match: re.Match) -> str:
        refs = _SECTION_NUM.sub(lambda m: f":ref:`§{m.group(1)} <{theory_label(m.group(1))}>`", match.group(2).strip())
        return f"theory {refs}"

    return _CITE.sub(repl, text)


_VARTYPE = re.compile(r"^(:vartype \w+: )(.+)$", flags=re.M)


def readable_vartypes(text: str) -> str:
    """Attribute types that napoleon takes from annotations, as short valid reStructuredText.

    ``jaxtyping.Float[jaxlib._jax.Array, '*batch']`` becomes ``Float[Array, '\\*batch']``: the module paths go and
    the star of a jaxtyping shape is escaped (unescaped it opens an emphasis that never closes).
    """

    def repl(match: re.Match) -> str:
        kind = re.sub(r"\bjaxlib\._jax\.Array\b|\bjax\.Array\b", "Array", match.group(2))
        kind = re.sub(r"\bjaxtyping\.", "", kind)
        return match.group(1) + re.sub(r"(?<!\\)\*", r"\\*", kind)

    return _VARTYPE.sub(repl, text)


def public_set() -> set[str]:
    return set(apigroups.public_names())


def theory_mentions(path: Path) -> dict[str, list[str]]:
    """public name -> numbers of the (sub)sections of ``theory.md`` whose text names it in code."""
    public = public_set()
    out: dict[str, list[str]] = {}
    if not path.exists():
        return out
    section = None
    fence = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fence = not fence
        heading = None if fence else _MD_HEADING.match(line)
        if heading:
            num = HEADING_NUM.match(heading.group(2))
            if num:
                section = num.group(1)
        for span in _CODE_SPAN.findall(line):
            m = CODE_NAME.match(span.strip())
            if m and m.group(1) in public and section is not None:
                secs = out.setdefault(m.group(1), [])
                if section not in secs:
                    secs.append(section)
    return out


def colon_blocks_literal(text: str) -> str:
    """``paragraph ending in ':'`` + blank line + indented block -> a literal block (``::``).

    Module docstrings write formulas as indented plain text after a colon, meant to be read as preformatted;
    in reStructuredText that would be a block quote whose ``|`` and ``*`` are markup.
    """
    lines = text.splitlines()
    for i in range(len(lines) - 2):
        line, blank, nxt = lines[i], lines[i + 1], lines[i + 2]
        if (
            line.rstrip().endswith(":") and not line.rstrip().endswith("::") and not line.startswith((" ", ".. "))
            and not blank.strip() and nxt.startswith(" ") and nxt.strip() and not nxt.lstrip().startswith(":")
        ):
            lines[i] = line.rstrip() + ":"
    return "\n".join(lines)


_BORDER = re.compile(r"^(=+)( +=+)+\s*$")


def relayout_simple_tables(text: str) -> str:
    """Re-align plain-text simple tables whose cells overflow their column (cells split at 2+ spaces)."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if not _BORDER.match(lines[i]):
            i += 1
            continue
        ncol = len(lines[i].split())
        j = i + 1
        while j < len(lines) and lines[j].strip():
            j += 1
        block = lines[i:j]
        rows = [None if _BORDER.match(line) else re.split(r"\s{2,}", line.strip()) for line in block]
        if all(r is None or len(r) == ncol for r in rows):
            widths = [max(len(r[c]) for r in rows if r is not None) for c in range(ncol)]
            border = "  ".join("=" * w for w in widths)
            lines[i:j] = [
                border if r is None else "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                for r in rows
            ]
        i = j
    return "\n".join(lines)
