# Two commands do everything on a fresh clone: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test verify bench venv clean

$(STAMP): pyproject.toml requirements.lock requirements-reference.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=23.2"
	# torch first, pinned: the CPU wheel on this machine's disk; any other version pulls a CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -r requirements.lock
	# dm-clrs and recurrentgemma: the official code the live tests compare against (no runtime use).
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-reference.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/repdyn run grokking --preset default --workers 2

test: $(STAMP)
	$(BIN)/python -m pytest

verify: $(STAMP)
	$(BIN)/python -m pytest -m slow -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/repdyn bench

clean:
	rm -rf $(VENV) runs .pytest_cache
