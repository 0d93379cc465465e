# bontheory: set-up, tests, experiments, paper. Every target creates the virtual environment if needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.bontheory-installed
OUT ?= results
# Tests run on 2 workers (the CI machine has 2 cores); slow thorough runs are behind the `slow` marker.
PYTEST_ARGS ?= -m "not slow" -n 2

# TeX Live for `make paper` (Debian/Ubuntu; with sudo unless run as root). Nothing else installs system packages.
TEX_PACKAGES := texlive-latex-base texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended latexmk
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install lint test test-slow reproduce bench paper paper-deps thumbnails clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# ruff with the rules in pyproject.toml ([tool.ruff]); `$(BIN)/ruff check --fix .` fixes what it can.
lint: install
	$(BIN)/ruff check .

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: install
	$(BIN)/python -m pytest -m slow

reproduce: install
	$(BIN)/bontheory reproduce --quick --out $(OUT)

bench: install
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

# The PDF from the newest run of each experiment under $(OUT) (run `make reproduce` first); needs TeX Live
# (`make paper-deps`); fails listing any missing run or figure.
paper: install
	$(BIN)/python paper/build.py --results $(OUT)

paper-deps:
	$(SUDO) apt-get update
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends $(TEX_PACKAGES)

# The README's small figure previews under docs/thumbnails/, from the newest runs under $(OUT).
thumbnails: install
	$(BIN)/python docs/thumbnails.py --results $(OUT)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

# The documentation site into docs/_build/html (open docs/_build/html/index.html): Sphinx + myst-nb + furo, from
# scratch every time (-E), so the API pages, the gallery and the executed tutorials match this checkout.
# Warnings are errors (broken references, undocumented names, failing tutorial cells). The tutorials run with
# the environment's bin/ first on PATH, as in an activated environment (they call the bontheory command).
# To iterate on prose without running the tutorials: make docs SPHINX_OPTS="-W --keep-going -E -D nb_execution_mode=off"
DOCS_STAMP := $(VENV)/.bontheory-docs-installed
SPHINX_OPTS ?= -W --keep-going -E
.PHONY: docs
$(DOCS_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[docs]'
	touch $(DOCS_STAMP)
docs: $(DOCS_STAMP)
	PATH="$(abspath $(BIN)):$$PATH" BONTHEORY_DOCS_RESULTS=$(OUT) BONTHEORY_PROGRESS=0 \
		$(BIN)/python -m sphinx -b html $(SPHINX_OPTS) docs docs/_build/html
