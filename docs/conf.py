"""Sphinx configuration of the bontheory site (``make docs``).

Sphinx reads the docstrings as they are written (Google style with reStructuredText ``.. math::`` and
``:math:``/``:func:`` roles) through napoleon and autodoc; myst-nb executes the tutorials, MyST notebooks, at
every build, so their numbers and figures come from the code of this checkout. Warnings are errors
(``make docs`` passes ``-W --keep-going``) and every reference is checked (``nitpicky``).
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

import bontheory  # noqa: E402

project = "bontheory"
author = "the bontheory authors"
copyright = "the bontheory authors; Apache-2.0"
release = version = bontheory.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx_copybutton",
    "myst_nb",
    "bontheory_sphinx",
]

exclude_patterns = ["_build", "_ext", "thumbnails.py", "**.ipynb_checkpoints", "README.md"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb"}
root_doc = "index"

# --- API reference -----------------------------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_class_signature = "separated"
autodoc_default_options = {"exclude-members": "__init__, __new__"}
python_use_unqualified_type_names = True
python_maximum_signature_line_length = 100
add_module_names = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # "Attributes:" as fields, so NamedTuple fields are not described twice
napoleon_use_rtype = False
napoleon_preprocess_types = False

# Every reference to bontheory must resolve; JAX, NumPy, Flax and the standard library have no inventory here
# (the build is offline), so references to their types are not checked.
nitpicky = True
nitpick_ignore_regex = [(r"py:.*", r"(?!bontheory\b).*")]

# --- MyST and notebooks ------------------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "force"  # execute every tutorial at every build: no cache to go stale
nb_execution_timeout = 600
nb_execution_raise_on_error = True  # a failing cell fails the build
nb_execution_show_tb = True
nb_merge_streams = True
nb_number_source_lines = False

# --- HTML --------------------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"bontheory {version}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {"navigation_with_keys": True}
html_show_sourcelink = False
