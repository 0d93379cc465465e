"""Sphinx extension of the bontheory site: generated API pages, theory links, the experiments gallery.

* ``.. api-group:: KEY`` writes one page of the API reference from ``bontheory.__all__`` (see ``apigroups.py``).
* Citations of the theory in docstrings (``docs/theory.md §3``, ``docs/theory.md §1–§3``) become links to that
  section of ``theory.md``; sections are found by their numbered headings (``## 3. ...`` or ``## §3 ...``), so a
  docstring citing a section the theory lacks fails the build.
* Back-links: every public name that ``theory.md`` mentions in code (```bon_pmf``` or ```bt.bon_pmf(...)```) gets
  a "Theory" line in its API entry, and in the theory and the tutorials such code is a link to the entry.
* ``.. experiments-gallery::`` shows every registered experiment's figures (from the newest finished run in the
  results folder, ``$BONTHEORY_DOCS_RESULTS`` or ``results/``, if there is one; else the committed thumbnails),
  what each shows, its config and the command that makes it.
* ``.. cli-help::`` shows ``bontheory --help`` and each subcommand's help, as printed by the installed command.
* References to a public name by the module that defines it (``bontheory.exact.bon.bon_pmf``) resolve to the
  name's entry (``bontheory.bon_pmf``), since the reference documents names where users import them.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.ext.napoleon import Config as NapoleonConfig
from sphinx.ext.napoleon.docstring import GoogleDocstring
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.parsing import nested_parse_to_nodes

sys.path.insert(0, str(Path(__file__).parent))
import apigroups
from textfilters import (
    CODE_NAME,
    HEADING_NUM,
    cite_links,
    colon_blocks_literal,
    public_set,
    readable_vartypes,
    relayout_simple_tables,
    theory_label,
    theory_mentions,
)

logger = logging.getLogger(__name__)

DOCS = Path(__file__).resolve().parent.parent
REPO = DOCS.parent
THEORY_DOC = "theory"


def google_to_rst(text: str) -> str:
    cfg = NapoleonConfig(napoleon_use_ivar=True, napoleon_use_rtype=False)
    return str(GoogleDocstring(text, cfg))


def module_body_filter(text: str) -> str:
    return cite_links(relayout_simple_tables(colon_blocks_literal(google_to_rst(text))))


# ------------------------------------------------------------------------------------------------------------
# Directives


class ApiGroupDirective(SphinxDirective):
    """``.. api-group:: KEY``: the generated entries of one API page."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        key = self.arguments[0]
        keys = [g.key for g in apigroups.GROUPS]
        if key not in keys:
            raise self.error(f"unknown API group {key!r}; groups: {', '.join(keys)}")
        for path in apigroups.PACKAGE_DIR.rglob("*.py"):
            self.env.note_dependency(str(path))
        self.env.note_dependency(str(Path(apigroups.__file__)))
        rst = apigroups.group_rst(key, body_filter=module_body_filter)
        for pkg in apigroups.subpackages_of(key):
            rst = f".. py:module:: {pkg}\n\n.. py:currentmodule:: bontheory\n\n" + rst
        if not apigroups.grouped()[key] and key not in apigroups.MODULE_PAGES:
            rst += "\n.. note:: No public name is defined in this layer yet.\n"
        return nested_parse_to_nodes(self.state, rst, source=f"<api-group {key}>", allow_section_headings=True)


def _newest_run_figures(results: Path, experiment: str) -> list[Path]:
    best, best_time = None, -1.0
    if not results.is_dir():
        return []
    for folder in results.glob(f"{experiment}-*"):
        metrics = folder / "metrics.json"
        if folder.is_dir() and metrics.exists() and metrics.stat().st_mtime > best_time:
            best, best_time = folder, metrics.stat().st_mtime
    return sorted(best.glob("*.png")) if best is not None else []


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _config_table(mod) -> str:
    cfg = getattr(mod, "Config", None)
    quick = getattr(mod, "QUICK", None)
    if cfg is None or not dataclasses.is_dataclass(cfg):
        return ""
    rows = []
    full = cfg()
    for f in dataclasses.fields(cfg):
        q = getattr(quick, f.name, None) if quick is not None else None
        rows.append((f"``{f.name}``", f"``{_short(getattr(full, f.name))}``", f"``{_short(q)}``"))
    out = [".. list-table::", "   :header-rows: 1", "   :class: config-table", ""]
    out += ["   * - field", "     - full", "     - quick"]
    for a, b, c in rows:
        out += [f"   * - {a}", f"     - {b}", f"     - {c}"]
    return "\n".join(out)


