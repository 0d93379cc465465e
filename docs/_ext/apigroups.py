"""Which page of the API reference documents each public name of bontheory, and the reStructuredText that does it.

The reference is generated from ``bontheory.__all__`` when the site is built, so a new public name is documented
the day it is added. Each name is filed by the module that defines it (the ``from MODULE import name`` line of
``bontheory/__init__.py``): the longest matching prefix in :data:`RULES` picks its page, so a new module in a known
subpackage lands on the right page by itself. A name from a subpackage that no rule knows is an error (add a rule
and a page). This module needs only the standard library and bontheory, so the test suite can check it without
Sphinx (``tests/test_docs_api.py``); ``bontheory_sphinx.py`` turns its output into pages.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.util
import inspect
import re
from collections.abc import Callable
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Group:
    """One page of the API reference. Attributes: key: page name (``docs/api/<key>.md``); title: its heading."""

    key: str
    title: str


GROUPS: tuple[Group, ...] = (
    Group("exact", "Exact BoN on finite spaces"),
    Group("alternatives", "Alternatives to BoN"),
    Group("lifted", "Exact BoN on sequence spaces (lifted)"),
    Group("policies", "Policies"),
    Group("rewards", "Rewards"),
    Group("mc", "Monte Carlo"),
    Group("studies", "Studies"),
    Group("vbon", "Variational BoN and BoN-aware training"),
    Group("runs", "Runs, experiments and the command line"),
)

#: module prefix -> group key; the longest prefix that matches the defining module wins.
RULES: dict[str, str] = {
    "bontheory.exact": "exact",
    "bontheory.exact.soft_bon": "alternatives",
    "bontheory.exact.truncation": "alternatives",
    "bontheory.exact.pessimism": "alternatives",
    "bontheory.exact.pessimism_sampler": "alternatives",
    "bontheory.exact.regularized": "alternatives",
    "bontheory.lifted": "lifted",
    "bontheory.policies": "policies",
    "bontheory.rewards": "rewards",
    "bontheory.mc": "mc",
    "bontheory.studies": "studies",
    "bontheory.vbon": "vbon",
    "bontheory.experiments": "runs",
}
#: group of names defined in a top-level module of bontheory (``bontheory.runs``, ``bontheory.cli``, ...).
TOP_LEVEL_GROUP = "runs"

#: modules documented whole (every public function and class) on a page, besides the names of ``__all__``.
MODULE_PAGES: dict[str, tuple[str, ...]] = {"runs": ("bontheory.runs", "bontheory.storage", "bontheory.plotting")}

PACKAGE_DIR = Path(importlib.util.find_spec("bontheory").origin).parent


def public_names() -> list[str]:
    import bontheory

    return list(bontheory.__all__)


def defining_modules() -> dict[str, str]:
    """Map each public name to the module it is imported from in ``bontheory/__init__.py``.

    Names not imported by a ``from MODULE import ...`` line there fall back to the object's ``__module__``.
    """
    import bontheory

    tree = ast.parse((PACKAGE_DIR / "__init__.py").read_text(encoding="utf-8"))
    source = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                source[alias.asname or alias.name] = node.module
    out = {}
    for name in public_names():
        module = source.get(name) or getattr(getattr(bontheory, name), "__module__", None)
        if not module or not module.startswith("bontheory"):
            raise LookupError(f"cannot tell which module defines bontheory.{name}")
        out[name] = module
    return out


def _is_top_level_module(module: str) -> bool:
    parts = module.split(".")
    if len(parts) != 2:
        return False
    return not (PACKAGE_DIR / parts[1]).is_dir()


def group_of(module: str) -> str:
    """The group key of a defining module (longest prefix in :data:`RULES`); LookupError if none."""
    best = None
    for prefix in RULES:
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best):
                best = prefix
    if best is not None:
        return RULES[best]
    if _is_top_level_module(module):
        return TOP_LEVEL_GROUP
    raise LookupError(
        f"no page of the API reference takes names from {module}: add a rule to RULES in docs/_ext/apigroups.py "
        "(and a page docs/api/<key>.md if it is a new group)"
    )


def grouped() -> dict[str, dict[str, list[str]]]:
    """group key -> defining module -> public names (sorted), for every group of :data:`GROUPS` (maybe empty)."""
    out: dict[str, dict[str, list[str]]] = {g.key: {} for g in GROUPS}
    for name, module in sorted(defining_modules().items(), key=lambda kv: (kv[1], kv[0].lower())):
        key = group_of(module)
        if key not in out:
            raise LookupError(f"RULES sends {module} to {key!r}, which is not in GROUPS")
        out[key].setdefault(module, []).append(name)
    return out


# ------------------------------------------------------------------------------------------------------------
# reStructuredText


def _first_line(doc: str | None) -> str:
    return (inspect.cleandoc(doc or "").split("\n\n")[0]).replace("\n", " ").strip()


_CITATION = re.compile(r"\s*\((?:``)?docs/theory\.md[^)]*\)")


def module_heading(module: str) -> str:
    """A section heading for a module: its docstring's first sentence without theory citations."""
    mod = importlib.import_module(module)
    line = _first_line(mod.__doc__)
    line = _CITATION.sub("", line).strip().rstrip(".").strip()
    line = re.sub(r":\w+:`~?([^`<]*?)(?:\s*<[^>]*>)?`", r"\1", line)  # roles out of headings
    return line or module


