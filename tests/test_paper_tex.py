"""``paper/build.py`` installs nothing: without TeX it stops at once with one line naming ``make paper-deps``."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _load_build():
    spec = importlib.util.spec_from_file_location(f"_paper_build_{uuid.uuid4().hex}", REPO / "paper" / "build.py")
    build = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = build
    spec.loader.exec_module(build)
    return build


@pytest.mark.parametrize("installed, missing", [
    ((), "pdflatex and latexmk (or bibtex) not found"),
    (("latexmk",), "pdflatex not found"),
    (("pdflatex",), "latexmk (or bibtex) not found"),
])
def test_missing_tex_is_one_line_and_runs_no_command(monkeypatch, tmp_path, capsys, installed, missing):
    build = _load_build()
    monkeypatch.setattr(build.shutil, "which", lambda tool: f"/usr/bin/{tool}" if tool in installed else None)

    def no_commands(*args, **kwargs):
        raise AssertionError(f"the build ran a command: {args}")

    monkeypatch.setattr(subprocess, "run", no_commands)
    monkeypatch.setattr(build, "newest_runs", lambda results: pytest.fail("collected results before checking TeX"))
    assert build.main(["--results", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and missing in err and "make paper-deps" in err


def test_make_paper_deps_is_the_named_installer():
    makefile = (REPO / "Makefile").read_text()
    assert "\npaper-deps:\n" in makefile and "apt-get install" in makefile
    assert "make paper-deps" in (REPO / "README.md").read_text()