class GalleryDirective(SphinxDirective):
    """``.. experiments-gallery::``: one section per registered experiment."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        experiments = importlib.import_module("bontheory.experiments")
        results = Path(os.environ.get("BONTHEORY_DOCS_RESULTS") or REPO / "results")
        if not results.is_absolute():
            results = REPO / results
        docdir = (DOCS / self.env.docname).parent
        parts = []
        for name in experiments.EXPERIMENTS:
            mod = importlib.import_module(f"bontheory.experiments.{name}")
            self.env.note_dependency(str(Path(mod.__file__)))
            exp = getattr(mod, "NAME", name)
            summary = " ".join(str(getattr(mod, "SUMMARY", "")).split())
            figures = _newest_run_figures(results, exp)
            source = "Figures of the newest finished run in the results folder."
            width = "   :width: 90%\n"
            if not figures:
                figures = sorted((DOCS / "thumbnails").glob(f"{exp}-*.png"))
                source = "Thumbnails of the quick run (``make reproduce && make thumbnails`` renews them)."
                width = ""  # thumbnails at their own size
            parts.append(f".. _gallery-{exp}:\n\n{exp}\n{'-' * max(len(exp), 4)}\n")
            parts.append(f"**{summary}**\n" if summary else "")
            parts.append(
                ".. code-block:: bash\n\n"
                f"   bontheory run {exp} --quick     # quick settings (what make reproduce runs)\n"
                f"   bontheory run {exp}             # the full settings of the paper\n"
                f"   bontheory list {exp}            # its config fields\n"
            )
            for fig in figures:
                self.env.note_dependency(str(fig))
                stem = fig.stem[len(exp) + 1 :] if fig.stem.startswith(exp + "-") else fig.stem
                rel = os.path.relpath(fig, docdir).replace(os.sep, "/")
                parts.append(f".. figure:: {rel}\n{width}   :alt: {exp}: {stem}\n\n   ``{stem}``\n")
            if not figures:
                parts.append(".. note:: No figure yet: run ``make reproduce && make thumbnails``.\n")
            else:
                parts.append(f"{source}\n")
            doc = inspect.cleandoc(mod.__doc__ or "")
            if doc:
                parts.append(".. rubric:: What it computes\n\n" + cite_links(doc) + "\n")
            table = _config_table(mod)
            if table:
                parts.append(".. rubric:: Config (full and quick settings)\n\n" + table + "\n")
        return nested_parse_to_nodes(
            self.state, "\n".join(parts), source="<experiments-gallery>", allow_section_headings=True
        )


class CliHelpDirective(SphinxDirective):
    """``.. cli-help::``: the installed ``bontheory`` command's ``--help`` and each subcommand's."""

    has_content = False

    def _help(self, exe: str, args: list[str]) -> str:
        env = dict(os.environ, COLUMNS="100", BONTHEORY_PROGRESS="0")
        proc = subprocess.run([exe, *args, "--help"], capture_output=True, text=True, env=env, timeout=120)
        if proc.returncode != 0:
            raise self.error(f"`bontheory {' '.join(args)} --help` failed: {proc.stderr.strip()[-500:]}")
        return proc.stdout.rstrip()

    def run(self) -> list[nodes.Node]:
        exe = shutil.which("bontheory", path=str(Path(sys.executable).parent)) or shutil.which("bontheory")
        if exe is None:
            raise self.error("the bontheory command is not installed in this environment (pip install -e .)")
        top = self._help(exe, [])
        out: list[nodes.Node] = [nodes.literal_block(top, top, language="text")]
        match = re.search(r"\{([\w,-]+)\}", top)
        for sub in (match.group(1).split(",") if match else []):
            text = self._help(exe, [sub])
            section = nodes.section(ids=[f"cli-{sub}"], names=[f"cli-{sub}"])
            section += nodes.title(text=f"bontheory {sub}")
            section += nodes.literal_block(text, text, language="text")
            out.append(section)
        return out


# ------------------------------------------------------------------------------------------------------------
# Events


def _on_builder_inited(app: Sphinx) -> None:
    app.env.bontheory_mentions = theory_mentions(DOCS / f"{THEORY_DOC}.md")


def _on_process_docstring(app, what, name, obj, options, lines) -> None:
    text = "\n".join(lines)
    if not text.strip() and what in ("function", "class", "method") and name.startswith("bontheory."):
        short = name.split(".")[-1]
        if short in public_set() or what != "method":
            logger.warning(
                f"{name} has no docstring (every public name is documented)", type="bontheory", subtype="api"
            )
    text = readable_vartypes(cite_links(text))
    short = name.removeprefix("bontheory.")
    mentions = getattr(app.env, "bontheory_mentions", {}).get(short, []) if what in ("function", "class") else []
    cited = set(re.findall(r"<theory-s([\d.]+)>", text))
    extra = [s for s in mentions if s not in cited]
    if extra:
        links = ", ".join(f":ref:`§{s} <{theory_label(s)}>`" for s in extra)
        text += f"\n\n*Theory:* {links}.\n"
    lines[:] = text.splitlines()


def _register_theory_labels(app: Sphinx, doctree: nodes.document) -> None:
    std = app.env.domains.standard_domain
    for section in doctree.findall(nodes.section):
        title = section.next_node(nodes.title)
        if title is None or not section["ids"]:
            continue
        m = HEADING_NUM.match(title.astext())
        if not m:
            continue
        label = theory_label(m.group(1))
        if label in std.labels and std.labels[label][0] != app.env.docname:
            continue
        std.labels[label] = (app.env.docname, section["ids"][0], title.astext())
        std.anonlabels[label] = (app.env.docname, section["ids"][0])


def _link_code_names(app: Sphinx, doctree: nodes.document) -> None:
    public = public_set()
    for lit in list(doctree.findall(nodes.literal)):
        parent = lit.parent
        if isinstance(parent, (nodes.reference, addnodes.pending_xref, nodes.title, nodes.literal_block)):
            continue
        m = CODE_NAME.match(lit.astext().strip())
        if not m or m.group(1) not in public:
            continue
        xref = addnodes.pending_xref(
            "", refdomain="py", reftype="obj", reftarget=f"bontheory.{m.group(1)}", refexplicit=True,
            refwarn=True, refdoc=app.env.docname,
        )
        xref["py:module"] = "bontheory"
        xref["py:class"] = None
        lit.replace_self(xref)
        xref += lit


def _on_doctree_read(app: Sphinx, doctree: nodes.document) -> None:
    docname = app.env.docname
    if docname == THEORY_DOC:
        _register_theory_labels(app, doctree)
    if not docname.startswith("api/"):
        _link_code_names(app, doctree)


def _on_missing_reference(app, env, node, contnode):
    """``bontheory.<module path>.<name>`` -> ``bontheory.<name>`` for public names."""
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    if not target.startswith("bontheory."):
        return None
    short = target.rsplit(".", 1)[-1]
    if short not in public_set() or target == f"bontheory.{short}":
        return None
    domain = env.domains.python_domain
    node = node.deepcopy()
    node["reftarget"] = f"bontheory.{short}"
    return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], f"bontheory.{short}", node, contnode)


def setup(app: Sphinx) -> dict:
    app.add_directive("api-group", ApiGroupDirective)
    app.add_directive("experiments-gallery", GalleryDirective)
    app.add_directive("cli-help", CliHelpDirective)
    app.connect("builder-inited", _on_builder_inited)
    app.connect("autodoc-process-docstring", _on_process_docstring, priority=600)
    app.connect("doctree-read", _on_doctree_read)
    app.connect("missing-reference", _on_missing_reference)
    return {"version": "1", "parallel_read_safe": False, "parallel_write_safe": True}
