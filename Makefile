# bontheory: set-up, tests, experiments, paper. Every target creates the virtual environment if needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.bontheory-installed
OUT ?= results
# Tests run on 2 workers (the CI machine has 2 cores); slow thorough runs are behind the `slow` marker.
PYTEST_ARGS ?= -m "not slow" -n 2

.PHONY: install test test-slow reproduce bench paper thumbnails clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: install
	$(BIN)/python -m pytest -m slow

reproduce: install
	$(BIN)/bontheory reproduce --quick --out $(OUT)

bench: install
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

# The PDF from the newest run of each experiment under $(OUT) (run `make reproduce` first); installs TeX Live
# with apt-get if pdflatex is missing; fails listing any missing run or figure.
paper: install
	$(BIN)/python paper/build.py --results $(OUT)

# The README's small figure previews under docs/thumbnails/, from the newest runs under $(OUT).
thumbnails: install
	$(BIN)/python docs/thumbnails.py --results $(OUT)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