def module_body(module: str) -> str:
    """The module docstring without its first paragraph (which became the heading)."""
    mod = importlib.import_module(module)
    doc = inspect.cleandoc(mod.__doc__ or "")
    parts = doc.split("\n\n", 1)
    return parts[1] if len(parts) == 2 else ""


def class_members(cls: type) -> list[str]:
    """Public methods and properties a class defines itself (not fields, not inherited), with a docstring."""
    fields = set(getattr(cls, "_fields", ()))
    if dataclasses.is_dataclass(cls):
        fields |= {f.name for f in dataclasses.fields(cls)}
    names = []
    for name, value in vars(cls).items():
        if name in fields or (name.startswith("_") and name != "__call__"):
            continue
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if not (inspect.isfunction(value) or isinstance(value, property) or inspect.isroutine(value)):
            continue
        if (getattr(value, "__doc__", None) or "").strip():
            names.append(name)
    return names


def data_doc(module: str, name: str) -> str:
    """The ``#:`` comment above, or the string literal below, the assignment of ``name`` in ``module``."""
    mod = importlib.import_module(module)
    path = getattr(mod, "__file__", None)
    if not path:
        return ""
    source = Path(path).read_text(encoding="utf-8")
    lines = source.splitlines()
    tree = ast.parse(source)
    body = tree.body
    for i, node in enumerate(body):
        targets = []
        if isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets = [node.target.id]
        if name not in targets:
            continue
        comments = []
        j = node.lineno - 2
        while j >= 0 and lines[j].strip().startswith("#:"):
            comments.insert(0, lines[j].strip()[2:].strip())
            j -= 1
        if comments:
            return "\n".join(comments)
        if i + 1 < len(body):
            nxt = body[i + 1]
            if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
                return inspect.cleandoc(nxt.value.value)
        return ""
    return ""


def _indent(text: str, n: int = 3) -> str:
    pad = " " * n
    return "\n".join(pad + line if line.strip() else "" for line in text.splitlines())


def entry_rst(name: str, module: str) -> str:
    """The autodoc directive documenting ``bontheory.<name>`` (under ``.. py:currentmodule:: bontheory``)."""
    import bontheory

    obj = getattr(bontheory, name)
    if inspect.isclass(obj):
        lines = [f".. autoclass:: {name}"]
        members = class_members(obj)
        if members:
            lines.append(f"   :members: {', '.join(members)}")
        return "\n".join(lines)
    if callable(obj):
        return f".. autofunction:: {name}"
    value = repr(obj)
    if len(value) > 100:
        value = value[:97] + "..."
    doc = data_doc(module, name) or f"Constant (``{type(obj).__name__}``)."
    return f".. py:data:: {name}\n   :value: {value}\n\n{_indent(doc)}\n"


def module_members(module: str) -> list[str]:
    """Public functions and classes defined in ``module`` itself (for :data:`MODULE_PAGES`)."""
    mod = importlib.import_module(module)
    out = []
    for name, value in vars(mod).items():
        if name.startswith("_") or getattr(value, "__module__", None) != module:
            continue
        if inspect.isfunction(value) or inspect.isclass(value):
            out.append(name)
    return out


def _heading(text: str, char: str) -> str:
    return f"{text}\n{char * max(len(text), 4)}"


def group_rst(key: str, *, body_filter: Callable[[str], str] = lambda s: s) -> str:
    """The reStructuredText of one API page's generated part (one section per defining module).

    ``body_filter`` rewrites module docstrings (the Sphinx extension passes Google-style conversion and theory
    links).
    """
    modules = grouped()[key]
    parts = []
    for module, names in modules.items():
        parts.append(_heading(module_heading(module), "-"))
        parts.append(f".. py:module:: {module}\n\n.. py:currentmodule:: bontheory\n")
        parts.append(f"*Defined in* ``{module}``; *import from* ``bontheory``.\n")
        body = module_body(module)
        if body.strip():
            parts.append(body_filter(body) + "\n")
        for name in names:
            parts.append(entry_rst(name, module) + "\n")
    for module in MODULE_PAGES.get(key, ()):
        parts.append(_heading(module_heading(module), "-"))
        parts.append(f".. py:module:: {module}\n")
        parts.append(f"``import {module}``\n")
        body = module_body(module)
        if body.strip():
            parts.append(body_filter(body) + "\n")
        for name in module_members(module):
            obj = getattr(importlib.import_module(module), name)
            directive = "autoclass" if inspect.isclass(obj) else "autofunction"
            line = f".. {directive}:: {module}.{name}"
            if inspect.isclass(obj) and class_members(obj):
                line += f"\n   :members: {', '.join(class_members(obj))}"
            parts.append(line + "\n")
    return "\n".join(parts)


def documented_names(rst: str) -> set[str]:
    """The public names an API page's reStructuredText documents (what the test checks against ``__all__``)."""
    return set(re.findall(r"^\.\. (?:autofunction|autoclass|py:data):: (\w+)\s*$", rst, flags=re.M))


def subpackages_of(key: str) -> list[str]:
    """The subpackages (``bontheory.X`` with a folder) that :data:`RULES` sends whole to group ``key``."""
    out = []
    for prefix, group in RULES.items():
        parts = prefix.split(".")
        if group == key and len(parts) == 2 and (PACKAGE_DIR / parts[1]).is_dir():
            out.append(prefix)
    return out
